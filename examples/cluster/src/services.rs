//! The services of the scenario, as a user writes them: the trait file to copy.
//!
//! - [`Director`]: a client asks the director which worker to use and gets its label and
//!   address.
//! - [`Inference`]: a worker streams generated tokens back for a stream of requests.
//! - `compute`: a raw byte method on the workers (`RpcServer::register`), the one the
//!   director calls through `ClusterClient::call_worker`; see [`COMPUTE_METHOD`].
//! - `record`: a raw method on the workers that records request ids for the chaos harness;
//!   see [`RECORD_METHOD`].

use std::pin::Pin;

use futures::Stream;
use serde::{Deserialize, Serialize};

/// The raw method every worker serves: takes any bytes, answers `"<label>:<byte count>"`.
pub const COMPUTE_METHOD: &str = "compute";

/// The raw method the chaos harness's load calls on the workers: the request is a request
/// id (UTF-8); the worker appends it to its request log (`WORKER_REQUEST_LOG`, if set)
/// before answering `"<label>:<request id>"`.
pub const RECORD_METHOD: &str = "record";

/// A request for a worker.
#[derive(Serialize, Deserialize, Debug, Clone, Default)]
pub struct AssignRequest {
    /// The label of a worker that just failed this client, to be avoided if another one is
    /// available (the director may not have noticed the failure yet).
    pub avoid: Option<String>,
}

/// The worker a client should use.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct WorkerAssignment {
    /// The worker's label (`worker-a`).
    pub label: String,
    /// Where it serves calls (`127.0.0.1:62001`).
    pub addr: String,
}

/// Why the director could not assign a worker.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub enum DirectorError {
    /// No worker is in the pool right now; ask again later.
    NoWorkersAvailable,
}

impl std::fmt::Display for DirectorError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DirectorError::NoWorkersAvailable => f.write_str("no worker available"),
        }
    }
}

/// The director's service: hands out workers.
#[rpcnet::service]
pub trait Director {
    /// Picks a worker for a client (least connections among the live workers).
    async fn assign_worker(
        &self,
        request: AssignRequest,
    ) -> Result<WorkerAssignment, DirectorError>;
}

/// One request on a `generate` stream.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct InferenceRequest {
    /// What to generate tokens for.
    pub prompt: String,
    /// The sequence number of the first token to produce: a client that moves to another
    /// worker continues where the failed one stopped.
    pub next_sequence: u64,
}

/// One generated token.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct InferenceResponse {
    /// The token's position in the client's sequence (1, 2, …).
    pub sequence: u64,
    /// The token (`token-<sequence>`).
    pub text: String,
    /// The label of the worker that produced it.
    pub worker: String,
}

/// Why a `generate` stream failed.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub enum InferenceError {
    /// The worker failed while streaming; ask the director for another one.
    WorkerFailed {
        /// The worker's label.
        worker: String,
    },
    /// The worker is failed and takes no new work.
    Unavailable {
        /// The worker's label.
        worker: String,
    },
    /// The request stream ended before its first request.
    NoRequest,
}

impl std::fmt::Display for InferenceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InferenceError::WorkerFailed { worker } => write!(f, "worker {worker} failed"),
            InferenceError::Unavailable { worker } => write!(f, "worker {worker} is unavailable"),
            InferenceError::NoRequest => f.write_str("no request on the stream"),
        }
    }
}

/// Token generation on the workers: requests in, tokens out.
#[rpcnet::service]
pub trait Inference {
    /// Streams tokens for the first request, from its `next_sequence` on, until the client
    /// drops the stream or the worker fails.
    async fn generate(
        &self,
        request: Pin<Box<dyn Stream<Item = InferenceRequest> + Send>>,
    ) -> Result<
        Pin<Box<dyn Stream<Item = Result<InferenceResponse, InferenceError>> + Send>>,
        InferenceError,
    >;
}
