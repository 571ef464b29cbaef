use futures::Stream;
use std::pin::Pin;

#[rpcnet::service]
trait Merger {
    async fn merge(
        &self,
        left: Pin<Box<dyn Stream<Item = u32> + Send>>,
        right: Pin<Box<dyn Stream<Item = u32> + Send>>,
    ) -> u32;
}

fn main() {}
