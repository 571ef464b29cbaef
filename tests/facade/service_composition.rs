//! Services composed on one endpoint over real QUIC: two services on one server, two
//! generated clients sharing one connection, wire-name overrides, and an older or newer
//! client meeting a server without the method it calls.

use crate::loopback::{connect, serve, within};
use rpcnet::{CallContext, CallError, RpcError, Service};
use serde::{Deserialize, Serialize};

#[rpcnet::service]
trait Greeter {
    async fn greet(&self, name: String) -> String;
}

struct MyGreeter;

impl Greeter for MyGreeter {
    async fn greet(&self, name: String) -> String {
        format!("Hello, {name}!")
    }
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
enum StockError {
    OutOfStock { available: u32 },
}

/// The inventory service as the server runs it (version 1).
mod v1 {
    use super::*;

    #[rpcnet::service(name = "shop.v1.Inventory")]
    pub(crate) trait Inventory {
        /// Served as `shop.v1.Inventory.total` although the method is `count_all`.
        #[rpcnet(name = "total")]
        async fn count_all(&self) -> u32;

        /// Returns the wire name the server saw.
        async fn method_name(&self) -> String;
    }

    pub(crate) struct MyInventory;

    impl Inventory for MyInventory {
        async fn count_all(&self) -> u32 {
            7
        }

        async fn method_name(&self) -> String {
            CallContext::current()
                .map(|ctx| ctx.method().to_owned())
                .unwrap_or_default()
        }
    }
}

/// A newer version of the same service, with a method version 1 servers lack.
mod v2 {
    use super::*;

    #[rpcnet::service(name = "shop.v1.Inventory")]
    pub(crate) trait Inventory {
        #[rpcnet(name = "total")]
        async fn count_all(&self) -> u32;

        async fn reserve(&self, count: u32) -> Result<u32, StockError>;
    }
}

#[tokio::test]
async fn two_services_share_one_server_and_one_connection() {
    let addr = serve(|server| {
        server
            .add_service(GreeterServer::new(MyGreeter))
            .add_service(v1::InventoryServer::new(v1::MyInventory));
    });
    let connection = connect(addr).await;
    let greeter = GreeterClient::from_client(connection.clone());
    let inventory = v1::InventoryClient::from_client(connection);

    let (greeting, total) =
        within(async { tokio::join!(greeter.greet("Ada".into()), inventory.count_all()) }).await;
    assert_eq!(greeting.expect("greet"), "Hello, Ada!");
    assert_eq!(total.expect("count_all"), 7);
}

#[tokio::test]
async fn service_and_method_name_overrides_shape_the_wire_name() {
    let server = v1::InventoryServer::new(v1::MyInventory);
    assert_eq!(server.name(), "shop.v1.Inventory");
    let addr = serve(|s| {
        s.add_service(server);
    });
    let client = v1::InventoryClient::from_client(connect(addr).await);
    let name = within(client.method_name()).await.expect("method_name");
    assert_eq!(name, "shop.v1.Inventory.method_name");

    // Another client naming the methods by their wire names directly.
    let by_wire = by_wire_name::InventoryClient::from_client(client.client().clone());
    assert_eq!(within(by_wire.total()).await.expect("total"), 7);
    let missing = within(by_wire.count_all()).await;
    assert!(
        matches!(missing, Err(CallError::Rpc(RpcError::Unimplemented { .. }))),
        "the Rust method name is not the wire name: {missing:?}"
    );
}

/// A client of the same service that spells the wire names as method names.
mod by_wire_name {
    #[rpcnet::service(name = "shop.v1.Inventory")]
    pub(crate) trait Inventory {
        async fn total(&self) -> u32;
        async fn count_all(&self) -> u32;
    }
}

#[tokio::test]
async fn a_method_the_server_lacks_is_unimplemented_and_the_client_keeps_working() {
    let addr = serve(|server| {
        server.add_service(v1::InventoryServer::new(v1::MyInventory));
    });
    let client = v2::InventoryClient::from_client(connect(addr).await);

    let result = within(client.reserve(3)).await;
    match result {
        Err(CallError::Rpc(RpcError::Unimplemented { method })) => {
            assert_eq!(method, "shop.v1.Inventory.reserve")
        }
        other => panic!("expected Unimplemented, got {other:?}"),
    }
    assert_eq!(within(client.count_all()).await.expect("count_all"), 7);
}
