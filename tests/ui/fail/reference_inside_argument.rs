#[rpcnet::service]
trait Greeter {
    async fn greet_all(&self, names: Vec<&'static str>) -> String;
}

fn main() {}
