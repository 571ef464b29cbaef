//! Cancelling calls whose request side is already finished.
//!
//! A client finishes its side of a call's stream as soon as it has sent the request (so
//! the request and its end travel together), which leaves it no way to reset that side
//! later. To cancel such a call it opens a unidirectional stream of kind `0x03` carrying
//! the call's stream id. Each server connection keeps a [`CancelRegistry`] of its calls in
//! progress to find the call by id.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use bytes::{BufMut, Bytes, BytesMut};

use crate::context::CallSignal;
use crate::frame::STREAM_KIND_CANCEL;
use crate::hash::FxBuildHasher;

/// Cancels for ids the server has not seen yet (the cancel overtook its call) are kept
/// until the call arrives, up to this many.
const MAX_EARLY_CANCELS: usize = 1024;

/// The calls in progress on one connection, by QUIC stream id.
#[derive(Debug, Default)]
pub(crate) struct CancelRegistry {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    active: HashMap<u64, Arc<CallSignal>, FxBuildHasher>,
    /// Cancels that arrived before their call's stream.
    early: HashSet<u64, FxBuildHasher>,
    /// The highest stream id registered so far. Streams are accepted in id order, so a
    /// cancel for an id at or below it whose call is not active is for a finished call.
    highest: Option<u64>,
}

/// A call's entry in the registry; removing it on drop keeps the registry exact on every
/// path out of a call.
#[derive(Debug)]
pub(crate) struct Registration {
    registry: Arc<CancelRegistry>,
    id: u64,
    signal: Arc<CallSignal>,
}

impl Registration {
    pub(crate) fn signal(&self) -> &Arc<CallSignal> {
        &self.signal
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        if let Ok(mut state) = self.registry.state.lock() {
            state.active.remove(&self.id);
        }
    }
}

impl CancelRegistry {
    /// Registers the call on stream `id`, in the order streams are accepted.
    pub(crate) fn register(self: &Arc<Self>, id: u64) -> Registration {
        let signal = Arc::new(CallSignal::default());
        if let Ok(mut state) = self.state.lock() {
            state.highest = Some(state.highest.map_or(id, |h| h.max(id)));
            if state.early.remove(&id) {
                signal.cancel();
            }
            state.active.insert(id, Arc::clone(&signal));
        }
        Registration {
            registry: Arc::clone(self),
            id,
            signal,
        }
    }

    /// Cancels the call on stream `id`, now or when it arrives.
    pub(crate) fn cancel(&self, id: u64) {
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        if let Some(signal) = state.active.get(&id) {
            signal.cancel();
        } else if state.highest.is_none_or(|h| id > h) && state.early.len() < MAX_EARLY_CANCELS {
            state.early.insert(id);
        }
    }

    #[cfg(test)]
    fn active(&self) -> usize {
        self.state.lock().map(|s| s.active.len()).unwrap_or(0)
    }
}

/// The bytes of a cancel stream for the call on stream `id`.
pub(crate) fn cancel_message(id: u64) -> Bytes {
    let mut out = BytesMut::with_capacity(9);
    out.put_u8(STREAM_KIND_CANCEL);
    out.put_u64(id);
    out.freeze()
}

/// Parses a cancel stream's bytes (after which the stream must end).
pub(crate) fn parse_cancel(bytes: &[u8]) -> Option<u64> {
    match bytes {
        [STREAM_KIND_CANCEL, id @ ..] if id.len() == 8 => {
            let mut raw = [0u8; 8];
            raw.copy_from_slice(id);
            Some(u64::from_be_bytes(raw))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cancel_reaches_an_active_call() {
        let registry = Arc::new(CancelRegistry::default());
        let call = registry.register(4);
        registry.cancel(4);
        assert!(call.signal().is_cancelled());
    }

    #[test]
    fn a_cancel_that_overtakes_its_call_applies_when_the_call_arrives() {
        let registry = Arc::new(CancelRegistry::default());
        let first = registry.register(0);
        registry.cancel(8);
        let later = registry.register(8);
        assert!(later.signal().is_cancelled());
        assert!(!first.signal().is_cancelled());
    }

    #[test]
    fn a_cancel_for_a_finished_call_is_forgotten() {
        let registry = Arc::new(CancelRegistry::default());
        drop(registry.register(0));
        drop(registry.register(4));
        registry.cancel(0);
        assert_eq!(
            registry.state.lock().map(|s| s.early.len()).unwrap_or(99),
            0
        );
        assert_eq!(registry.active(), 0, "registrations remove themselves");
    }

    #[test]
    fn early_cancels_are_bounded() {
        let registry = Arc::new(CancelRegistry::default());
        for id in 0..(MAX_EARLY_CANCELS as u64 * 2) {
            registry.cancel(id * 4);
        }
        assert_eq!(
            registry.state.lock().map(|s| s.early.len()).unwrap_or(0),
            MAX_EARLY_CANCELS
        );
    }

    #[test]
    fn cancel_messages_round_trip_and_garbage_is_refused() {
        assert_eq!(parse_cancel(&cancel_message(1 << 40)), Some(1 << 40));
        assert_eq!(parse_cancel(&[STREAM_KIND_CANCEL, 1, 2]), None);
        assert_eq!(parse_cancel(&[0x01; 9]), None);
    }
}
