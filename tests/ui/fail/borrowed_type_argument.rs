#[rpcnet::service]
trait Greeter {
    async fn greet_all(&self, names: Vec<&'static str>, prefix: std::borrow::Cow<'_, str>) -> String;
}

fn main() {}
