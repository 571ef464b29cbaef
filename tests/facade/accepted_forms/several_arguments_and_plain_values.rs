//! A unary trait with several arguments per method, no arguments, and plain (infallible)
//! return values.

#[rpcnet::service]
pub trait Math {
    /// Several arguments travel as a tuple.
    async fn add(&self, a: i64, b: i64) -> Result<i64, String>;

    /// Three arguments of different types, plain return value.
    async fn describe(&self, name: String, count: u32, tags: Vec<String>) -> String;

    /// No arguments, no return value.
    async fn ping(&self);

    /// A plain value that happens to be an `Option`.
    async fn find(&self, key: String) -> Option<u64>;
}

struct Impl;

impl Math for Impl {
    async fn add(&self, a: i64, b: i64) -> Result<i64, String> {
        a.checked_add(b).ok_or_else(|| "overflow".to_owned())
    }

    async fn describe(&self, name: String, count: u32, tags: Vec<String>) -> String {
        format!("{name} {count} {tags:?}")
    }

    async fn ping(&self) {}

    async fn find(&self, _key: String) -> Option<u64> {
        None
    }
}

#[allow(dead_code)]
fn client_types(client: MathClient) {
    let _: rpcnet::UnaryCall<(i64, i64), i64, String> = client.add(1, 2);
    let _: rpcnet::UnaryCall<(String, u32, Vec<String>), String, rpcnet::Never> =
        client.describe("n".into(), 1, vec![]);
    let _: rpcnet::UnaryCall<(), (), rpcnet::Never> = client.ping();
    let _: rpcnet::UnaryCall<String, Option<u64>, rpcnet::Never> = client.find("k".into());
}

#[test]
fn several_arguments_and_plain_values_are_served() {
    let mut server = rpcnet::RpcServer::new(rpcnet::RpcConfig::new("cert.pem", "127.0.0.1:0"));
    server.add_service(MathServer::new(Impl));
    let names: Vec<&str> = server.method_names().collect();
    for expected in ["Math.add", "Math.describe", "Math.ping", "Math.find"] {
        assert!(
            names.contains(&expected),
            "{expected} missing from {names:?}"
        );
    }
}
