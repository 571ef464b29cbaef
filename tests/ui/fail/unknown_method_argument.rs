#[rpcnet::service]
trait Calculator {
    #[rpcnet(rename = "sum")]
    async fn add(&self, a: i64, b: i64) -> i64;
}

fn main() {}
