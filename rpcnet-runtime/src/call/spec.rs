//! What every call carries besides its messages: the client, the method and the options
//! (deadline, metadata), and the builder methods that set them.

use std::time::Duration;

use bytes::Bytes;

use crate::client::RpcClient;
use crate::context::{effective_deadline, CallContext, Deadline};
use crate::header::Metadata;
use crate::trace::TRACEPARENT;

/// Per-call options: a deadline override and metadata. The call builders take the same
/// settings one by one ([`UnaryCall::timeout`](crate::UnaryCall::timeout), …);
/// [`RpcClient::call_raw`] takes them whole.
#[derive(Debug, Clone, Default)]
pub struct CallOptions {
    pub(crate) timeout: Option<Duration>,
    pub(crate) metadata: Metadata,
}

impl CallOptions {
    /// Sets the call's timeout, overriding the client's default deadline. A call made while
    /// serving another still ends no later than that call's deadline.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Adds a metadata entry sent with the call's header.
    pub fn metadata(mut self, key: impl Into<String>, value: impl Into<Bytes>) -> Self {
        self.metadata.insert(key, value);
        self
    }

    /// Readies the call to go out on `client`: returns its deadline (this call's timeout or
    /// else the client's default, and no later than the deadline of the call being served,
    /// if any), and, unless the caller set a `traceparent` itself, sets the one the client's
    /// trace source gives or else continues the served call's trace.
    pub(crate) fn prepare(&mut self, client: &RpcClient) -> Option<Deadline> {
        let own = self.timeout.or(client.config().default_deadline);
        if let Some(source) = client.config().trace_source {
            if self.metadata.get(TRACEPARENT).is_none() {
                if let Some(trace) = source() {
                    self.metadata.insert(TRACEPARENT, trace.to_traceparent());
                }
            }
        }
        let Some(serving) = CallContext::current() else {
            return effective_deadline(own, None);
        };
        if let Some(trace) = serving.trace() {
            if self.metadata.get(TRACEPARENT).is_none() {
                self.metadata
                    .insert(TRACEPARENT, trace.child().to_traceparent());
            }
        }
        effective_deadline(own, serving.deadline())
    }
}

/// The part every call builder shares: where the call goes and how.
#[derive(Debug)]
pub(crate) struct CallSpec {
    pub(crate) client: RpcClient,
    /// The full `Service.method` name.
    pub(crate) method: &'static str,
    pub(crate) options: CallOptions,
}

impl CallSpec {
    pub(crate) fn new(client: RpcClient, method: &'static str) -> Self {
        CallSpec {
            client,
            method,
            options: CallOptions::default(),
        }
    }

    /// The call's parts, and its deadline as of now.
    pub(crate) fn start(mut self) -> (RpcClient, &'static str, CallOptions, Option<Deadline>) {
        let deadline = self.options.prepare(&self.client);
        (self.client, self.method, self.options, deadline)
    }
}

/// The `Debug` impl and the option setters of a call builder (a struct with a `spec:
/// CallSpec` field).
macro_rules! call_builder {
    ($builder:ident<$($param:ident),*>) => {
        impl<$($param),*> ::std::fmt::Debug for $builder<$($param),*> {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.debug_struct(stringify!($builder))
                    .field("method", &self.spec.method)
                    .field("options", &self.spec.options)
                    .finish_non_exhaustive()
            }
        }

        impl<$($param),*> $builder<$($param),*> {
            /// Sets this call's timeout, overriding the client's default deadline. A call
            /// made while serving another still ends no later than that call's deadline.
            pub fn timeout(mut self, timeout: ::std::time::Duration) -> Self {
                self.spec.options = self.spec.options.timeout(timeout);
                self
            }

            /// Adds a metadata entry to the call's header.
            pub fn metadata(
                mut self,
                key: impl Into<String>,
                value: impl Into<::bytes::Bytes>,
            ) -> Self {
                self.spec.options = self.spec.options.metadata(key, value);
                self
            }

            /// Replaces all of the call's options.
            pub fn options(mut self, options: $crate::call::CallOptions) -> Self {
                self.spec.options = options;
                self
            }
        }
    };
}
pub(crate) use call_builder;
