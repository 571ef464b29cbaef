//! The request side of a call that streams its requests: a task of its own writes them, so
//! that requests and responses flow at the same time.

use std::pin::Pin;

use futures::{FutureExt, Stream, StreamExt};
use serde::Serialize;
use tokio::sync::oneshot;

use super::stream::SendGuard;
use crate::buffers;
use crate::codec::put_message;
use crate::error::RpcError;
use crate::frame::{put_frame, FrameType};
use crate::io::stream_error;

/// The request side of a streaming-request call, written by a task of its own so requests
/// and responses flow at the same time.
#[derive(Debug)]
pub(super) struct Pump {
    /// Completed (`send(())`) when the call ends well; dropped when it is abandoned, which
    /// makes the task reset the stream.
    pub(super) done: Option<oneshot::Sender<()>>,
    /// A local failure of the request side (an item that cannot be encoded or is too large).
    failed: oneshot::Receiver<RpcError>,
}

impl Pump {
    pub(super) fn new(done: oneshot::Sender<()>, failed: oneshot::Receiver<RpcError>) -> Self {
        Pump {
            done: Some(done),
            failed,
        }
    }

    /// Ends the call: on success the stream is finished cleanly; a local request-side
    /// failure takes precedence over what the response side saw (it caused it).
    pub(super) fn finish_with<T>(mut self, result: Result<T, RpcError>) -> Result<T, RpcError> {
        if let Ok(error) = self.failed.try_recv() {
            return Err(error);
        }
        if result.is_ok() {
            if let Some(done) = self.done.take() {
                let _ = done.send(());
            }
        }
        result
    }

    pub(super) fn local_failure(&mut self) -> Option<RpcError> {
        self.failed.try_recv().ok()
    }
}

pub(super) async fn pump_requests<S>(
    mut guard: SendGuard,
    requests: S,
    limit: usize,
    mut done: oneshot::Receiver<()>,
    failed: oneshot::Sender<RpcError>,
) where
    S: Stream + Send + 'static,
    S::Item: Serialize + Send,
{
    let requests = std::pin::pin!(requests);
    let write = write_requests(&mut guard, requests, limit);
    tokio::select! {
        written = write => match written {
            // The end frame is out: finish the request side.
            Ok(()) => guard.complete(),
            // The guard resets the stream on the way out.
            Err(error) => {
                let _ = failed.send(error);
            }
        },
        // The response side ended first (the server answered early, or the call was
        // dropped): stop sending, resetting the stream if the call was abandoned.
        outcome = &mut done => {
            if outcome.is_ok() {
                guard.complete();
            }
        }
    }
}

async fn write_requests<S>(
    guard: &mut SendGuard,
    mut requests: Pin<&mut S>,
    limit: usize,
) -> Result<(), RpcError>
where
    S: Stream,
    S::Item: Serialize,
{
    // Writes go out in pooled buffers (see `buffers`), taken once there is something to send.
    loop {
        let mut next = requests.next().await;
        let mut buffer = buffers::write_buffer();
        // Coalesce the items that are already available into one write.
        let ended = loop {
            match next {
                Some(item) => put_message(&mut buffer, FrameType::Data, &item, limit)?,
                None => {
                    put_frame(&mut buffer, FrameType::End, &[]);
                    break true;
                }
            }
            if buffer.len() >= buffers::WRITE_CHUNK {
                break false;
            }
            match requests.next().now_or_never() {
                Some(ready) => next = ready,
                None => break false,
            }
        };
        let stream = guard.stream()?;
        stream
            .send(buffers::share(buffer))
            .await
            .map_err(stream_error)?;
        if ended {
            return Ok(());
        }
    }
}
