use futures::Stream;

#[rpcnet::service]
trait Ticker {
    async fn ticks(&self, period_ms: u64) -> impl Stream<Item = u64> + Send;
}

fn main() {}
