#[rpcnet::service]
trait Calculator {
    async fn add(&self, a: i64, b: i64) -> i64;

    #[rpcnet(name = "add")]
    async fn add_checked(&self, a: i64, b: i64) -> Option<i64>;
}

fn main() {}
