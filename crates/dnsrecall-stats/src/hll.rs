//! HyperLogLog cardinality sketch (Flajolet et al. 2007) with the linear
//! counting correction for small cardinalities (Heule et al. 2013, §4).
//!
//! `2^p` one-byte registers; the relative standard error of the estimate is
//! `1.04 / sqrt(2^p)` (0.81 % at the default `p = 14`, 16 KiB). Below about
//! `2.5 * 2^p` distinct values the estimate comes from the number of empty
//! registers (linear counting), which is exact up to hash collisions for a
//! few hundred values.

/// A HyperLogLog sketch over 64-bit hashes.
#[derive(Clone, Debug)]
pub struct HyperLogLog {
    precision: u8,
    registers: Box<[u8]>,
}

impl HyperLogLog {
    /// Smallest and largest precision accepted.
    pub const PRECISION_RANGE: std::ops::RangeInclusive<u8> = 4..=18;

    /// A sketch with `2^precision` registers (clamped to
    /// [`Self::PRECISION_RANGE`]).
    pub fn new(precision: u8) -> HyperLogLog {
        let precision =
            precision.clamp(*Self::PRECISION_RANGE.start(), *Self::PRECISION_RANGE.end());
        HyperLogLog {
            precision,
            registers: vec![0u8; 1 << precision].into_boxed_slice(),
        }
    }

    /// Bytes held by the registers.
    pub fn size_bytes(&self) -> usize {
        self.registers.len()
    }

    /// Relative standard error of [`Self::estimate`].
    pub fn relative_error(&self) -> f64 {
        1.04 / (self.registers.len() as f64).sqrt()
    }

    /// Adds a value by its 64-bit hash.
    pub fn insert_hash(&mut self, hash: u64) {
        // A fast hasher's output is not always mixed in every bit: finish
        // with MurmurHash3's fmix64 so registers and ranks are uniform.
        let mut hash = hash;
        hash ^= hash >> 33;
        hash = hash.wrapping_mul(0xff51_afd7_ed55_8ccd);
        hash ^= hash >> 33;
        hash = hash.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        hash ^= hash >> 33;
        let p = u32::from(self.precision);
        let index = (hash >> (64 - p)) as usize;
        // The remaining bits, with a sentinel so the rank is at most 64 - p + 1.
        let rest = (hash << p) | (1u64 << (p - 1));
        let rank = (rest.leading_zeros() + 1) as u8;
        if let Some(register) = self.registers.get_mut(index)
            && rank > *register
        {
            *register = rank;
        }
    }

    /// Estimated number of distinct values inserted.
    pub fn estimate(&self) -> u64 {
        let m = self.registers.len() as f64;
        let mut sum = 0.0;
        let mut zeros = 0usize;
        for &register in self.registers.iter() {
            sum += 1.0 / (1u64 << register) as f64;
            if register == 0 {
                zeros += 1;
            }
        }
        let alpha = match self.registers.len() {
            16 => 0.673,
            32 => 0.697,
            64 => 0.709,
            _ => 0.7213 / (1.0 + 1.079 / m),
        };
        let raw = alpha * m * m / sum;
        let estimate = if raw <= 2.5 * m && zeros > 0 {
            m * (m / zeros as f64).ln()
        } else {
            raw
        };
        estimate.round() as u64
    }

    /// Adds another sketch's values (the union; same precision only,
    /// otherwise nothing happens).
    pub fn merge(&mut self, other: &HyperLogLog) {
        if other.precision != self.precision {
            return;
        }
        for (mine, theirs) in self.registers.iter_mut().zip(other.registers.iter()) {
            *mine = (*mine).max(*theirs);
        }
    }

    /// Forgets everything.
    pub fn clear(&mut self) {
        self.registers.fill(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::BuildHasher;

    #[test]
    fn estimates_within_three_standard_errors() {
        let state = foldhash::fast::FixedState::with_seed(7);
        for n in [0u64, 1, 10, 1_000, 50_000, 300_000] {
            let mut sketch = HyperLogLog::new(14);
            for i in 0..n {
                sketch.insert_hash(state.hash_one(i));
                // Repeats do not count.
                sketch.insert_hash(state.hash_one(i));
            }
            let estimate = sketch.estimate() as f64;
            let allowed = (3.0 * sketch.relative_error() * n as f64).max(1.0);
            assert!(
                (estimate - n as f64).abs() <= allowed,
                "n={n} estimate={estimate}"
            );
        }
    }
}
