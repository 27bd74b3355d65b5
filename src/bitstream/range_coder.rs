//! §7.2 (format 2): the binary adaptive range coder that carries each layer's symbols.
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

    /// Flushes and returns the bytes.
    pub fn finish(mut self) -> Vec<u8> {
        for _ in 0..5 {
            self.shift_low();
        }
        self.out
    }
}

/// Reads bits back. Bytes past the end of the input read as zero; callers check
/// [`RangeDecoder::consumed`] to reject streams that needed them.
#[derive(Debug)]
pub struct RangeDecoder<'a> {
    code: u32,
    range: u32,
    input: &'a [u8],
    pos: usize,
}

impl<'a> RangeDecoder<'a> {
    pub fn new(input: &'a [u8]) -> Self {
        let mut d = RangeDecoder {
            code: 0,
            range: u32::MAX,
            input,
            pos: 0,
        };
        for _ in 0..5 {
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
        let bytes = enc.finish();
        // 10,000 bits at p = 0.05 carry 2,864 bits of information and 10,000 fair ones
        // 10,000: 1,608 bytes in all. Adaptation may cost a few per cent.
        assert!(bytes.len() < 1_660, "{} bytes", bytes.len());
        let mut models = [BitModel::default(); 2];
        let mut dec = RangeDecoder::new(&bytes);
        for (i, &b) in bits.iter().enumerate() {
            assert_eq!(dec.decode(&mut models[i / 10_000]), b, "bit {i}");
        }
        assert_eq!(dec.consumed(), bytes.len());
    }
}
