#[rpcnet::service]
trait Calculator {
    #[rpcnet(name = "Calculator.add")]
    async fn add(&self, a: i64, b: i64) -> i64;
}

fn main() {}
