use futures::Stream;
use std::pin::Pin;

#[rpcnet::service]
trait Uploader {
    async fn upload(&self, chunks: Pin<Box<dyn Stream<Item = Vec<u8>>>>) -> u64;
}

fn main() {}
