//! Every stream spelling the macro accepts, on parameters and return types.

use futures::stream::BoxStream;
use rpcnet::Streaming;

#[derive(serde::Serialize, serde::Deserialize, Debug)]
pub struct Oops;

#[rpcnet::service]
pub trait Spellings {
    /// The facade's name for a boxed stream in, the `futures` crate's name out.
    async fn short_names(
        &self,
        items: Streaming<u32>,
    ) -> Result<BoxStream<'static, Result<u32, Oops>>, Oops>;

    /// Full paths, `'static`, and a stream that is not wrapped in `Result`.
    async fn full_paths(
        &self,
        items: std::pin::Pin<Box<dyn futures::Stream<Item = u32> + Send + 'static>>,
    ) -> std::pin::Pin<Box<dyn futures::stream::Stream<Item = Result<u32, Oops>> + Send + 'static>>;

    /// Items that are not `Result`s, inside a `Result`.
    async fn plain_items(&self, n: u32) -> Result<Streaming<u32>, Oops>;

    /// Items that are not `Result`s, and no `Result` at all.
    async fn infallible(&self, n: u32) -> BoxStream<'static, u32>;

    /// The `futures` crate's name under its full path.
    async fn futures_path(&self, n: u32) -> futures::stream::BoxStream<'static, Result<u32, Oops>>;
}

struct Impl;

impl Spellings for Impl {
    async fn short_names(
        &self,
        items: Streaming<u32>,
    ) -> Result<BoxStream<'static, Result<u32, Oops>>, Oops> {
        use futures::StreamExt;
        Ok(items.map(Ok).boxed())
    }

    async fn full_paths(
        &self,
        items: std::pin::Pin<Box<dyn futures::Stream<Item = u32> + Send + 'static>>,
    ) -> std::pin::Pin<Box<dyn futures::stream::Stream<Item = Result<u32, Oops>> + Send + 'static>>
    {
        use futures::StreamExt;
        Box::pin(items.map(Ok))
    }

    async fn plain_items(&self, n: u32) -> Result<Streaming<u32>, Oops> {
        Ok(Box::pin(futures::stream::iter(0..n)))
    }

    async fn infallible(&self, n: u32) -> BoxStream<'static, u32> {
        Box::pin(futures::stream::iter(0..n))
    }

    async fn futures_path(&self, n: u32) -> futures::stream::BoxStream<'static, Result<u32, Oops>> {
        Box::pin(futures::stream::iter((0..n).map(Ok)))
    }
}

#[allow(dead_code)]
fn client_types(client: SpellingsClient) {
    let items = futures::stream::iter(vec![1u32]);
    let _: rpcnet::BidiStreamingCall<_, u32, Oops> = client.short_names(items.clone());
    let _: rpcnet::BidiStreamingCall<_, u32, Oops> = client.full_paths(items);
    let _: rpcnet::ServerStreamingCall<u32, u32, Oops> = client.plain_items(1);
    let _: rpcnet::ServerStreamingCall<u32, u32, rpcnet::Never> = client.infallible(1);
    let _: rpcnet::ServerStreamingCall<u32, u32, Oops> = client.futures_path(1);
}

#[test]
fn every_stream_spelling_is_served() {
    let mut server = rpcnet::RpcServer::new(rpcnet::RpcConfig::new("cert.pem", "127.0.0.1:0"));
    server.add_service(SpellingsServer::new(Impl));
    let names: Vec<&str> = server.method_names().collect();
    for expected in [
        "Spellings.short_names",
        "Spellings.full_paths",
        "Spellings.plain_items",
        "Spellings.infallible",
        "Spellings.futures_path",
    ] {
        assert!(
            names.contains(&expected),
            "{expected} missing from {names:?}"
        );
    }
}
