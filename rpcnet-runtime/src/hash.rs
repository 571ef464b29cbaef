//! A fast, non-cryptographic hasher for the server's internal tables.
//!
//! The tables it serves are keyed by things a peer cannot use to flood a bucket: method
//! names are looked up (never inserted) from the network, and stream ids are assigned by
//! QUIC in sequence. SipHash's protection against chosen keys buys nothing there and costs
//! a measurable share of a small call.

use std::hash::{BuildHasherDefault, Hasher};

/// The FxHash mixing step (rotate, xor, multiply), as used by rustc.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct FxHasher {
    hash: u64,
}

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FxHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(word));
        }
    }

    #[inline]
    fn write_u8(&mut self, value: u8) {
        self.add(u64::from(value));
    }

    #[inline]
    fn write_u64(&mut self, value: u64) {
        self.add(value);
    }

    #[inline]
    fn write_usize(&mut self, value: usize) {
        self.add(value as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        // The multiply leaves the low bits weakest (a key's trailing zeros survive it),
        // and hash tables pick buckets by the low bits: bring the well-mixed high bits down.
        self.hash.rotate_left(26)
    }
}

/// A `HashMap` hasher builder for [`FxHasher`].
pub(crate) type FxBuildHasher = BuildHasherDefault<FxHasher>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{HashMap, HashSet};
    use std::hash::{BuildHasher, Hash};

    fn hash_of<T: Hash>(value: T) -> u64 {
        FxBuildHasher::default().hash_one(value)
    }

    #[test]
    fn stream_ids_spread_over_buckets() {
        // Client stream ids are multiples of four; their hashes must not share low bits.
        // 1024 keys in 1024 buckets fill about 647 when hashed at random; a hash keeping the
        // keys' trailing zeros would fill 256.
        let low_bits: HashSet<u64> = (0..1024u64).map(|i| hash_of(i * 4) & 0x3ff).collect();
        assert!(
            low_bits.len() > 500,
            "only {} distinct buckets",
            low_bits.len()
        );
    }

    #[test]
    fn method_names_of_equal_prefix_differ() {
        assert_ne!(hash_of("Calculator.add"), hash_of("Calculator.sub"));
        let mut map: HashMap<String, u32, FxBuildHasher> = HashMap::default();
        map.insert("bench.Bench.echo".into(), 1);
        assert_eq!(map.get("bench.Bench.echo"), Some(&1));
    }
}
