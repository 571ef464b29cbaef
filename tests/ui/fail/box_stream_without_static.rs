use futures::stream::BoxStream;

#[rpcnet::service]
trait Ticker {
    async fn ticks(&self, period_ms: u64) -> BoxStream<'_, u64>;
}

fn main() {}
