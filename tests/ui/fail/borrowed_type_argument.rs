#[rpcnet::service]
trait Greeter {
    async fn greet(&self, name: std::borrow::Cow<'_, str>) -> String;
}

fn main() {}
