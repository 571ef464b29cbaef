//! The health service every server serves unless turned off
//! ([`RpcServer::without_health_service`](crate::RpcServer::without_health_service)), in the
//! spirit of gRPC's health checking: `rpcnet.Health.check(service)` answers a
//! [`ServingStatus`], `rpcnet.Health.watch(service)` streams it as it changes.
//!
//! The service named `""` is the server as a whole. Every service added to the server is
//! known as [`Serving`](ServingStatus::Serving) when the server is bound; the server's
//! [`HealthReporter`] ([`BoundServer::health`](crate::BoundServer::health)) changes what
//! is reported. Once the server begins its graceful shutdown, every known service is
//! reported [`NotServing`](ServingStatus::NotServing) and open watches end after saying so,
//! so that they do not hold the shutdown back.
//!
//! A client asks with the generated [`HealthClient`]:
//! `HealthClient::connect(addr, config).await?.check(String::new()).await?`.

use std::collections::HashMap;
use std::pin::Pin;

use futures::Stream;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::server::ServerState;

/// The wire name of the health service.
pub const HEALTH_SERVICE: &str = "rpcnet.Health";

/// What a server reports about one of its services.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ServingStatus {
    /// The status is not known (reported by nothing in this crate; kept for peers that
    /// have no better answer).
    Unknown,
    /// The service takes calls.
    Serving,
    /// The service does not take calls: set by its owner, or the server is shutting down.
    NotServing,
    /// The server does not know a service of that name.
    ServiceUnknown,
}

impl std::fmt::Display for ServingStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ServingStatus::Unknown => "UNKNOWN",
            ServingStatus::Serving => "SERVING",
            ServingStatus::NotServing => "NOT_SERVING",
            ServingStatus::ServiceUnknown => "SERVICE_UNKNOWN",
        })
    }
}

/// The health of a server's services, as the health service reports it.
#[rpcnet_macros::service(crate = "crate", name = "rpcnet.Health")]
pub trait Health {
    /// The current status of `service` (`""` for the server as a whole).
    async fn check(&self, service: String) -> ServingStatus;

    /// The status of `service` now and after each change. Ends after reporting
    /// `NotServing` when the server begins its graceful shutdown.
    async fn watch(&self, service: String) -> Pin<Box<dyn Stream<Item = ServingStatus> + Send>>;
}

/// Sets what a server's health service reports. Cheap to clone.
#[derive(Debug, Clone)]
pub struct HealthReporter {
    statuses: watch::Sender<HashMap<String, ServingStatus>>,
    server: watch::Receiver<ServerState>,
}

impl HealthReporter {
    pub(crate) fn new<'a>(
        services: impl IntoIterator<Item = &'a str>,
        server: watch::Receiver<ServerState>,
    ) -> Self {
        let mut statuses: HashMap<String, ServingStatus> = services
            .into_iter()
            .map(|s| (s.to_owned(), ServingStatus::Serving))
            .collect();
        statuses.insert(String::new(), ServingStatus::Serving);
        HealthReporter {
            statuses: watch::Sender::new(statuses),
            server,
        }
    }

    /// Sets the status reported for `service` (`""` is the server as a whole). A service
    /// that was not known becomes known. While the server shuts down, every known service
    /// is reported `NotServing` whatever is set here.
    pub fn set_status(&self, service: impl Into<String>, status: ServingStatus) {
        let service = service.into();
        self.statuses
            .send_if_modified(|map| map.insert(service, status) != Some(status));
    }

    /// Reports `service` as [`Serving`](ServingStatus::Serving).
    pub fn set_serving(&self, service: impl Into<String>) {
        self.set_status(service, ServingStatus::Serving);
    }

    /// Reports `service` as [`NotServing`](ServingStatus::NotServing).
    pub fn set_not_serving(&self, service: impl Into<String>) {
        self.set_status(service, ServingStatus::NotServing);
    }

    /// Forgets `service`: it is then reported as
    /// [`ServiceUnknown`](ServingStatus::ServiceUnknown).
    pub fn remove(&self, service: &str) {
        self.statuses
            .send_if_modified(|map| map.remove(service).is_some());
    }

    /// What the health service reports for `service` now.
    pub fn status(&self, service: &str) -> ServingStatus {
        let draining = *self.server.borrow() != ServerState::Running;
        self.resolve(service, draining)
    }

    fn resolve(&self, service: &str, draining: bool) -> ServingStatus {
        match self.statuses.borrow().get(service) {
            None => ServingStatus::ServiceUnknown,
            Some(_) if draining => ServingStatus::NotServing,
            Some(status) => *status,
        }
    }
}

/// The implementation of [`Health`] over a server's [`HealthReporter`].
#[derive(Debug)]
pub(crate) struct HealthService {
    pub(crate) reporter: HealthReporter,
}

/// What a watch waits on between the statuses it reports.
struct Watching {
    reporter: HealthReporter,
    service: String,
    statuses: watch::Receiver<HashMap<String, ServingStatus>>,
    server: watch::Receiver<ServerState>,
    last: Option<ServingStatus>,
    done: bool,
}

impl Watching {
    /// The next status that differs from the last one reported, or `None` when the watch
    /// is over (after reporting the shutdown).
    async fn next(&mut self) -> Option<ServingStatus> {
        loop {
            if self.done {
                return None;
            }
            self.statuses.borrow_and_update();
            let draining = *self.server.borrow_and_update() != ServerState::Running;
            let status = self.reporter.resolve(&self.service, draining);
            if draining {
                self.done = true;
            }
            if self.last != Some(status) {
                self.last = Some(status);
                return Some(status);
            }
            if self.done {
                return None;
            }
            tokio::select! {
                changed = self.statuses.changed() => if changed.is_err() { return None },
                changed = self.server.changed() => if changed.is_err() { return None },
            }
        }
    }
}

impl Health for HealthService {
    async fn check(&self, service: String) -> ServingStatus {
        self.reporter.status(&service)
    }

    async fn watch(&self, service: String) -> Pin<Box<dyn Stream<Item = ServingStatus> + Send>> {
        let watching = Watching {
            statuses: self.reporter.statuses.subscribe(),
            server: self.reporter.server.clone(),
            reporter: self.reporter.clone(),
            service,
            last: None,
            done: false,
        };
        Box::pin(futures::stream::unfold(watching, |mut w| async move {
            w.next().await.map(|status| (status, w))
        }))
    }
}
