//! Routing calls to the cluster's workers: the [`WorkerRegistry`] keeps the pool of live
//! workers from membership changes, a [`LoadBalancingStrategy`] picks one per call among
//! those a [`TagFilter`] allows, and the [`ClusterClient`] makes the call, failing over to
//! another worker when that is safe.

mod client;
mod error;
mod event;
mod filter;
mod pool;
mod registry;
mod retry_budget;
mod strategy;
mod worker;

pub use client::{ClusterClient, WorkerCall, WorkerClient};
pub use error::RoutingError;
pub use event::{PoolEvent, PoolEvents};
pub use filter::TagFilter;
pub use registry::{PickedWorker, WorkerRegistry, WORKER_ROLE};
pub use retry_budget::RetryBudget;
pub use strategy::LoadBalancingStrategy;
pub use worker::{InFlight, WorkerInfo};
