//! The runtime's integration tests over real QUIC on loopback: calls of every kind, limits,
//! reconnects, graceful shutdown, hand-written wire bytes, one-way messages, and the bundled
//! development certificate. One test binary with a module per topic.

mod calls;
mod certificate;
mod hostile;
mod lifecycle;
mod metrics;
mod one_way;
mod support;
mod tls;
mod trace;
mod wire;
