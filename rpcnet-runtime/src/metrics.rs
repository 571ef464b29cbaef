//! Call metrics through the [`metrics`] facade, when a configuration turns them on
//! ([`RpcConfig::with_metrics`](crate::RpcConfig::with_metrics)); whatever recorder the
//! application installs (a Prometheus exporter, say) receives them. The runtime installs
//! none.
//!
//! The names and labels are listed on `RpcConfig::with_metrics`.
//!
//! Handles are made once per method (a server's when it binds, a client's on its first
//! call of that method): a served call costs its metrics no lookup or allocation, a client
//! call one read-locked map lookup. With metrics off, nothing is made or read.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use metrics::{counter, gauge, histogram, Counter, Gauge, Histogram};
use s2n_quic::provider::event::{events, ConnectionInfo, ConnectionMeta, Subscriber};

use crate::error::Code;

/// Every status code, in the order of [`code_index`].
const CODES: [Code; 10] = Code::ALL;

/// Where `code`'s counter is; a code added later shares the last slot with `Unknown`'s
/// label rather than go uncounted.
fn code_index(code: Code) -> usize {
    CODES.iter().position(|&c| c == code).unwrap_or(2)
}

/// A status code's label value.
fn code_label(code: Code) -> &'static str {
    match code {
        Code::Ok => "ok",
        Code::Cancelled => "cancelled",
        Code::InvalidArgument => "invalid_argument",
        Code::DeadlineExceeded => "deadline_exceeded",
        Code::ResourceExhausted => "resource_exhausted",
        Code::Unimplemented => "unimplemented",
        Code::Internal => "internal",
        Code::Unavailable => "unavailable",
        Code::Application => "application",
        _ => "unknown",
    }
}

/// A counter per status code, in the order of [`CODES`].
fn finished(name: &'static str, method: &str) -> Box<[Counter]> {
    CODES
        .iter()
        .map(|&code| counter!(name, "method" => method.to_owned(), "code" => code_label(code)))
        .collect()
}

/// One method's metrics on a server.
#[derive(Debug)]
pub(crate) struct ServerMethodMetrics {
    started: Counter,
    finished: Box<[Counter]>,
    in_flight: Gauge,
    duration: Histogram,
}

impl ServerMethodMetrics {
    pub(crate) fn new(method: &str) -> Self {
        let label = || method.to_owned();
        ServerMethodMetrics {
            started: counter!("rpcnet_server_calls_started_total", "method" => label()),
            finished: finished("rpcnet_server_calls_finished_total", method),
            in_flight: gauge!("rpcnet_server_calls_in_flight", "method" => label()),
            duration: histogram!("rpcnet_server_call_duration_seconds", "method" => label()),
        }
    }

    /// A call began.
    pub(crate) fn started(&self) {
        self.started.increment(1);
        self.in_flight.increment(1.0);
    }

    /// A call that began ended with `code` after `elapsed`.
    pub(crate) fn finished(&self, code: Code, elapsed: Duration) {
        self.in_flight.decrement(1.0);
        if let Some(counter) = self.finished.get(code_index(code)) {
            counter.increment(1);
        }
        self.duration.record(elapsed.as_secs_f64());
    }
}

/// A server's connection gauge.
pub(crate) fn connections() -> Gauge {
    gauge!("rpcnet_server_connections")
}

/// One method's metrics on a client.
#[derive(Debug)]
pub(crate) struct ClientMethodMetrics {
    finished: Box<[Counter]>,
    duration: Histogram,
}

impl ClientMethodMetrics {
    /// A unary call ended with `code` after `elapsed`.
    pub(crate) fn finished(&self, code: Code, elapsed: Duration) {
        if let Some(counter) = self.finished.get(code_index(code)) {
            counter.increment(1);
        }
        self.duration.record(elapsed.as_secs_f64());
    }
}

/// A client's metrics handles by method, made on each method's first call.
#[derive(Debug, Default)]
pub(crate) struct ClientMetrics {
    methods: RwLock<HashMap<String, Arc<ClientMethodMetrics>>>,
}

impl ClientMetrics {
    /// The handles for `method`.
    pub(crate) fn method(&self, method: &str) -> Option<Arc<ClientMethodMetrics>> {
        if let Some(found) = self.methods.read().ok()?.get(method) {
            return Some(Arc::clone(found));
        }
        let mut methods = self.methods.write().ok()?;
        let entry = methods.entry(method.to_owned()).or_insert_with(|| {
            Arc::new(ClientMethodMetrics {
                finished: finished("rpcnet_client_calls_finished_total", method),
                duration: histogram!(
                    "rpcnet_client_call_duration_seconds",
                    "method" => method.to_owned()
                ),
            })
        });
        Some(Arc::clone(entry))
    }
}

/// Which side of a connection an endpoint is, for the names of its traffic counters.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Side {
    Server,
    Client,
}

/// An endpoint's event subscriber that counts the bytes of the UDP datagrams its
/// connections send and receive (QUIC packets: calls, streams and one-way messages alike).
/// Without metrics it counts nothing.
#[derive(Debug, Default)]
pub(crate) struct Traffic {
    counters: Option<(Counter, Counter)>,
}

impl Traffic {
    /// Counts the endpoint's traffic if `enabled`.
    pub(crate) fn new(enabled: bool, side: Side) -> Self {
        let counters = enabled.then(|| match side {
            Side::Server => (
                counter!("rpcnet_server_sent_bytes_total"),
                counter!("rpcnet_server_received_bytes_total"),
            ),
            Side::Client => (
                counter!("rpcnet_client_sent_bytes_total"),
                counter!("rpcnet_client_received_bytes_total"),
            ),
        });
        Traffic { counters }
    }
}

impl Subscriber for Traffic {
    type ConnectionContext = ();

    fn create_connection_context(
        &mut self,
        _meta: &ConnectionMeta,
        _info: &ConnectionInfo<'_>,
    ) -> Self::ConnectionContext {
    }

    fn on_datagram_sent(
        &mut self,
        _context: &mut Self::ConnectionContext,
        _meta: &events::ConnectionMeta,
        event: &events::DatagramSent,
    ) {
        if let Some((sent, _)) = &self.counters {
            sent.increment(u64::from(event.len));
        }
    }

    fn on_datagram_received(
        &mut self,
        _context: &mut Self::ConnectionContext,
        _meta: &events::ConnectionMeta,
        event: &events::DatagramReceived,
    ) {
        if let Some((_, received)) = &self.counters {
            received.increment(u64::from(event.len));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_its_own_counter_and_label() {
        let labels: std::collections::HashSet<_> = CODES.iter().map(|&c| code_label(c)).collect();
        assert_eq!(labels.len(), CODES.len());
        for (i, &code) in CODES.iter().enumerate() {
            assert_eq!(code_index(code), i);
        }
    }
}
