//! The integration tests of rpcnet-cluster, one module per topic, built as one test binary so
//! the crate links once: the SWIM core in the deterministic simulator (`sim`), and real nodes
//! over QUIC on loopback (`quic_nodes`, `quic_membership`, `quic_identity`, `quic_flood`,
//! `quic_metrics`, and `routing`: the worker registry and cluster client; these need the
//! `quic` feature). The cluster layer's spans are tested in a binary of their own (`spans`).

mod quic_flood;
mod quic_identity;
mod quic_membership;
mod quic_metrics;
mod quic_nodes;
#[cfg(feature = "quic")]
mod routing;
mod sim;
mod swim_accuracy;
mod swim_combined;
mod swim_convergence;
mod swim_detection;
mod swim_determinism;
mod swim_lifeguard;
mod swim_load;
mod swim_partition;
mod swim_restart;
mod swim_speed;
