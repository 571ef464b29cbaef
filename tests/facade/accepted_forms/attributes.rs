//! Wire names, the crate override, docs and other attributes, default method bodies and
//! supertraits.

use rpcnet::Service;

/// An inference service.
#[renamed_rpc::service(name = "inference.v1.Inference", crate = "renamed_rpc")]
pub trait Inference: std::fmt::Debug {
    /// Generates text.
    #[rpcnet(name = "Generate")]
    #[deprecated(note = "use generate_v2")]
    async fn generate(&self, prompt: String) -> String;

    /// Has a default implementation.
    async fn version(&self) -> u32 {
        let base = 1;
        base + 1
    }

    /// `connect` on the wire, under another Rust name.
    #[rpcnet(name = "connect")]
    async fn open(&self) -> bool;
}

#[derive(Debug)]
struct Impl;

#[allow(deprecated)]
impl Inference for Impl {
    async fn generate(&self, prompt: String) -> String {
        prompt
    }

    async fn open(&self) -> bool {
        true
    }
}

#[test]
fn wire_names_and_attributes_are_honoured() {
    let server = InferenceServer::new(Impl);
    assert_eq!(server.name(), "inference.v1.Inference");
    let _ = format!("{server:?}");
    let _copy = server.clone();
    let mut rpc = rpcnet::RpcServer::new(rpcnet::RpcConfig::new("cert.pem", "127.0.0.1:0"));
    rpc.add_service(server);
    let names: Vec<&str> = rpc.method_names().collect();
    for expected in [
        "inference.v1.Inference.Generate",
        "inference.v1.Inference.version",
        "inference.v1.Inference.connect",
    ] {
        assert!(
            names.contains(&expected),
            "{expected} missing from {names:?}"
        );
    }
    let version = futures::executor::block_on(Impl.version());
    assert_eq!(version, 2);
}
