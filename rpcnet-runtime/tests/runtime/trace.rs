//! Trace context over real calls: a `traceparent` the client sends reaches the handler, and
//! a call the handler makes while serving continues the same trace with a parent id of its
//! own, unless the handler sets one itself; a client's trace source gives the `traceparent`
//! of its calls that carry none.

use std::net::SocketAddr;

use bytes::Bytes;
use rpcnet_runtime::{
    CallContext, CallOptions, Code, RpcClient, RpcServer, Status, TraceContext, TRACEPARENT,
};

use crate::support::{client, config, start, Running};

fn traceparent_of(ctx: &CallContext) -> String {
    ctx.trace().map(|t| t.to_traceparent()).unwrap_or_default()
}

/// A server whose `Trace.seen` answers with the `traceparent` its call carried (empty if
/// none).
fn leaf() -> Running {
    let mut server = RpcServer::new(config("127.0.0.1:0"));
    server.register(
        "Trace.seen",
        |ctx: CallContext, _request: Bytes| async move { Ok(Bytes::from(traceparent_of(&ctx))) },
    );
    start(server)
}

/// A server whose `Trace.relay` calls the leaf's `Trace.seen` while serving (with the
/// `traceparent` given as its request, if any, else no metadata) and answers with its own
/// call's trace context and the leaf's, space-separated.
fn middle(leaf: SocketAddr) -> Running {
    let mut server = RpcServer::new(config("127.0.0.1:0"));
    server.register(
        "Trace.relay",
        move |ctx: CallContext, request: Bytes| async move {
            let mut options = CallOptions::default();
            if !request.is_empty() {
                options = options.metadata(TRACEPARENT, request);
            }
            let at_leaf = client(leaf)
                .await
                .call_raw("Trace.seen", Bytes::new(), options)
                .await
                .map_err(|e| Status::new(Code::Internal, e.to_string()))?;
            let at_leaf = String::from_utf8_lossy(&at_leaf);
            Ok(Bytes::from(format!("{} {at_leaf}", traceparent_of(&ctx))))
        },
    );
    start(server)
}

/// Calls the middle hop with `root` as the trace and `explicit` as the traceparent it should
/// set on its nested call; returns the contexts the middle hop and the leaf saw.
async fn relay(root: TraceContext, explicit: Option<TraceContext>) -> (TraceContext, TraceContext) {
    let leaf = leaf();
    let middle = middle(leaf.addr);
    let request = explicit
        .map(|t| Bytes::from(t.to_traceparent()))
        .unwrap_or_default();
    let answer = client(middle.addr)
        .await
        .call_raw(
            "Trace.relay",
            request,
            CallOptions::default().metadata(TRACEPARENT, root.to_traceparent()),
        )
        .await
        .expect("the relayed call succeeds");
    let answer = String::from_utf8(answer.to_vec()).expect("text");
    let (at_middle, at_leaf) = answer.split_once(' ').expect("two contexts");
    (
        TraceContext::parse(at_middle).expect("the middle hop saw a trace"),
        TraceContext::parse(at_leaf).expect("the leaf saw a trace"),
    )
}

#[tokio::test]
async fn a_nested_call_continues_the_callers_trace_with_its_own_parent_id() {
    let root = TraceContext::new_root();
    let (at_middle, at_leaf) = relay(root, None).await;
    assert_eq!(at_middle, root, "the first hop sees what the client sent");
    assert_eq!(
        at_leaf.trace_id(),
        root.trace_id(),
        "one trace across both hops"
    );
    assert_ne!(at_leaf.parent_id(), root.parent_id());
    assert!(at_leaf.is_sampled());
}

#[tokio::test]
async fn a_traceparent_the_handler_sets_on_its_call_is_sent_as_set() {
    let own = TraceContext::new_root();
    let (_, at_leaf) = relay(TraceContext::new_root(), Some(own)).await;
    assert_eq!(at_leaf, own);
}

#[tokio::test]
async fn a_call_made_outside_any_served_call_starts_no_trace() {
    let leaf = leaf();
    let seen = client(leaf.addr)
        .await
        .call_raw("Trace.seen", Bytes::new(), CallOptions::default())
        .await
        .expect("a call");
    assert!(seen.is_empty(), "{seen:?}");
}

const SOURCED: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

fn sourced() -> Option<TraceContext> {
    TraceContext::parse(SOURCED)
}

fn no_trace() -> Option<TraceContext> {
    None
}

#[tokio::test]
async fn a_trace_source_sets_the_traceparent_of_calls_that_carry_none() {
    let leaf = leaf();
    let seen = |client: RpcClient, options: CallOptions| async move {
        let seen = client
            .call_raw("Trace.seen", Bytes::new(), options)
            .await
            .expect("a call");
        String::from_utf8(seen.to_vec()).expect("text")
    };
    let with_source =
        RpcClient::connect(leaf.addr, config("127.0.0.1:0").with_trace_source(sourced))
            .await
            .expect("client connects");
    assert_eq!(
        seen(with_source.clone(), CallOptions::default()).await,
        SOURCED
    );
    let own = TraceContext::new_root();
    let explicit = CallOptions::default().metadata(TRACEPARENT, own.to_traceparent());
    assert_eq!(
        seen(with_source, explicit).await,
        own.to_traceparent(),
        "a traceparent the caller sets is sent as set"
    );
    let without = RpcClient::connect(leaf.addr, config("127.0.0.1:0").with_trace_source(no_trace))
        .await
        .expect("client connects");
    assert_eq!(seen(without, CallOptions::default()).await, "");
}
