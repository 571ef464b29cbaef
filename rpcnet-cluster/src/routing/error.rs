//! [`RoutingError`]: why a call through a [`ClusterClient`](super::ClusterClient) failed.

use rpcnet_runtime::RpcError;

use crate::member::NodeId;
use crate::routing::filter::TagFilter;

/// Why a call through the cluster failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RoutingError {
    /// No worker in the pool matches the filter (after the client's wait for one, if it
    /// has one), or every matching worker was already tried for this call.
    #[error("no worker available for {filter}")]
    NoWorkersAvailable {
        /// The filter of the call.
        filter: TagFilter,
    },
    /// The worker left the pool (it failed or left the cluster) while the call was in
    /// flight on it, and the call was not retried elsewhere.
    #[error("worker {worker} left the pool while the call was in flight")]
    WorkerLost {
        /// The worker the call was on.
        worker: NodeId,
    },
    /// The call failed on the worker (transport, deadline, the handler's status, …) and
    /// was not retried elsewhere.
    #[error("call to worker {worker} failed")]
    Call {
        /// The worker the last attempt went to.
        worker: NodeId,
        /// What went wrong.
        #[source]
        source: RpcError,
    },
    /// The client's QUIC endpoint could not be set up.
    #[error("could not set up the client endpoint")]
    Endpoint(#[source] RpcError),
}

impl RoutingError {
    /// The worker the failed attempt went to, if one was chosen.
    pub fn worker(&self) -> Option<&NodeId> {
        match self {
            RoutingError::WorkerLost { worker } | RoutingError::Call { worker, .. } => Some(worker),
            RoutingError::NoWorkersAvailable { .. } | RoutingError::Endpoint(_) => None,
        }
    }

    /// The framework error of the failed attempt, if that is what ended the call.
    pub fn rpc(&self) -> Option<&RpcError> {
        match self {
            RoutingError::Call { source, .. } | RoutingError::Endpoint(source) => Some(source),
            RoutingError::NoWorkersAvailable { .. } | RoutingError::WorkerLost { .. } => None,
        }
    }
}
