//! §7.2 (formats 2 and 3): the binary adaptive range coder that carries each layer's symbols.
//!
//! All arithmetic is on integers, so an encoder and a decoder on any machine agree bit for
//! bit; only the network's pixels are floating point.

/// Bits of a probability: `p` is the chance of a 0 bit, in units of `2^-11`.
pub const PROB_BITS: u32 = 11;
const PROB_ONE: u16 = 1 << PROB_BITS;
/// Adaptation speed: each coded bit moves `p` by `1/2^ADAPT_SHIFT` of its distance to the
/// bit's value.
pub const ADAPT_SHIFT: u32 = 5;
const TOP: u32 = 1 << 24;

/// One adaptive binary probability.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BitModel(u16);

impl Default for BitModel {
    fn default() -> Self {
        BitModel(PROB_ONE / 2)
    }
}

impl BitModel {
    /// Moves the probability towards the bit just coded.
    pub fn update(&mut self, bit: bool) {
        if bit {
            self.0 -= self.0 >> ADAPT_SHIFT;
        } else {
            self.0 += (PROB_ONE - self.0) >> ADAPT_SHIFT;
        }
    }

    /// What coding `bit` costs now, in bits (for encoder decisions only).
    pub fn cost(&self, bit: bool) -> f32 {
        COST_TABLE[if bit { PROB_ONE - self.0 } else { self.0 } as usize]
    }
}

/// `-log2(p / 2^11)` for every probability `p`: shared by all threads (a thread-local
/// table cost a TLS lookup per bit, in the encoder's hottest loop).
static COST_TABLE: std::sync::LazyLock<Vec<f32>> = std::sync::LazyLock::new(|| {
    (0..=PROB_ONE as u32)
        .map(|p| -((p.max(1) as f64) / PROB_ONE as f64).log2() as f32)
        .collect()
});

/// How a segment holds the coder's bytes (codec-spec.md §7.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// Format 2 (Annex B): every byte the coder outputs, `finish` as five shifts.
    Whole,
    /// Format 3: `finish` ends on the number with the fewest significant bytes in the final
    /// interval, and the segment leaves out the first byte (always 0) and the zero bytes
    /// `finish` ends with, which the decoder reads as zeros.
    Trimmed,
}

/// Writes bits into a byte string.
#[derive(Debug)]
pub struct RangeEncoder {
    low: u64,
    range: u32,
    cache: u8,
    pending: u64,
    out: Vec<u8>,
}

impl Default for RangeEncoder {
    fn default() -> Self {
        Self::new()
    }
}

impl RangeEncoder {
    pub fn new() -> Self {
        RangeEncoder {
            low: 0,
            range: u32::MAX,
            cache: 0,
            pending: 1,
            out: Vec::new(),
        }
    }

    pub fn encode(&mut self, model: &mut BitModel, bit: bool) {
        let bound = (self.range >> PROB_BITS) * model.0 as u32;
        if bit {
            self.low += bound as u64;
            self.range -= bound;
        } else {
            self.range = bound;
        }
        model.update(bit);
        while self.range < TOP {
            self.range <<= 8;
            self.shift_low();
        }
    }

    /// Moves the top byte of `low` out, holding back bytes a carry could still change.
    fn shift_low(&mut self) {
        if self.low < 0xFF00_0000 || self.low >= 1 << 32 {
            let carry = (self.low >> 32) as u8;
            let mut byte = self.cache;
            while self.pending > 0 {
                self.out.push(byte.wrapping_add(carry));
                byte = 0xFF;
                self.pending -= 1;
            }
            self.cache = ((self.low >> 24) & 0xFF) as u8;
        }
        self.pending += 1;
        self.low = (self.low & 0x00FF_FFFF) << 8;
    }

    /// Flushes and returns the segment's bytes.
    pub fn finish(mut self, framing: Framing) -> Vec<u8> {
        let zero_bytes = match framing {
            Framing::Whole => 0,
            Framing::Trimmed => self.end_on_fewest_bytes(),
        };
        for _ in 0..5 {
            self.shift_low();
        }
        if framing == Framing::Trimmed {
            debug_assert_eq!(self.out[0], 0, "the coder's first byte");
            self.out.truncate(self.out.len() - zero_bytes);
            self.out.remove(0);
        }
        self.out
    }

    /// Moves `low` to a multiple of 2^32 when one lies in [low, low + range), else of
    /// 2^24, of which one always does (range ≥ 2^24). Returns how many of its four bytes
    /// are then zeros.
    fn end_on_fewest_bytes(&mut self) -> usize {
        let end = self.low + self.range as u64;
        let zero_bytes = if round_up(self.low, 32) < end { 4 } else { 3 };
        self.low = round_up(self.low, 8 * zero_bytes as u32);
        zero_bytes
    }
}

/// `x` rounded up to a multiple of `2^bits`.
fn round_up(x: u64, bits: u32) -> u64 {
    let mask = (1u64 << bits) - 1;
    (x + mask) & !mask
}

/// Reads bits back. Bytes past the end of the input read as zero; for format 2 callers
/// check [`RangeDecoder::consumed`] to reject streams that needed them.
#[derive(Debug)]
pub struct RangeDecoder<'a> {
    code: u32,
    range: u32,
    input: &'a [u8],
    pos: usize,
}

impl<'a> RangeDecoder<'a> {
    pub fn new(input: &'a [u8], framing: Framing) -> Self {
        let mut d = RangeDecoder {
            code: 0,
            range: u32::MAX,
            input,
            pos: 0,
        };
        // Format 2's first byte is the coder's leading 0, which format 3 leaves out.
        let first = if framing == Framing::Whole { 5 } else { 4 };
        for _ in 0..first {
            d.code = (d.code << 8) | d.next_byte() as u32;
        }
        d
    }

    fn next_byte(&mut self) -> u8 {
        let b = self.input.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        b
    }

    pub fn decode(&mut self, model: &mut BitModel) -> bool {
        let bound = (self.range >> PROB_BITS) * model.0 as u32;
        let bit = self.code >= bound;
        if bit {
            self.code -= bound;
            self.range -= bound;
        } else {
            self.range = bound;
        }
        model.update(bit);
        while self.range < TOP {
            self.range <<= 8;
            self.code = (self.code << 8) | self.next_byte() as u32;
        }
        bit
    }

    /// Bytes consumed so far, including any read past the end.
    pub fn consumed(&self) -> usize {
        self.pos
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    #[test]
    fn round_trip_of_skewed_and_fair_bits() {
        let mut rng = Rng::new(7);
        let bits: Vec<bool> = (0..20_000)
            .map(|i| rng.uniform() < if i < 10_000 { 0.05 } else { 0.5 })
            .collect();
        let mut models = [BitModel::default(); 2];
        let mut enc = RangeEncoder::new();
        for (i, &b) in bits.iter().enumerate() {
            enc.encode(&mut models[i / 10_000], b);
        }
        let bytes = enc.finish(Framing::Whole);
        // 10,000 bits at p = 0.05 carry 2,864 bits of information and 10,000 fair ones
        // 10,000: 1,608 bytes in all. Adaptation may cost a few per cent.
        assert!(bytes.len() < 1_660, "{} bytes", bytes.len());
        let mut models = [BitModel::default(); 2];
        let mut dec = RangeDecoder::new(&bytes, Framing::Whole);
        for (i, &b) in bits.iter().enumerate() {
            assert_eq!(dec.decode(&mut models[i / 10_000]), b, "bit {i}");
        }
        assert_eq!(dec.consumed(), bytes.len());
    }

    /// Codes `bits` (each with its model) in both framings.
    fn both_framings(bits: &[(usize, bool)]) -> [Vec<u8>; 2] {
        [Framing::Whole, Framing::Trimmed].map(|framing| {
            let mut models = [BitModel::default(); 3];
            let mut enc = RangeEncoder::new();
            bits.iter()
                .for_each(|&(m, b)| enc.encode(&mut models[m], b));
            enc.finish(framing)
        })
    }

    #[test]
    fn trimmed_segments_decode_the_same_bits_from_4_to_5_fewer_bytes() {
        let mut rng = Rng::new(11);
        for trial in 0..2_000 {
            let n = 1 + rng.below(300) as usize;
            let p_one = [0.01, 0.2, 0.5, 0.97][trial % 4];
            let bits: Vec<(usize, bool)> = (0..n)
                .map(|_| (rng.below(3) as usize, rng.uniform() < p_one))
                .collect();
            let [whole, trimmed] = both_framings(&bits);
            let saved = whole.len() - trimmed.len();
            assert!(
                (4..=5).contains(&saved),
                "trial {trial}: {saved} bytes fewer"
            );
            // The same coder output between the first byte and the flushed zeros.
            assert_eq!(whole[0], 0);
            let mut models = [BitModel::default(); 3];
            let mut dec = RangeDecoder::new(&trimmed, Framing::Trimmed);
            for (i, &(m, b)) in bits.iter().enumerate() {
                assert_eq!(dec.decode(&mut models[m]), b, "trial {trial}, bit {i}");
            }
        }
    }

    #[test]
    fn a_few_zeros_trim_to_an_empty_segment() {
        // Three 0 bits at p = 1/2 leave low = 0 and range = 2^29: nothing is output
        // before `finish`, which ends on 0.
        let [whole, trimmed] = both_framings(&[(0, false), (1, false), (0, false)]);
        assert_eq!(whole, [0, 0, 0, 0, 0]);
        assert!(trimmed.is_empty());
    }
}
