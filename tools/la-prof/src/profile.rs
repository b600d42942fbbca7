//! Samples to estimates: each sampled block stands for the blocks the
//! sampler skipped around it.

use std::collections::HashMap;

use crate::raw::Dump;

/// The chance that a block of `size` bytes is sampled at `rate` (one sample
/// per `rate` bytes on average, by a Poisson process over bytes).
pub fn sample_probability(size: u64, rate: u64) -> f64 {
    let x = size as f64 / rate as f64;
    -(-x).exp_m1()
}

/// Estimated totals for one stack.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Totals {
    pub alloc_objects: f64,
    pub alloc_bytes: f64,
    pub inuse_objects: f64,
    pub inuse_bytes: f64,
    pub samples: u64,
}

impl Totals {
    pub fn add(&mut self, o: &Totals) {
        self.alloc_objects += o.alloc_objects;
        self.alloc_bytes += o.alloc_bytes;
        self.inuse_objects += o.inuse_objects;
        self.inuse_bytes += o.inuse_bytes;
        self.samples += o.samples;
    }
}

/// One dump's samples, added up by stack (return addresses, innermost
/// first), in the order stacks first appear.
pub fn by_stack(dump: &Dump) -> Vec<(Vec<u64>, Totals)> {
    let mut index: HashMap<&[u64], usize> = HashMap::new();
    let mut out: Vec<(Vec<u64>, Totals)> = Vec::new();
    for s in &dump.samples {
        // The sampler counts requested bytes, so a block is sampled with
        // the chance its requested size gives; it stands for 1/p blocks of
        // that size.
        let weight = 1.0 / sample_probability(s.requested.max(1), dump.rate);
        let t = Totals {
            alloc_objects: weight,
            alloc_bytes: weight * s.requested as f64,
            inuse_objects: if s.free_ms.is_none() { weight } else { 0.0 },
            inuse_bytes: if s.free_ms.is_none() {
                weight * s.requested as f64
            } else {
                0.0
            },
            samples: 1,
        };
        let i = *index.entry(&s.pcs).or_insert_with(|| {
            out.push((s.pcs.to_vec(), Totals::default()));
            out.len() - 1
        });
        out[i].1.add(&t);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_blocks_stand_for_rate_bytes() {
        // A block much smaller than the rate stands for about `rate` bytes.
        let p = sample_probability(16, 1 << 20);
        assert!((16.0 / p - (1u64 << 20) as f64).abs() < 16.0);
        // A block much larger than the rate stands for itself.
        assert!((sample_probability(64 << 20, 1 << 10) - 1.0).abs() < 1e-12);
    }
}
