//! Buffers: the pool that large received frames and the writes of streams reuse, and the
//! per-thread arenas small outgoing messages are carved from.
//!
//! Written here rather than taken from a crate: what it needs (buffers handed to QUIC as
//! `Bytes` that come back when QUIC drops them, arenas carved into `BytesMut`s) is the
//! glue between `bytes` and s2n-quic, which no buffer-pool crate offers.
//!
//! Large frames and stream writes need tens of kilobytes at a time, and both give the memory up only when somebody
//! else is done with it: a received message when the last `Payload` sliced from it is
//! dropped, a stream write when QUIC has had it acknowledged. Allocating such buffers
//! afresh each time makes the allocator map, fault in and unmap their pages again and
//! again, which costs more than writing the bytes. Instead a buffer shared with [`share`]
//! goes back to a small process-wide pool when its last user drops it.

use std::cell::RefCell;
use std::sync::Mutex;

use bytes::{Bytes, BytesMut};

/// Streams send their items in writes of about this many bytes.
pub(crate) const WRITE_CHUNK: usize = 64 * 1024;

/// Frames at least this long are assembled in pooled buffers.
pub(crate) const POOLED_FROM: usize = 64 * 1024;
/// The pool keeps at most this many bytes of idle buffers.
const POOL_BYTES: usize = 8 * 1024 * 1024;

struct Pool {
    idle: Vec<Vec<u8>>,
    bytes: usize,
}

static POOL: Mutex<Pool> = Mutex::new(Pool {
    idle: Vec::new(),
    bytes: 0,
});

/// An empty buffer with room for `len` bytes: the smallest idle one that fits without
/// wasting more than half of itself, or a new one.
pub(crate) fn take(len: usize) -> Vec<u8> {
    take_idle(len).unwrap_or_else(|| Vec::with_capacity(len))
}

/// The smallest idle buffer with room for `len` bytes that wastes at most half of itself,
/// if the pool has one.
pub(crate) fn take_idle(len: usize) -> Option<Vec<u8>> {
    let mut pool = POOL.lock().ok()?;
    let best = pool
        .idle
        .iter()
        .enumerate()
        .filter(|(_, buf)| buf.capacity() >= len && buf.capacity() / 2 <= len)
        .min_by_key(|(_, buf)| buf.capacity())
        .map(|(at, _)| at)?;
    let buf = pool.idle.swap_remove(best);
    pool.bytes -= buf.capacity();
    Some(buf)
}

/// An empty buffer for a stream's next write: room for a full write plus the small item
/// that takes it past [`WRITE_CHUNK`].
pub(crate) fn write_buffer() -> Vec<u8> {
    take(WRITE_CHUNK + WRITE_CHUNK / 8)
}

/// `buf` as shared `Bytes`; its memory goes back to the pool when the last clone (or slice)
/// is dropped.
pub(crate) fn share(buf: Vec<u8>) -> Bytes {
    Bytes::from_owner(Pooled(buf))
}

/// Bytes of the per-thread arenas that small outgoing messages are carved from.
const ARENA_SIZE: usize = 64 * 1024;

thread_local! {
    /// The rest of this thread's current arena.
    static ARENA: RefCell<BytesMut> = RefCell::new(BytesMut::new());
}

/// An empty buffer with room for `capacity` bytes, for one outgoing message.
///
/// A small one is carved from a per-thread arena: it then costs neither an allocation of its
/// own nor the second one `BytesMut::freeze` makes for a buffer it does not fill, only a
/// reference count. An arena is freed once its last message has been sent and dropped. A
/// message that outgrows its buffer simply moves to an allocation of its own.
pub(crate) fn message_buffer(capacity: usize) -> BytesMut {
    if capacity > ARENA_SIZE / 16 {
        return BytesMut::with_capacity(capacity);
    }
    ARENA
        .try_with(|arena| {
            let mut arena = arena.try_borrow_mut().ok()?;
            if arena.capacity() < capacity {
                *arena = BytesMut::with_capacity(ARENA_SIZE);
            }
            let rest = arena.split_off(capacity);
            Some(std::mem::replace(&mut *arena, rest))
        })
        .ok()
        .flatten()
        .unwrap_or_else(|| BytesMut::with_capacity(capacity))
}

/// A buffer on loan from the pool; back to it when dropped.
struct Pooled(Vec<u8>);

impl AsRef<[u8]> for Pooled {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        give_back(std::mem::take(&mut self.0));
    }
}

/// Returns a buffer taken from the pool but not used (or one whose user is done with it)
/// to the pool, if the pool has room for it.
pub(crate) fn give_back(mut buf: Vec<u8>) {
    if let Ok(mut pool) = POOL.lock() {
        if pool.bytes + buf.capacity() <= POOL_BYTES {
            buf.clear();
            pool.bytes += buf.capacity();
            pool.idle.push(buf);
        }
    }
}

/// The bytes of idle buffers the pool keeps.
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) fn idle_bytes() -> usize {
    POOL.lock().map(|pool| pool.bytes).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_buffers_share_an_arena_and_outgrow_it_safely() {
        let mut a = message_buffer(64);
        let mut b = message_buffer(64);
        a.extend_from_slice(&[1; 64]);
        b.extend_from_slice(&[2; 64]);
        assert_eq!(
            b.as_ptr() as usize - a.as_ptr() as usize,
            64,
            "adjacent in one arena"
        );
        // Writing past its room moves a buffer elsewhere without touching its neighbour.
        a.extend_from_slice(&[3; 100]);
        let (a, b) = (a.freeze(), b.freeze());
        assert_eq!(&a[..64], &[1; 64][..]);
        assert_eq!(&a[64..], &[3; 100][..]);
        assert_eq!(&b[..], &[2; 64][..]);
        let big = message_buffer(ARENA_SIZE);
        assert!(big.capacity() >= ARENA_SIZE);
    }
}
