use futures::Stream;

#[rpcnet::service]
trait Uploader {
    async fn upload(&self, chunks: Box<dyn Stream<Item = Vec<u8>> + Send>) -> u64;
}

fn main() {}
