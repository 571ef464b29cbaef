#[rpcnet::service(colour = "blue")]
trait Everything {
    type Item;

    fn not_async(&self) -> u32;

    async fn by_value(self) -> u32;

    async fn generic<T>(&self, value: T) -> u32;

    async fn borrowed(&self, name: &str) -> u32;
}

fn main() {}
