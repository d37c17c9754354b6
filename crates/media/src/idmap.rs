//! Maps keyed by the engine's own small integer ids (sessions, streams, SSRCs).
//!
//! Why not the std `HashMap` hasher: SipHash guards against keys an attacker chooses, and
//! these keys are never chosen by a peer (session and stream ids are counters of ours), while
//! the pacing loop looks a stream up for every packet it sends — thousands of times per
//! 20 ms frame — where SipHash showed in the profile. A multiplicative (Fibonacci) hash
//! spreads sequential ids over the table's buckets and control bytes at the cost of a
//! multiply.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// A `HashMap` keyed by one of our integer ids.
pub type IdMap<K, V> = HashMap<K, V, BuildHasherDefault<IdHasher>>;

/// Fibonacci hashing of integer keys (Knuth, TAOCP 6.4): multiply by 2^64 / phi.
#[derive(Debug, Default, Clone, Copy)]
pub struct IdHasher(u64);

const PHI: u64 = 0x9E37_79B9_7F4A_7C15;

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only reached for keys that are not plain integers: fold the bytes in, still
        // multiplicatively, so any key type stays correct (merely slower).
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(PHI);
        }
    }

    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0 ^ n).wrapping_mul(PHI);
    }

    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::BuildHasher;

    #[test]
    fn sequential_ids_spread_over_top_and_bottom_bits() {
        let b = BuildHasherDefault::<IdHasher>::default();
        let hashes: std::collections::HashSet<u64> =
            (0..10_000u64).map(|i| b.hash_one(i)).collect();
        assert_eq!(hashes.len(), 10_000);
        // hashbrown takes its 7-bit tag from the top bits: sequential ids must not share it.
        let tags: std::collections::HashSet<u64> =
            (0..128u64).map(|i| b.hash_one(i) >> 57).collect();
        assert!(tags.len() > 64, "only {} distinct tags", tags.len());
    }

    #[test]
    fn map_works_with_tuple_and_string_keys() {
        let mut m: IdMap<(u32, String), u8> = IdMap::default();
        m.insert((1, "a".into()), 1);
        m.insert((1, "b".into()), 2);
        assert_eq!(m.get(&(1, "a".into())), Some(&1));
        assert_eq!(m.get(&(1, "b".into())), Some(&2));
    }
}
