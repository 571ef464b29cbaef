#[rpcnet::service]
trait Store<V> {
    async fn get(&self, key: String) -> Option<String>;
}

fn main() {}
