//! [`ClusterClient`]: calls to the cluster's workers, each routed by the registry, with
//! failover and budgeted retries; and [`WorkerClient`], a typed client bound to one worker.

use std::collections::HashSet;
use std::fmt;
use std::future::IntoFuture;
use std::ops::Deref;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::FutureExt;
use metrics::{counter, Counter};
use rpcnet_runtime::{CallOptions, ClientEndpoint, Code, FromClient, Payload, RpcConfig, RpcError};
use tracing::{debug, trace};

use crate::routing::error::RoutingError;
use crate::routing::filter::TagFilter;
use crate::routing::registry::{PickedWorker, WorkerRegistry};
use crate::routing::retry_budget::{RetryBudget, RetryLedger};
use crate::routing::worker::{InFlight, Worker, WorkerInfo};

/// How many workers one call tries at most, by default.
const DEFAULT_MAX_ATTEMPTS: usize = 3;

/// Calls to the cluster's workers: each call goes to the worker the registry picks for its
/// tag filter, over one pooled connection per worker, closed when the worker leaves the
/// pool. The connection belongs to the registry's entry for the worker, so every call and
/// typed client of every `ClusterClient` on one registry shares it; it is made, on first
/// use, with the configuration of the client that first uses it.
///
/// When the worker of a call fails or leaves the pool, the call ends at once with
/// [`RoutingError::WorkerLost`] (not at its deadline). It is then sent to another worker
/// if it is safe to: always when the failed attempt certainly ran no handler
/// ([`RpcError::is_safe_to_retry`]), and, for calls marked retry-safe (per call with
/// [`WorkerCall::retry_safe`], per method with
/// [`with_retry_safe_method`](Self::with_retry_safe_method)), also after a lost worker or
/// a broken connection. Retries draw on a [`RetryBudget`], so a degraded cluster sees
/// failures rather than a storm of retries.
///
/// A worker that stalls (it answers nothing but keeps its connection) holds a call until
/// the call's deadline, unless the client bounds each attempt
/// ([`with_attempt_timeout`](Self::with_attempt_timeout)): an attempt past its own timeout
/// then ends with [`RpcError::DeadlineExceeded`], and a retry-safe call goes on to another
/// worker with the time it has left.
pub struct ClusterClient {
    registry: Arc<WorkerRegistry>,
    config: RpcConfig,
    endpoint: OnceLock<ClientEndpoint>,
    retry_safe_methods: HashSet<String>,
    /// Shared by the calls in flight: each touches it twice for a few nanoseconds, which a
    /// message to a task owning it would cost many times over.
    ledger: Mutex<RetryLedger>,
    wait_for_worker: Option<Duration>,
    max_attempts: usize,
    attempt_timeout: Option<Duration>,
    /// Its metrics, if its registry reports them.
    metrics: Option<RoutingMetrics>,
}

/// The handles of a client's routing metrics (named on
/// [`ClusterConfig::with_metrics`](crate::ClusterConfig::with_metrics)).
#[derive(Debug)]
struct RoutingMetrics {
    retries: Counter,
    retries_exhausted: Counter,
    no_workers: Counter,
}

impl RoutingMetrics {
    fn new() -> Self {
        RoutingMetrics {
            retries: counter!("rpcnet_routing_retries_total"),
            retries_exhausted: counter!("rpcnet_routing_retries_exhausted_total"),
            no_workers: counter!("rpcnet_routing_no_workers_total"),
        }
    }
}

impl fmt::Debug for ClusterClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClusterClient")
            .field("registry", &self.registry)
            .field("retry_safe_methods", &self.retry_safe_methods)
            .field("wait_for_worker", &self.wait_for_worker)
            .field("max_attempts", &self.max_attempts)
            .field("attempt_timeout", &self.attempt_timeout)
            .finish_non_exhaustive()
    }
}

impl ClusterClient {
    /// A client of `registry`'s workers, connecting with `config` (its certificate and
    /// server name; its default deadline bounds each call, retries included). The default
    /// [`RetryBudget`] applies, no method is retry-safe, a call tries at most 3 workers, and
    /// a call with no matching worker fails at once. It reports routing metrics if the
    /// registry does ([`WorkerRegistry::with_metrics`]).
    pub fn new(registry: Arc<WorkerRegistry>, config: RpcConfig) -> Self {
        let metrics = registry.metrics_enabled().then(RoutingMetrics::new);
        ClusterClient {
            metrics,
            registry,
            config,
            endpoint: OnceLock::new(),
            retry_safe_methods: HashSet::new(),
            ledger: Mutex::new(RetryLedger::new(RetryBudget::default(), Instant::now())),
            wait_for_worker: None,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            attempt_timeout: None,
        }
    }

    /// Marks `method` retry-safe by default (idempotent: running it twice does no harm).
    /// A call can override it with [`WorkerCall::retry_safe`].
    pub fn with_retry_safe_method(mut self, method: impl Into<String>) -> Self {
        self.retry_safe_methods.insert(method.into());
        self
    }

    /// Bounds retries (default: [`RetryBudget::default`]).
    pub fn with_retry_budget(mut self, budget: RetryBudget) -> Self {
        self.ledger = Mutex::new(RetryLedger::new(budget, Instant::now()));
        self
    }

    /// How many workers one call tries at most (at least 1; default 3).
    pub fn with_max_attempts(mut self, attempts: usize) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    /// Bounds each attempt of a call to `timeout` (default: none, an attempt may take all
    /// the time the call has left). An attempt that runs out of it fails with
    /// [`RpcError::DeadlineExceeded`]; a retry-safe call is then sent to another worker
    /// (within the retry budget, the call's deadline and its number of attempts), any
    /// other call fails with that error, since its handler may have run.
    pub fn with_attempt_timeout(mut self, timeout: Duration) -> Self {
        self.attempt_timeout = Some(timeout);
        self
    }

    /// When no worker matches a call, waits up to `patience` (and no longer than the call's
    /// deadline) for one to join before failing with
    /// [`RoutingError::NoWorkersAvailable`]; and when a call that may be retried has tried
    /// every matching worker, waits as long for another one (a worker that joins, or one
    /// that comes back from a restart) before failing with its last attempt's error. By
    /// default the call fails at once.
    pub fn with_wait_for_worker(mut self, patience: Duration) -> Self {
        self.wait_for_worker = Some(patience);
        self
    }

    /// The registry the client routes through.
    pub fn registry(&self) -> &Arc<WorkerRegistry> {
        &self.registry
    }

    /// Calls `method` (served by a raw handler, `RpcServer::register`) on a worker that
    /// matches `filter`, with `data` as the request bytes. `filter` is a [`TagFilter`], a
    /// `&TagFilter`, or the required tag values as `Option<&HashMap<String, String>>`
    /// (`None`: any worker of the pool). Await the returned call, or set options on it
    /// first.
    pub fn call_worker<'a>(
        &'a self,
        method: &'a str,
        data: impl Into<Payload>,
        filter: impl Into<TagFilter>,
    ) -> WorkerCall<'a> {
        WorkerCall {
            client: self,
            method,
            data: data.into().into_bytes(),
            filter: filter.into(),
            retry_safe: None,
            timeout: None,
        }
    }

    /// A typed client (any client `#[rpcnet::service]` generates, or a plain
    /// `RpcClient`) bound to the worker the registry picks for `filter`. The worker counts
    /// one call in flight until the returned [`WorkerClient`] is dropped, however many calls
    /// go through it; if the worker leaves the pool, its calls fail at once.
    pub async fn client<C: FromClient>(
        &self,
        filter: impl Into<TagFilter>,
    ) -> Result<WorkerClient<C>, RoutingError> {
        let filter = filter.into();
        let picked = match self.registry.pick(&filter) {
            Some(picked) => picked,
            None => self.wait_and_pick(&filter, None).await?,
        };
        let rpc = picked.link().client(self.endpoint()?, &self.config);
        let info = picked.info();
        Ok(WorkerClient {
            client: C::from_client(rpc),
            info,
            _in_flight: picked.into_in_flight(),
        })
    }

    fn endpoint(&self) -> Result<&ClientEndpoint, RoutingError> {
        if let Some(endpoint) = self.endpoint.get() {
            return Ok(endpoint);
        }
        let endpoint = ClientEndpoint::new(&self.config).map_err(RoutingError::Endpoint)?;
        // Two first calls at once may both make one; the loser's is dropped unused.
        Ok(self.endpoint.get_or_init(|| endpoint))
    }

    /// Waits (if the client waits for workers) for a worker matching `filter` and picks it.
    async fn wait_and_pick(
        &self,
        filter: &TagFilter,
        deadline: Option<Instant>,
    ) -> Result<PickedWorker, RoutingError> {
        let none = || {
            if let Some(metrics) = &self.metrics {
                metrics.no_workers.increment(1);
            }
            RoutingError::NoWorkersAvailable {
                filter: filter.clone(),
            }
        };
        let Some(patience) = self.patience(deadline) else {
            return Err(none());
        };
        if self.registry.wait_for_worker(filter, patience).await {
            self.registry.pick(filter).ok_or_else(none)
        } else {
            Err(none())
        }
    }

    /// Waits (if the client waits for workers) for a worker matching `filter` that is not
    /// one of `tried`, within the patience and the call's deadline; returns whether one is
    /// in the pool.
    async fn wait_for_untried(
        &self,
        filter: &TagFilter,
        tried: &[Arc<Worker>],
        deadline: Option<Instant>,
    ) -> bool {
        let Some(patience) = self.patience(deadline) else {
            return false;
        };
        self.registry
            .wait_for_candidate_excluding(filter, tried, patience)
            .await
    }

    /// How long a call with `deadline` may wait for a worker, if the client waits at all.
    fn patience(&self, deadline: Option<Instant>) -> Option<Duration> {
        let patience = self.wait_for_worker?;
        Some(match deadline {
            Some(deadline) => patience.min(deadline.saturating_duration_since(Instant::now())),
            None => patience,
        })
    }

    fn try_retry(&self) -> bool {
        match self.ledger.lock() {
            Ok(mut ledger) => ledger.try_retry(Instant::now()),
            Err(poisoned) => poisoned.into_inner().try_retry(Instant::now()),
        }
    }

    fn record_call(&self) {
        match self.ledger.lock() {
            Ok(mut ledger) => ledger.record_call(Instant::now()),
            Err(poisoned) => poisoned.into_inner().record_call(Instant::now()),
        }
    }
}

/// A call of a raw method on a worker, from [`ClusterClient::call_worker`]. Await it (it
/// implements `IntoFuture`); configure it first with [`timeout`](Self::timeout) or
/// [`retry_safe`](Self::retry_safe).
#[must_use = "a call does nothing until it is awaited"]
#[derive(Debug)]
pub struct WorkerCall<'a> {
    client: &'a ClusterClient,
    method: &'a str,
    data: Bytes,
    filter: TagFilter,
    retry_safe: Option<bool>,
    timeout: Option<Duration>,
}

impl WorkerCall<'_> {
    /// Whether this call may run twice (on two workers) without harm, overriding the
    /// method's default. Such a call is re-sent to another worker when its worker is lost
    /// or its connection breaks, within the retry budget.
    pub fn retry_safe(mut self, safe: bool) -> Self {
        self.retry_safe = Some(safe);
        self
    }

    /// The call's timeout, all attempts included (default: the config's default deadline).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    async fn run(self) -> Result<Vec<u8>, RoutingError> {
        let WorkerCall {
            client,
            method,
            data,
            filter,
            retry_safe,
            timeout,
        } = self;
        let deadline = timeout
            .or(client.config.default_deadline())
            .map(|t| Instant::now() + t);
        let retry_safe = retry_safe.unwrap_or_else(|| client.retry_safe_methods.contains(method));
        let endpoint = client.endpoint()?;
        client.record_call();
        // The workers tried, as they were when picked: one that comes back from a restart
        // (a new incarnation or address) may be tried again.
        let mut tried: Vec<Arc<Worker>> = Vec::new();
        let mut last_error: Option<RoutingError> = None;
        loop {
            let picked = match client.registry.pick_excluding(&filter, &tried) {
                Some(picked) => picked,
                None => match last_error {
                    None => client.wait_and_pick(&filter, deadline).await?,
                    // Every matching worker was tried: the last attempt's error says why.
                    Some(error) => return Err(error),
                },
            };
            let worker = picked.id().clone();
            let entry = Arc::clone(picked.entry());
            let link = Arc::clone(picked.link());
            let left = deadline.map(|deadline| deadline.saturating_duration_since(Instant::now()));
            if left.is_some_and(|left| left.is_zero()) {
                return Err(RoutingError::Call {
                    worker,
                    source: RpcError::DeadlineExceeded,
                });
            }
            // The attempt's own bound, when it is shorter than what the call has left.
            let attempt_bound = client
                .attempt_timeout
                .filter(|&bound| left.is_none_or(|left| bound < left));
            let mut options = CallOptions::default();
            if let Some(timeout) = attempt_bound.or(left) {
                options = options.timeout(timeout);
            }
            let rpc = link.client(endpoint, &client.config);
            trace!(%worker, method, "calling worker");
            let began = Instant::now();
            let outcome = tokio::select! {
                result = rpc.call_raw(method, data.clone(), options) => match result {
                    Ok(reply) => Ok(reply),
                    Err(_) if link.is_lost() => Err(RoutingError::WorkerLost { worker: worker.clone() }),
                    Err(source) => Err(RoutingError::Call { worker: worker.clone(), source }),
                },
                () = link.lost() => Err(RoutingError::WorkerLost { worker: worker.clone() }),
            };
            drop(picked);
            let error = match outcome {
                Ok(reply) => {
                    link.record_latency(began.elapsed());
                    return Ok(Vec::from(reply));
                }
                Err(error) => error,
            };
            let may_retry = match &error {
                RoutingError::WorkerLost { .. } => retry_safe,
                RoutingError::Call { source, .. } => {
                    source.is_safe_to_retry()
                        || (retry_safe && source.code() == Code::Unavailable)
                        // The attempt ran out of its own time, not the call's.
                        || (retry_safe
                            && attempt_bound.is_some()
                            && source.code() == Code::DeadlineExceeded)
                }
                _ => false,
            };
            if !may_retry || tried.len() + 1 >= client.max_attempts {
                return Err(error);
            }
            tried.push(entry);
            if !client.registry.has_candidate_excluding(&filter, &tried)
                && !client.wait_for_untried(&filter, &tried, deadline).await
            {
                // Every matching worker was tried, and none joined in time: no retry to
                // spend.
                return Err(error);
            }
            if !client.try_retry() {
                if let Some(metrics) = &client.metrics {
                    metrics.retries_exhausted.increment(1);
                }
                debug!(%worker, method, "retry budget spent; not retrying");
                return Err(error);
            }
            if let Some(metrics) = &client.metrics {
                metrics.retries.increment(1);
            }
            debug!(%worker, method, %error, "retrying on another worker");
            last_error = Some(error);
        }
    }
}

impl<'a> IntoFuture for WorkerCall<'a> {
    type Output = Result<Vec<u8>, RoutingError>;
    type IntoFuture = BoxFuture<'a, Self::Output>;

    fn into_future(self) -> Self::IntoFuture {
        self.run().boxed()
    }
}

/// A typed client bound to one worker, from [`ClusterClient::client`]: use it as the
/// client it wraps (it dereferences to it). The worker counts one call in flight until
/// this is dropped, so keep it alive as long as the streams opened through it run.
#[derive(Debug)]
pub struct WorkerClient<C> {
    client: C,
    info: WorkerInfo,
    _in_flight: InFlight,
}

impl<C> WorkerClient<C> {
    /// The worker this client is bound to, as it was when picked.
    pub fn worker(&self) -> &WorkerInfo {
        &self.info
    }
}

impl<C> Deref for WorkerClient<C> {
    type Target = C;

    fn deref(&self) -> &C {
        &self.client
    }
}
