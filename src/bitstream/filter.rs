//! §7.5 of codec-spec.md (formats 4 to 7): the filter section's bytes. What the filter does to
//! pixels is `crate::codec::filter`'s.

use crate::error::{Error, Result};
use crate::schedule::check_field as check;

/// Coefficients per class and channel (§7.5: twelve symmetric pairs of the channel, the
/// difference and six symmetric pairs of each other channel, a constant).
pub const FILTER_TAPS: usize = 27;
/// Most activity classes a filter may have.
pub const MAX_CLASSES: usize = 8;
/// Direction classes a format-5 filter may have per activity class (§7.5); format 4 has
/// one.
pub const DIRECTION_COUNTS: [u8; 2] = [1, 3];
/// Largest coefficient magnitude.
pub const MAX_COEFFICIENT: i32 = 32_767;
/// Largest precision `p` (a coefficient stands for `w / 2^p`).
pub const MAX_PRECISION: u8 = 12;
/// Longest filter section a header may announce.
pub const MAX_FILTER_LEN: u32 = 65_535;
/// Most leading zeros of one Exp-Golomb code (§7.5).
const MAX_LEADING_ZEROS: u32 = 16;

/// One class's coefficients, `[channel][tap]`.
pub type ClassCoefficients = [[i32; FILTER_TAPS]; 3];

/// An output filter as the file states it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterParams {
    /// `p`: a coefficient stands for `w / 2^p`.
    pub precision: u8,
    /// `t_1 … t_(q−1)`, strictly increasing.
    pub thresholds: Vec<u32>,
    /// `d`, direction classes per activity class: 1 or 3 (always 1 in format 4).
    pub directions: u8,
    /// One entry per class `k = a·d + e` (activity class `a`, direction `e`), `q·d` of
    /// them, `q = thresholds.len() + 1`.
    pub classes: Vec<ClassCoefficients>,
}

impl FilterParams {
    /// Checks every range of §7.5.
    pub fn validate(&self) -> Result<()> {
        check_precision(self.precision)?;
        let d = self.directions;
        check_directions(d)?;
        let q = self.thresholds.len() + 1;
        check_activity_classes(q)?;
        check(
            "filter class coefficients",
            self.classes.len() as u64,
            self.classes.len() == q * d as usize,
            "q·d classes",
        )?;
        if let Some(pair) = self.thresholds.windows(2).find(|t| t[0] >= t[1]) {
            check(
                "filter threshold",
                pair[1] as u64,
                false,
                "strictly increasing",
            )?;
        }
        let largest = self
            .classes
            .iter()
            .flatten()
            .flatten()
            .map(|w| w.unsigned_abs());
        let largest = largest.max().unwrap_or(0) as u64;
        check(
            "filter coefficient",
            largest,
            largest <= MAX_COEFFICIENT as u64,
            "-32767 ..= 32767",
        )
    }

    /// The section's bytes (§7.5) in format `version` (4 or 5; format 4 has no `d`, so
    /// only one direction class).
    pub fn to_bytes(&self, version: u8) -> Result<Vec<u8>> {
        self.validate()?;
        let q = self.thresholds.len() as u8 + 1;
        let mut out = vec![self.precision, q];
        if has_directions(version) {
            out.push(self.directions);
        } else {
            check(
                "filter directions",
                self.directions as u64,
                self.directions == 1,
                "1 in format 4",
            )?;
        }
        for &t in &self.thresholds {
            super::header::write_varint(&mut out, t);
        }
        let mut bits = BitWriter::new(out);
        for w in self.classes.iter().flatten().flatten() {
            bits.signed_exp_golomb(*w);
        }
        let out = bits.finish();
        check(
            "filter length",
            out.len() as u64,
            out.len() as u64 <= MAX_FILTER_LEN as u64,
            "at most 65535 bytes",
        )?;
        Ok(out)
    }

    /// Parses a whole filter section of `F = bytes.len() > 0` bytes (§7.5) of a format
    /// `version` file, rejecting anything but the one form a writer gives.
    pub fn parse(bytes: &[u8], version: u8) -> Result<FilterParams> {
        let truncated = || Error::InvalidField {
            field: "filter section",
            value: bytes.len() as u64,
            expected: "as many bytes as its coefficients take",
        };
        if bytes.len() < 2 {
            return Err(truncated());
        }
        let (precision, q) = (bytes[0], bytes[1] as usize);
        check_precision(precision)?;
        // `q` and `d` size what follows: checked before it is read.
        check_activity_classes(q)?;
        let mut at = 2;
        let mut directions = 1;
        if has_directions(version) {
            directions = *bytes.get(2).ok_or_else(truncated)?;
            check_directions(directions)?;
            at = 3;
        }
        let mut thresholds = Vec::with_capacity(q - 1);
        for _ in 1..q {
            let (value, len) = super::header::read_varint(bytes, at, "filter threshold")
                .map_err(|_| truncated())?;
            check(
                "filter threshold",
                value as u64,
                len == super::header::varint_len(value),
                "a minimal varint",
            )?;
            thresholds.push(value);
            at += len;
        }
        let mut reader = BitReader::new(&bytes[at..]);
        let mut classes = vec![[[0i32; FILTER_TAPS]; 3]; q * directions as usize];
        for w in classes.iter_mut().flatten().flatten() {
            *w = reader.signed_exp_golomb()?.ok_or_else(truncated)?;
        }
        if !reader.rest_is_zero_padding() {
            return Err(Error::InvalidField {
                field: "filter section",
                value: bytes.len() as u64,
                expected: "no bytes after the last coefficient's, zero padding bits",
            });
        }
        let params = FilterParams {
            precision,
            thresholds,
            directions,
            classes,
        };
        params.validate()?;
        Ok(params)
    }
}

/// Whether a format's filter section has the byte `d` (§7.5): 5 on.
fn has_directions(version: u8) -> bool {
    version >= super::header::FORMAT_V5
}

fn check_precision(p: u8) -> Result<()> {
    check(
        "filter precision",
        p as u64,
        (1..=MAX_PRECISION).contains(&p),
        "1 ..= 12",
    )
}

fn check_activity_classes(q: usize) -> Result<()> {
    check(
        "filter classes",
        q as u64,
        (1..=MAX_CLASSES).contains(&q),
        "1 ..= 8",
    )
}

fn check_directions(d: u8) -> Result<()> {
    check(
        "filter directions",
        d as u64,
        DIRECTION_COUNTS.contains(&d),
        "1 or 3",
    )
}

/// Bits appended MSB first to a byte vector.
struct BitWriter {
    out: Vec<u8>,
    /// Bits used in the last byte (0: start a new one).
    used: u32,
}

impl BitWriter {
    fn new(out: Vec<u8>) -> Self {
        BitWriter { out, used: 0 }
    }

    fn bit(&mut self, b: bool) {
        if self.used == 0 {
            self.out.push(0);
        }
        if b {
            *self.out.last_mut().expect("pushed above") |= 0x80 >> self.used;
        }
        self.used = (self.used + 1) % 8;
    }

    /// §7.5: `w` as `u` (`w > 0`: `2w − 1`, else `−2w`), then `u + 1` with as many zeros
    /// before it as it has bits after its leading one.
    fn signed_exp_golomb(&mut self, w: i32) {
        let u = if w > 0 {
            2 * w as u32 - 1
        } else {
            2 * w.unsigned_abs()
        };
        let v = u + 1;
        let z = 31 - v.leading_zeros();
        (0..z).for_each(|_| self.bit(false));
        (0..=z).rev().for_each(|i| self.bit(v >> i & 1 == 1));
    }

    fn finish(self) -> Vec<u8> {
        self.out
    }
}

/// Bits read MSB first.
struct BitReader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> BitReader<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        BitReader { bytes, at: 0 }
    }

    fn bit(&mut self) -> Option<bool> {
        let byte = *self.bytes.get(self.at / 8)?;
        let b = byte >> (7 - self.at % 8) & 1 == 1;
        self.at += 1;
        Some(b)
    }

    /// The next signed Exp-Golomb code; `Ok(None)` when the bytes end inside it.
    fn signed_exp_golomb(&mut self) -> Result<Option<i32>> {
        let mut z = 0;
        loop {
            match self.bit() {
                None => return Ok(None),
                Some(true) => break,
                Some(false) => z += 1,
            }
            if z > MAX_LEADING_ZEROS {
                return Err(Error::InvalidField {
                    field: "filter coefficient",
                    value: z as u64,
                    expected: "an Exp-Golomb code of at most 16 leading zeros",
                });
            }
        }
        let mut v = 1u32;
        for _ in 0..z {
            let Some(b) = self.bit() else { return Ok(None) };
            v = v << 1 | b as u32;
        }
        let u = v - 1;
        let w = if u % 2 == 1 {
            u.div_ceil(2) as i32
        } else {
            -((u / 2) as i32)
        };
        Ok(Some(w))
    }

    /// Whether the bits left are those of the last byte only, all zero.
    fn rest_is_zero_padding(&self) -> bool {
        let end = self.at.div_ceil(8);
        end == self.bytes.len()
            && (self.at..8 * end).all(|i| self.bytes[i / 8] >> (7 - i % 8) & 1 == 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> FilterParams {
        let mut class = [[0i32; FILTER_TAPS]; 3];
        class[0][0] = 5;
        class[1][12] = -3;
        class[2][26] = 32_767;
        FilterParams {
            precision: 6,
            thresholds: vec![7, 300],
            directions: 1,
            classes: vec![class, [[1; FILTER_TAPS]; 3], [[-2; FILTER_TAPS]; 3]],
        }
    }

    /// [`sample`] with three direction classes per activity class (format 5).
    fn sample5() -> FilterParams {
        let mut params = sample();
        params.directions = 3;
        params.classes = (0..9).map(|k| [[k - 4; FILTER_TAPS]; 3]).collect();
        params
    }

    const V4: u8 = super::super::header::FORMAT_V4;
    const V5: u8 = super::super::header::FORMAT_V5;

    #[test]
    fn signed_exp_golomb_codes_follow_the_spec() {
        // u = 0, 1, 2, 3, 4 for w = 0, 1, -1, 2, -2: 1, 010, 011, 00100, 00101.
        let mut bits = BitWriter::new(Vec::new());
        for w in [0, 1, -1, 2, -2] {
            bits.signed_exp_golomb(w);
        }
        // 1 010 011 00100 00101 → 1010 0110 0100 0010 1(000)
        assert_eq!(bits.finish(), vec![0b1010_0110, 0b0100_0010, 0b1000_0000]);
    }

    #[test]
    fn a_filter_section_reads_back_as_written() {
        let params = sample();
        let bytes = params.to_bytes(V4).unwrap();
        assert_eq!(&bytes[..4], &[6, 3, 7, 0xAC]);
        assert_eq!(FilterParams::parse(&bytes, V4).unwrap(), params);
        // Format 5 adds `d` after `q`.
        let bytes = params.to_bytes(V5).unwrap();
        assert_eq!(&bytes[..5], &[6, 3, 1, 7, 0xAC]);
        assert_eq!(FilterParams::parse(&bytes, V5).unwrap(), params);
        let directions = sample5();
        let bytes = directions.to_bytes(V5).unwrap();
        assert_eq!(&bytes[..5], &[6, 3, 3, 7, 0xAC]);
        assert_eq!(FilterParams::parse(&bytes, V5).unwrap(), directions);
        // Format 4 has no `d`: one direction class only.
        assert!(directions.to_bytes(V4).is_err());
    }

    #[test]
    fn a_damaged_filter_section_is_refused() {
        let bytes = sample().to_bytes(V4).unwrap();
        // One byte short, one byte more, a nonzero padding bit.
        assert!(FilterParams::parse(&bytes[..bytes.len() - 1], V4).is_err());
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(FilterParams::parse(&longer, V4).is_err());
        let mut padded = bytes.clone();
        *padded.last_mut().unwrap() |= 1;
        assert!(FilterParams::parse(&padded, V4).is_err());
        // Precision 0, nine classes, thresholds out of order.
        for (at, value) in [(0, 0u8), (1, 9), (2, 255)] {
            let mut bad = bytes.clone();
            bad[at] = value;
            assert!(
                FilterParams::parse(&bad, V4).is_err(),
                "byte {at} = {value}"
            );
        }
        // A code of 17 leading zeros.
        assert!(FilterParams::parse(&[6, 1, 0, 0, 0, 0x80], V4).is_err());
        // Format 5: `d` of 0, 2 or 4; a section that ends after `d`.
        let bytes = sample5().to_bytes(V5).unwrap();
        for d in [0u8, 2, 4] {
            let mut bad = bytes.clone();
            bad[2] = d;
            assert!(FilterParams::parse(&bad, V5).is_err(), "d = {d}");
        }
        assert!(FilterParams::parse(&bytes[..3], V5).is_err());
        // A format-4 section read as format 5 takes its first threshold for `d`.
        assert!(FilterParams::parse(&sample().to_bytes(V4).unwrap(), V5).is_err());
    }
}
