//! What the fuzz targets share: an allocator that counts live bytes (so a target can assert
//! how much a decoder may hold), and a reader of the fuzzer's bytes as a program of
//! operations.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The system allocator, counting the bytes live and the peak since [`reset_peak`].
pub struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is passed to the system allocator unchanged; the counters only observe.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            grew(layout.size());
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            grew(layout.size());
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
            grew(new_size);
        }
        new
    }
}

fn grew(size: usize) {
    let live = LIVE.fetch_add(size, Ordering::Relaxed) + size;
    PEAK.fetch_max(live, Ordering::Relaxed);
}

/// Bytes allocated and not yet freed.
pub fn live() -> usize {
    LIVE.load(Ordering::Relaxed)
}

/// The most bytes live at once since the last [`reset_peak`].
pub fn peak() -> usize {
    PEAK.load(Ordering::Relaxed)
}

/// Starts a new peak from the bytes live now.
pub fn reset_peak() {
    PEAK.store(live(), Ordering::Relaxed);
}

/// Runs `f` and returns its result with the most bytes it had live at once beyond those
/// live when it started.
pub fn peak_of<R>(f: impl FnOnce() -> R) -> (R, usize) {
    let before = live();
    reset_peak();
    let result = f();
    (result, peak().saturating_sub(before))
}

/// The fuzzer's bytes read front to back; reading past the end yields nothing.
#[derive(Debug)]
pub struct Input<'a>(&'a [u8]);

impl<'a> Input<'a> {
    /// Reads `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Input(data)
    }

    /// The next byte.
    pub fn byte(&mut self) -> Option<u8> {
        let (&first, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(first)
    }

    /// The next `n` bytes, or all that are left if fewer.
    pub fn take(&mut self, n: usize) -> &'a [u8] {
        let (taken, rest) = self.0.split_at(n.min(self.0.len()));
        self.0 = rest;
        taken
    }

    /// The next two bytes as a big-endian number (missing bytes read as zero).
    pub fn u16(&mut self) -> u16 {
        let high = self.byte().unwrap_or(0);
        let low = self.byte().unwrap_or(0);
        u16::from_be_bytes([high, low])
    }

    /// Everything left.
    pub fn rest(&mut self) -> &'a [u8] {
        self.take(self.0.len())
    }
}

/// Message types the codec target decodes: what a service's requests and responses are
/// made of (integers, strings, byte payloads, sequences, maps, options, enums, nesting).
pub mod messages {
    use std::collections::BTreeMap;

    use rpcnet_runtime::Payload;
    use serde::{Deserialize, Serialize};

    /// A message with a field of each common kind.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub struct Sample {
        /// An integer.
        pub id: u64,
        /// A string.
        pub name: String,
        /// Bytes shared with the frame they arrive in.
        pub data: Payload,
        /// A sequence.
        pub values: Vec<i32>,
        /// A map.
        pub labels: BTreeMap<String, u32>,
        /// An enum.
        pub kind: Kind,
        /// An option.
        pub note: Option<String>,
        /// A float.
        pub ratio: f64,
        /// Nested messages.
        pub parts: Vec<Part>,
    }

    /// An enum of each variant shape.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub enum Kind {
        /// A unit variant.
        Plain,
        /// A tuple variant.
        Pair(u32, String),
        /// A struct variant.
        Blob {
            /// A signed integer.
            at: i64,
            /// Bytes through `serde_bytes`.
            #[serde(with = "serde_bytes")]
            raw: Vec<u8>,
        },
    }

    /// A nested message.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub struct Part {
        /// A byte payload.
        pub chunk: Payload,
        /// A small integer.
        pub seq: u16,
    }
}
