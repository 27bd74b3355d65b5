//! Annex A.2–A.3 of codec-spec.md (format 1): packing a layer's indices in mixed-radix groups.
//!
//! A group of `m` indices below `K` is one base-`K` number written MSB first in
//! `bitlen(K^m - 1)` bits, so any `K` costs within `1/g` bit of `log2 K` per index, and a
//! power-of-two `K` packs as plain fixed-width fields.

use bitvec::prelude::*;

/// The payload's bit order: bit 7 of byte 0 first (§2.1).
pub type Bits = BitVec<u8, Msb0>;
pub type BitsRef = BitSlice<u8, Msb0>;

pub use crate::schedule::{MAX_K, MIN_K};

/// Number of indices in a full group: the largest `g` with `K^g ≤ 2^64`.
pub fn group_size(k: u32) -> u32 {
    debug_assert!(k >= MIN_K);
    let limit = 1u128 << 64;
    let mut power = 1u128;
    let mut g = 0;
    while power * k as u128 <= limit {
        power *= k as u128;
        g += 1;
    }
    g
}

/// Bits of a group of `m` indices: `bitlen(K^m - 1)`.
pub fn group_bits(k: u32, m: u32) -> u32 {
    let max_value = (k as u128).pow(m) - 1;
    128 - max_value.leading_zeros()
}

/// Bits that `count` indices below `k` take (Annex A.3).
pub fn packed_bits(k: u32, count: u64) -> u64 {
    let g = group_size(k) as u64;
    let full = (count / g) * group_bits(k, g as u32) as u64;
    let rest = count % g;
    full + if rest > 0 {
        group_bits(k, rest as u32) as u64
    } else {
        0
    }
}

/// Appends `indices` (each `< k`) to `out`. The caller guarantees the range.
pub fn pack_indices(out: &mut Bits, k: u32, indices: &[u32]) {
    let g = group_size(k) as usize;
    for group in indices.chunks(g) {
        let value = group
            .iter()
            .fold(0u128, |acc, &d| acc * k as u128 + d as u128);
        let width = group_bits(k, group.len() as u32) as usize;
        push_msb_first(out, value, width);
    }
}

fn push_msb_first(out: &mut Bits, value: u128, width: usize) {
    for bit in (0..width).rev() {
        out.push((value >> bit) & 1 == 1);
    }
}

/// A group's value was `≥ K^m`: the bits cannot have come from an encoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidGroup;

/// Reads `count` indices below `k` from the start of `bits`, which must hold at least
/// `packed_bits(k, count)` bits.
pub fn unpack_indices(bits: &BitsRef, k: u32, count: usize) -> Result<Vec<u32>, InvalidGroup> {
    let g = group_size(k) as usize;
    let mut indices = Vec::with_capacity(count);
    let mut pos = 0usize;
    let mut remaining = count;
    while remaining > 0 {
        let m = remaining.min(g);
        let width = group_bits(k, m as u32) as usize;
        let value = bits[pos..pos + width]
            .iter()
            .fold(0u128, |acc, b| (acc << 1) | *b as u128);
        if value >= (k as u128).pow(m as u32) {
            return Err(InvalidGroup);
        }
        push_digits(&mut indices, value, k, m);
        pos += width;
        remaining -= m;
    }
    Ok(indices)
}

fn push_digits(out: &mut Vec<u32>, mut value: u128, k: u32, m: usize) {
    let start = out.len();
    out.resize(start + m, 0);
    for slot in out[start..].iter_mut().rev() {
        *slot = (value % k as u128) as u32;
        value /= k as u128;
    }
}
