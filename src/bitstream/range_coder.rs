//! §7.2 (formats 2 to 7): the binary adaptive range coder that carries each layer's symbols.
//!
//! All arithmetic is on integers, so an encoder and a decoder on any machine agree bit for
//! bit; only the network's pixels are floating point.

/// How a probability adapts (§7.2): in units of `2^-11` at a fixed rate (formats 2 to
/// 5), or in units of `2^-15`, fast for its first bits and then at that rate (formats 6 and 7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Adaptation {
    Fixed,
    Counted,
}

impl Adaptation {
    /// `B`: bits of a probability.
    fn bits(self) -> u32 {
        match self {
            Adaptation::Fixed => 11,
            Adaptation::Counted => 15,
        }
    }
}

/// The slowest adaptation: each coded bit moves `p` by `1/2^SLOWEST_RATE` of its distance
/// to the bit's value.
const SLOWEST_RATE: u32 = 5;
/// Bits after which a counted probability adapts at [`SLOWEST_RATE`].
const COUNTED_BITS: u8 = 24;
const TOP: u32 = 1 << 24;

/// One adaptive binary probability: `p`, the chance of a 0 bit in units of `2^-B`, and
/// how many bits it has coded (up to [`COUNTED_BITS`], all that matters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BitModel {
    p: u16,
    seen: u8,
    adaptation: Adaptation,
}

impl BitModel {
    pub fn new(adaptation: Adaptation) -> Self {
        BitModel {
            p: 1 << (adaptation.bits() - 1),
            seen: 0,
            adaptation,
        }
    }

    /// `r` of §7.2.
    fn rate(&self) -> u32 {
        match self.adaptation {
            Adaptation::Fixed => SLOWEST_RATE,
            Adaptation::Counted => (2 + self.seen as u32 / 8).min(SLOWEST_RATE),
        }
    }

    /// Moves the probability towards the bit just coded.
    pub fn update(&mut self, bit: bool) {
        let rate = self.rate();
        let one = 1u32 << self.adaptation.bits();
        let p = self.p as u32;
        self.p = if bit {
            p - (p >> rate)
        } else {
            p + ((one - p) >> rate)
        } as u16;
        self.seen = (self.seen + 1).min(COUNTED_BITS);
    }

    /// `(range >> B) · p`: where a 0 bit's part of `range` ends.
    fn bound(&self, range: u32) -> u32 {
        (range >> self.adaptation.bits()) * self.p as u32
    }

    /// What coding `bit` costs now, in bits (for encoder decisions only).
    pub fn cost(&self, bit: bool) -> f32 {
        let one = 1u16 << self.adaptation.bits();
        let p = if bit { one - self.p } else { self.p };
        match self.adaptation {
            Adaptation::Fixed => COST_TABLE_11[p as usize],
            Adaptation::Counted => COST_TABLE_15[p as usize],
        }
    }
}

/// `-log2(p / 2^bits)` for every probability `p`.
fn cost_table(bits: u32) -> Vec<f32> {
    (0..=1u32 << bits)
        .map(|p| -((p.max(1) as f64) / (1u32 << bits) as f64).log2() as f32)
        .collect()
}

// Shared by all threads (a thread-local table cost a TLS lookup per bit, in the encoder's
// hottest loop).
static COST_TABLE_11: std::sync::LazyLock<Vec<f32>> = std::sync::LazyLock::new(|| cost_table(11));
static COST_TABLE_15: std::sync::LazyLock<Vec<f32>> = std::sync::LazyLock::new(|| cost_table(15));

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

/// How a format codes a layer's segment (§7.2): its bytes' framing and its probabilities.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Coding {
    pub framing: Framing,
    pub adaptation: Adaptation,
    /// Format 7 (§7.3): each segment starts with a mode bit that turns the layer's
    /// neighbour flags on.
    pub layer_modes: bool,
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
        let bound = model.bound(self.range);
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
        let bound = model.bound(self.range);
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
        let mut models = [BitModel::new(Adaptation::Fixed); 2];
        let mut enc = RangeEncoder::new();
        for (i, &b) in bits.iter().enumerate() {
            enc.encode(&mut models[i / 10_000], b);
        }
        let bytes = enc.finish(Framing::Whole);
        // 10,000 bits at p = 0.05 carry 2,864 bits of information and 10,000 fair ones
        // 10,000: 1,608 bytes in all. Adaptation may cost a few per cent.
        assert!(bytes.len() < 1_660, "{} bytes", bytes.len());
        let mut models = [BitModel::new(Adaptation::Fixed); 2];
        let mut dec = RangeDecoder::new(&bytes, Framing::Whole);
        for (i, &b) in bits.iter().enumerate() {
            assert_eq!(dec.decode(&mut models[i / 10_000]), b, "bit {i}");
        }
        assert_eq!(dec.consumed(), bytes.len());
    }

    /// Codes `bits` (each with its model) in both framings.
    fn both_framings(bits: &[(usize, bool)]) -> [Vec<u8>; 2] {
        [Framing::Whole, Framing::Trimmed].map(|framing| {
            let mut models = [BitModel::new(Adaptation::Fixed); 3];
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
            let mut models = [BitModel::new(Adaptation::Fixed); 3];
            let mut dec = RangeDecoder::new(&trimmed, Framing::Trimmed);
            for (i, &(m, b)) in bits.iter().enumerate() {
                assert_eq!(dec.decode(&mut models[m]), b, "trial {trial}, bit {i}");
            }
        }
    }

    #[test]
    fn counted_probabilities_learn_fast_then_settle_as_the_spec_says() {
        let mut m = BitModel::new(Adaptation::Counted);
        assert_eq!(m.p, 16384);
        // r = 2 for the first 8 bits, 3 for the next 8, 4, then 5 from the 24th on.
        let mut p = 16384u32;
        for n in 0..40u32 {
            m.update(false);
            p += (32768 - p) >> (2 + n / 8).min(5);
            assert_eq!(m.p as u32, p, "after {} bits", n + 1);
        }
        // A run of one bit value settles 31 units short of 2^15 (§7.4's bound), where
        // format 5's probability stops at 2017/2048.
        (0..2000).for_each(|_| m.update(false));
        assert_eq!(m.p, 32768 - 31);
        let mut fixed = BitModel::new(Adaptation::Fixed);
        (0..2000).for_each(|_| fixed.update(false));
        assert_eq!(fixed.p, 2017);
        assert!(m.cost(false) < 0.0014 && fixed.cost(false) > 0.022);
    }

    #[test]
    fn counted_probabilities_round_trip() {
        let mut rng = Rng::new(5);
        let bits: Vec<(usize, bool)> = (0..5_000)
            .map(|i| (i % 3, rng.uniform() < [0.01, 0.3, 0.9][i % 3]))
            .collect();
        for framing in [Framing::Whole, Framing::Trimmed] {
            let mut models = [BitModel::new(Adaptation::Counted); 3];
            let mut enc = RangeEncoder::new();
            bits.iter()
                .for_each(|&(m, b)| enc.encode(&mut models[m], b));
            let bytes = enc.finish(framing);
            let mut models = [BitModel::new(Adaptation::Counted); 3];
            let mut dec = RangeDecoder::new(&bytes, framing);
            for (i, &(m, b)) in bits.iter().enumerate() {
                assert_eq!(dec.decode(&mut models[m]), b, "bit {i}");
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
