#[rpcnet::service]
struct Calculator;

fn main() {}
