#[rpcnet::service(name = "calc.v1.Calculator", version = 2)]
trait Calculator {
    async fn add(&self, a: i64, b: i64) -> i64;
}

fn main() {}
