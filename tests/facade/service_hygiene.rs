//! The generated code names everything by absolute path: a service declared in a
//! `#![no_implicit_prelude]` module full of decoy names, and one reaching the facade through
//! a renamed crate with `crate = "…"`, both compile and work over real QUIC.

use crate::loopback::{connect, serve, within};
use futures::StreamExt;

mod isolated {
    #![no_implicit_prelude]

    // Decoys: generated code that used these names without a path would pick them up.
    #[allow(dead_code)]
    pub(crate) struct Ok;
    #[allow(dead_code)]
    pub(crate) struct Err;
    #[allow(dead_code)]
    pub(crate) struct Arc;
    #[allow(dead_code)]
    pub(crate) struct Box;
    #[allow(dead_code)]
    pub(crate) struct Send;
    #[allow(dead_code)]
    pub(crate) struct Future;
    #[allow(dead_code)]
    pub(crate) struct Stream;
    #[allow(dead_code)]
    pub(crate) struct Clone;
    #[allow(dead_code)]
    pub(crate) struct Option;

    /// A user type that happens to be called `T`, like a generic parameter.
    #[derive(
        ::serde::Serialize, ::serde::Deserialize, ::core::fmt::Debug, ::core::cmp::PartialEq,
    )]
    pub(crate) struct T(pub(crate) u32);

    #[::rpcnet::service]
    pub(crate) trait Isolated {
        async fn echo(
            &self,
            text: ::std::string::String,
        ) -> ::core::result::Result<::std::string::String, ::std::string::String>;

        async fn wrap(&self, value: u32, extra: u32) -> T;

        async fn numbers(
            &self,
            up_to: u32,
        ) -> ::futures::stream::BoxStream<'static, ::core::result::Result<T, ::std::string::String>>;

        async fn total(&self, values: ::rpcnet::Streaming<T>) -> u32;

        async fn squares(&self, up_to: u32) -> ::rpcnet::Streaming<u32>;
    }
}

mod renamed {
    #[my_rpc::service(crate = "my_rpc", name = "Renamed")]
    pub(crate) trait Renamed {
        async fn double(&self, value: u64) -> u64;
    }
}

struct Impl;

impl isolated::Isolated for Impl {
    async fn echo(&self, text: String) -> Result<String, String> {
        if text.is_empty() {
            Err("empty".to_owned())
        } else {
            Ok(text)
        }
    }

    async fn wrap(&self, value: u32, extra: u32) -> isolated::T {
        isolated::T(value + extra)
    }

    async fn numbers(
        &self,
        up_to: u32,
    ) -> futures::stream::BoxStream<'static, Result<isolated::T, String>> {
        Box::pin(futures::stream::iter(
            (0..up_to).map(|n| Ok(isolated::T(n))),
        ))
    }

    async fn total(&self, values: rpcnet::Streaming<isolated::T>) -> u32 {
        values.fold(0, |sum, t| async move { sum + t.0 }).await
    }

    async fn squares(&self, up_to: u32) -> rpcnet::Streaming<u32> {
        Box::pin(futures::stream::iter((0..up_to).map(|n| n * n)))
    }
}

impl renamed::Renamed for Impl {
    async fn double(&self, value: u64) -> u64 {
        value * 2
    }
}

#[tokio::test]
async fn a_service_declared_without_the_prelude_works() {
    let addr = serve(|server| {
        server.add_service(isolated::IsolatedServer::new(Impl));
    });
    let client = isolated::IsolatedClient::from_client(connect(addr).await);

    assert_eq!(within(client.echo("hi".into())).await.expect("echo"), "hi");
    let empty = within(client.echo(String::new())).await;
    assert!(matches!(empty, Err(rpcnet::CallError::Application(ref e)) if e == "empty"));
    assert_eq!(
        within(client.wrap(40, 2)).await.expect("wrap"),
        isolated::T(42)
    );
    let numbers: Vec<u32> = within(async {
        let stream = client.numbers(4).await.expect("numbers");
        stream.map(|item| item.expect("ok").0).collect().await
    })
    .await;
    assert_eq!(numbers, [0, 1, 2, 3]);
    let squares: Vec<u32> = within(async {
        let stream = client.squares(4).await.expect("squares");
        stream.map(|item| item.expect("infallible")).collect().await
    })
    .await;
    assert_eq!(squares, [0, 1, 4, 9]);
    let values = futures::stream::iter([1, 2, 3].map(isolated::T));
    assert_eq!(within(client.total(values)).await.expect("total"), 6);
}

#[tokio::test]
async fn a_service_reaches_a_renamed_facade_through_the_crate_argument() {
    let addr = serve(|server| {
        server.add_service(renamed::RenamedServer::new(Impl));
    });
    let client = renamed::RenamedClient::from_client(connect(addr).await);
    assert_eq!(within(client.double(21)).await.expect("double"), 42);
}
