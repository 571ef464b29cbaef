//! Two versions of one service over real QUIC, as happens while a cluster is upgraded one
//! node at a time. A field added with `#[serde(default)]` (or as an `Option`) is filled in
//! with its default when an older peer leaves it out, and skipped by an older peer that
//! does not know it, in requests and in responses. An enum variant or an application error
//! the older side does not know fails that one call with a decode error; the connection
//! and the other calls on it carry on.
//!
//! `older` and `newer` declare the same wire service, `shop.Catalog`; the rules these tests
//! show are written down in `PROTOCOL.md` ("Evolving a service").

use std::sync::Arc;

use rpcnet::{CallError, Code, RpcError};
use tokio::sync::Notify;

use crate::loopback::{connect, serve, within};

/// Holds a call open on the server until the test releases it, so a test can check that a
/// call in flight on the same connection outlives another call's failure.
#[derive(Debug, Default)]
struct Gate {
    arrived: Notify,
    release: Notify,
}

impl Gate {
    async fn hold(&self) -> u32 {
        self.arrived.notify_one();
        self.release.notified().await;
        1
    }
}

/// The service as first released.
mod older {
    use serde::{Deserialize, Serialize};

    #[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
    pub(crate) struct Lookup {
        pub(crate) id: u32,
    }

    #[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
    pub(crate) struct Item {
        pub(crate) id: u32,
        pub(crate) name: String,
    }

    #[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
    pub(crate) enum Shape {
        Circle,
        Square(u32),
    }

    #[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
    pub(crate) enum CatalogError {
        NotFound,
    }

    #[rpcnet::service(name = "shop.Catalog")]
    pub(crate) trait Catalog {
        async fn lookup(&self, request: Lookup) -> Result<Item, CatalogError>;
        async fn shape_of(&self, id: u32) -> Shape;
        async fn corners(&self, shape: Shape) -> u32;
        async fn held(&self) -> u32;
    }

    pub(crate) struct OlderCatalog(pub(crate) std::sync::Arc<super::Gate>);

    impl Catalog for OlderCatalog {
        async fn lookup(&self, request: Lookup) -> Result<Item, CatalogError> {
            match request.id {
                0 => Err(CatalogError::NotFound),
                id => Ok(Item {
                    id,
                    name: format!("item-{id}"),
                }),
            }
        }

        async fn shape_of(&self, id: u32) -> Shape {
            match id {
                4 => Shape::Square(4),
                _ => Shape::Circle,
            }
        }

        async fn corners(&self, shape: Shape) -> u32 {
            match shape {
                Shape::Circle => 0,
                Shape::Square(_) => 4,
            }
        }

        async fn held(&self) -> u32 {
            self.0.hold().await
        }
    }
}

/// The same service one release later: a field added to the request and to the response,
/// a new shape and a new error.
mod newer {
    use serde::{Deserialize, Serialize};

    #[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
    pub(crate) struct Lookup {
        pub(crate) id: u32,
        #[serde(default)]
        pub(crate) detailed: bool,
    }

    #[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
    pub(crate) struct Item {
        pub(crate) id: u32,
        pub(crate) name: String,
        #[serde(default)]
        pub(crate) description: String,
        /// An added `Option` needs no attribute: it is `None` when absent.
        pub(crate) price_cents: Option<u64>,
    }

    #[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
    pub(crate) enum Shape {
        Circle,
        Square(u32),
        Triangle,
    }

    #[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
    pub(crate) enum CatalogError {
        NotFound,
        Discontinued,
    }

    #[rpcnet::service(name = "shop.Catalog")]
    pub(crate) trait Catalog {
        async fn lookup(&self, request: Lookup) -> Result<Item, CatalogError>;
        async fn shape_of(&self, id: u32) -> Shape;
        async fn corners(&self, shape: Shape) -> u32;
        async fn held(&self) -> u32;
    }

    pub(crate) struct NewerCatalog(pub(crate) std::sync::Arc<super::Gate>);

    impl Catalog for NewerCatalog {
        async fn lookup(&self, request: Lookup) -> Result<Item, CatalogError> {
            match request.id {
                0 => Err(CatalogError::NotFound),
                9 => Err(CatalogError::Discontinued),
                id => Ok(Item {
                    id,
                    // What the server made of the added request field, where an older
                    // client can see it.
                    name: if request.detailed {
                        format!("item-{id} (detailed)")
                    } else {
                        format!("item-{id}")
                    },
                    description: "sent by the newer server".to_owned(),
                    price_cents: Some(250),
                }),
            }
        }

        async fn shape_of(&self, id: u32) -> Shape {
            match id {
                3 => Shape::Triangle,
                4 => Shape::Square(4),
                _ => Shape::Circle,
            }
        }

        async fn corners(&self, shape: Shape) -> u32 {
            match shape {
                Shape::Circle => 0,
                Shape::Triangle => 3,
                Shape::Square(_) => 4,
            }
        }

        async fn held(&self) -> u32 {
            self.0.hold().await
        }
    }
}

async fn older_client_of_newer_server(gate: &Arc<Gate>) -> older::CatalogClient {
    let service = newer::CatalogServer::new(newer::NewerCatalog(Arc::clone(gate)));
    let addr = serve(|server| {
        server.add_service(service);
    });
    older::CatalogClient::from_client(connect(addr).await)
}

async fn newer_client_of_older_server(gate: &Arc<Gate>) -> newer::CatalogClient {
    let service = older::CatalogServer::new(older::OlderCatalog(Arc::clone(gate)));
    let addr = serve(|server| {
        server.add_service(service);
    });
    newer::CatalogClient::from_client(connect(addr).await)
}

/// The text of an error and all its sources.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[tokio::test]
async fn newer_client_and_newer_server_carry_the_added_fields() {
    let gate = Arc::new(Gate::default());
    let service = newer::CatalogServer::new(newer::NewerCatalog(Arc::clone(&gate)));
    let addr = serve(|server| {
        server.add_service(service);
    });
    let client = newer::CatalogClient::from_client(connect(addr).await);
    let item = within(client.lookup(newer::Lookup {
        id: 7,
        detailed: true,
    }))
    .await
    .expect("lookup");
    assert_eq!(
        item,
        newer::Item {
            id: 7,
            name: "item-7 (detailed)".to_owned(),
            description: "sent by the newer server".to_owned(),
            price_cents: Some(250),
        }
    );
}

#[tokio::test]
async fn a_newer_server_defaults_a_request_field_an_older_client_does_not_send() {
    let client = older_client_of_newer_server(&Arc::new(Gate::default())).await;
    let item = within(client.lookup(older::Lookup { id: 7 }))
        .await
        .expect("the newer server accepts the older request");
    // `detailed` defaulted to false on the server; the response's `description` and
    // `price_cents`, unknown to this client, were skipped.
    assert_eq!(
        item,
        older::Item {
            id: 7,
            name: "item-7".to_owned(),
        }
    );
}

#[tokio::test]
async fn a_newer_client_defaults_a_response_field_an_older_server_does_not_send() {
    let client = newer_client_of_older_server(&Arc::new(Gate::default())).await;
    let item = within(client.lookup(newer::Lookup {
        id: 7,
        detailed: true,
    }))
    .await
    .expect("the older server accepts the newer request, skipping `detailed`");
    assert_eq!(
        item,
        newer::Item {
            id: 7,
            name: "item-7".to_owned(),
            description: String::new(),
            price_cents: None,
        }
    );
}

#[tokio::test]
async fn a_response_variant_an_older_client_does_not_know_fails_that_call_only() {
    let gate = Arc::new(Gate::default());
    let client = older_client_of_newer_server(&gate).await;
    let held = tokio::spawn({
        let client = client.clone();
        async move { client.held().await }
    });
    within(gate.arrived.notified()).await;

    match within(client.shape_of(3)).await {
        Err(CallError::Rpc(error @ RpcError::Decode(_))) => {
            let text = chain(&error);
            assert!(text.contains("Triangle"), "names the variant: {text}");
        }
        other => panic!("expected a decode error, got {other:?}"),
    }
    assert_eq!(
        within(client.shape_of(4)).await.expect("the next call"),
        older::Shape::Square(4)
    );
    gate.release.notify_one();
    let held = within(held).await.expect("the held call's task");
    assert_eq!(held.expect("the call in flight on the same connection"), 1);
}

#[tokio::test]
async fn a_request_variant_an_older_server_does_not_know_fails_that_call_only() {
    let gate = Arc::new(Gate::default());
    let client = newer_client_of_older_server(&gate).await;
    let held = tokio::spawn({
        let client = client.clone();
        async move { client.held().await }
    });
    within(gate.arrived.notified()).await;

    match within(client.corners(newer::Shape::Triangle)).await {
        Err(CallError::Rpc(RpcError::Status(status))) => {
            assert_eq!(status.code(), Code::InvalidArgument);
            assert!(
                status.message().contains("Triangle"),
                "names the variant: {}",
                status.message()
            );
        }
        other => panic!("expected an InvalidArgument status, got {other:?}"),
    }
    assert_eq!(
        within(client.corners(newer::Shape::Square(2)))
            .await
            .expect("the next call"),
        4
    );
    gate.release.notify_one();
    let held = within(held).await.expect("the held call's task");
    assert_eq!(held.expect("the call in flight on the same connection"), 1);
}

#[tokio::test]
async fn an_application_error_an_older_client_does_not_know_is_a_decode_error() {
    let client = older_client_of_newer_server(&Arc::new(Gate::default())).await;
    match within(client.lookup(older::Lookup { id: 9 })).await {
        Err(CallError::Rpc(error @ RpcError::Decode(_))) => {
            let text = chain(&error);
            assert!(text.contains("Discontinued"), "names the variant: {text}");
        }
        other => panic!("expected a decode error, got {other:?}"),
    }
    // A known error still arrives typed.
    let known = within(client.lookup(older::Lookup { id: 0 })).await;
    assert!(
        matches!(
            known,
            Err(CallError::Application(older::CatalogError::NotFound))
        ),
        "{known:?}"
    );
}
