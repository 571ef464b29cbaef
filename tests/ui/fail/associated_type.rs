#[rpcnet::service]
trait Store {
    type Value;

    async fn get(&self, key: String) -> Option<String>;
}

fn main() {}
