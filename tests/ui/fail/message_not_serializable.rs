pub struct Plain {
    pub value: u32,
}

#[rpcnet::service]
trait Store {
    async fn put(&self, value: Plain) -> bool;
}

fn main() {}
