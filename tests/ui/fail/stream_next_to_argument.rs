#[rpcnet::service]
trait Uploader {
    async fn upload(&self, file_name: String, chunks: rpcnet::Streaming<Vec<u8>>) -> u64;
}

fn main() {}
