//! The cluster layer's spans over real nodes on loopback QUIC, seen by a subscriber the
//! test sets for its own thread: a `cluster_node` span per node with its id and address,
//! and a `probe_round` span per probe, inside its node's, with the target, the sequence
//! number and the outcome recorded when the next probe starts.
#![cfg(feature = "quic")]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::Subscriber;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

use crate::quic_nodes::{eventually, live_names, start_node};

/// A span as the test layer saw it.
#[derive(Debug, Clone, Default)]
struct SeenSpan {
    name: &'static str,
    parent: Option<u64>,
    fields: HashMap<&'static str, String>,
}

/// Every span created, by id (ids are not reused while a span is open; a reused id
/// replaces a closed span, which the test does not need).
#[derive(Debug, Clone, Default)]
struct Spans(Arc<Mutex<HashMap<u64, SeenSpan>>>);

struct Fields<'a>(&'a mut HashMap<&'static str, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name(), format!("{value:?}"));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name(), value.to_owned());
    }
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Spans {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut seen = SeenSpan {
            name: attrs.metadata().name(),
            parent: ctx
                .span(id)
                .and_then(|span| span.parent())
                .map(|p| p.id().into_u64()),
            fields: HashMap::new(),
        };
        attrs.record(&mut Fields(&mut seen.fields));
        if let Ok(mut spans) = self.0.lock() {
            spans.insert(id.into_u64(), seen);
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, _ctx: Context<'_, S>) {
        if let Ok(mut spans) = self.0.lock() {
            if let Some(seen) = spans.get_mut(&id.into_u64()) {
                values.record(&mut Fields(&mut seen.fields));
            }
        }
    }
}

impl Spans {
    /// The probe rounds of node `prober` (inside its `cluster_node` span) that probed
    /// `target` and ended with `outcome`.
    fn probe_rounds(&self, prober: &str, target: &str, outcome: &str) -> usize {
        let Ok(spans) = self.0.lock() else {
            return 0;
        };
        spans
            .values()
            .filter(|s| s.name == "probe_round")
            .filter(|s| s.fields.get("target").map(String::as_str) == Some(target))
            .filter(|s| s.fields.get("outcome").map(String::as_str) == Some(outcome))
            .filter(|s| s.fields.contains_key("seq"))
            .filter(|s| {
                s.parent.and_then(|p| spans.get(&p)).is_some_and(|node| {
                    node.name == "cluster_node"
                        && node.fields.get("id").map(String::as_str) == Some(prober)
                })
            })
            .count()
    }

    /// Whether a `cluster_node` span of node `id` at `addr` was seen.
    fn node(&self, id: &str, addr: &str) -> bool {
        let Ok(spans) = self.0.lock() else {
            return false;
        };
        spans.values().any(|s| {
            s.name == "cluster_node"
                && s.fields.get("id").map(String::as_str) == Some(id)
                && s.fields.get("addr").map(String::as_str) == Some(addr)
        })
    }
}

// One thread: the nodes' tasks run where the test's subscriber is the default.
#[tokio::test(flavor = "current_thread")]
async fn probe_rounds_have_debug_spans_inside_their_node_with_target_and_outcome() {
    let spans = Spans::default();
    let subscriber = tracing_subscriber::registry().with(spans.clone());
    let _default = tracing::subscriber::set_default(subscriber);

    let a = start_node("spanned-a", "127.0.0.1:0", &[]);
    let b = start_node("spanned-b", "127.0.0.1:0", &[a.addr]);
    eventually("the two nodes to see each other", || {
        live_names(&a.cluster).len() == 1 && live_names(&b.cluster).len() == 1
    })
    .await;
    eventually("spanned-a's node span", || {
        spans.node("spanned-a", &a.addr.to_string())
    })
    .await;
    eventually("an acknowledged probe of spanned-b by spanned-a", || {
        spans.probe_rounds("spanned-a", "spanned-b", "ack") > 0
    })
    .await;
    assert_eq!(spans.probe_rounds("spanned-a", "spanned-b", "suspect"), 0);

    b.crash().await;
    eventually("a probe of the crashed spanned-b ending in suspicion", || {
        spans.probe_rounds("spanned-a", "spanned-b", "suspect") > 0
    })
    .await;
}
