//! Routing over real nodes on loopback QUIC: a director with a `WorkerRegistry` and a
//! `ClusterClient`, and workers that each run in a runtime of their own, so that killing
//! one is as abrupt as killing its process.

mod attempts;
mod balance;
mod budget;
mod failover;
mod filter;
mod lagged;
mod no_workers;
pub(crate) mod support;
mod typed;
