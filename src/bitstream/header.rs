//! §2–§5 of codec-spec.md: the header's fields, their ranges, and how they are read and
//! written.

use super::range_coder::{Adaptation, Coding, Framing};
use crate::error::{Error, Result};
use crate::schedule::check_field as check;
pub use crate::schedule::{granule, LayerSpec, ModelId, MAX_LAYERS};

/// §2.2: `0x89 'D' 'D' 'N'`.
pub const MAGIC: [u8; 4] = [0x89, b'D', b'D', b'N'];
/// Format 7 (§2–§7): format 6 with a mode bit per layer that may turn on flags naming a
/// neighbour's index (§7.3).
pub const FORMAT_V7: u8 = 7;
/// Format 6: format 5 with finer, faster-learning probabilities (§7.2). Still read and
/// written.
pub const FORMAT_V6: u8 = 6;
/// Format 5: format 4 with direction classes in the output filter (§7.5). Still read and
/// written.
pub const FORMAT_V5: u8 = 5;
/// Format 4: format 3 and the output filter (§7.5), activity classes only. Still read and
/// written.
pub const FORMAT_V4: u8 = 4;
/// Format 3: runs, varints, trimmed segments; no filter. Still read and written.
pub const FORMAT_V3: u8 = 3;
/// The format version this build writes.
pub const FORMAT_VERSION: u8 = FORMAT_V7;
/// Format 2 (Annex B): the same symbols and coder, a longer header and whole segments.
/// Still read and written.
pub const FORMAT_V2: u8 = 2;
/// The first format: fixed-length indices, no keep symbol. Still read and written.
pub const FORMAT_V1: u8 = 1;
/// Bytes before the layer schedule in formats 1 and 2 (Annex A, B).
pub const FIXED_HEADER_LEN: usize = 24;
/// Bytes before the schedule's runs in formats 3 to 7 (§2.2).
const FIXED_HEADER_LEN_V3: usize = 22;
/// The longest varint (§2.1): 5 bytes hold 35 bits, enough for any `u32`.
const MAX_VARINT_LEN: usize = 5;
pub const MAX_SIDE: u32 = 65_535;
pub const MAX_PIXELS: u64 = 256 * 1024 * 1024;
pub const MAX_TILE: u32 = 4096;
const FLAG_GREY: u8 = 0x01;

/// The decoded header of a `.ddn` file (§2.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// §2.2: 1 to 7.
    pub version: u8,
    /// §6: the source was greyscale.
    pub grey: bool,
    pub model_id: ModelId,
    pub width: u32,
    pub height: u32,
    pub tile: u32,
    /// The coded layers, the model's first `layers.len()`.
    pub layers: Vec<LayerSpec>,
    /// Formats 2 to 7: the byte length of every layer's segment (§4, §7). Empty in
    /// format 1.
    pub segments: Vec<u32>,
    /// Formats 4 to 7: the filter section's length `F` (§7.5); 0 in earlier formats.
    pub filter_len: u32,
}

/// Checks an image size against §2.2's caps.
pub fn validate_image_size(width: u64, height: u64) -> Result<()> {
    let side_ok = |s: u64| (1..=MAX_SIDE as u64).contains(&s);
    if side_ok(width) && side_ok(height) && width * height <= MAX_PIXELS {
        Ok(())
    } else {
        Err(Error::ImageSize { width, height })
    }
}

impl Header {
    /// Bytes a format-1 or format-2 header takes with `n` layers (Annex A, B).
    pub fn encoded_len_for(version: u8, n: usize) -> usize {
        FIXED_HEADER_LEN + entry_len(version) * n + 4
    }

    /// Bytes the header takes (from format 3 on, with its segment and filter lengths
    /// as they are).
    pub fn encoded_len(&self) -> usize {
        if !has_runs(self.version) {
            return Self::encoded_len_for(self.version, self.layers.len());
        }
        let mut varints: usize = self.segments.iter().map(|&s| varint_len(s)).sum();
        if has_filter(self.version) {
            varints += varint_len(self.filter_len);
        }
        FIXED_HEADER_LEN_V3 + 4 * runs(&self.layers).len() + varints + 4
    }

    /// How the payload's segments are coded (§7.2).
    pub fn coding(&self) -> Coding {
        Coding {
            framing: if has_runs(self.version) {
                Framing::Trimmed
            } else {
                Framing::Whole
            },
            adaptation: if self.version >= FORMAT_V6 {
                Adaptation::Counted
            } else {
                Adaptation::Fixed
            },
            layer_modes: self.version >= FORMAT_V7,
        }
    }

    /// Checks every range of §2.2, §4 and §5.
    pub fn validate(&self) -> Result<()> {
        validate_image_size(self.width as u64, self.height as u64)?;
        let n = self.layers.len();
        check_layer_count(n)?;
        self.layers.iter().try_for_each(LayerSpec::validate)?;
        let segments_expected = if self.version == FORMAT_V1 { 0 } else { n };
        check(
            "segment count",
            self.segments.len() as u64,
            self.segments.len() == segments_expected,
            "one per layer from format 2 on, none in format 1",
        )?;
        let most = if has_filter(self.version) {
            super::filter::MAX_FILTER_LEN
        } else {
            0
        };
        check(
            "filter length",
            self.filter_len as u64,
            self.filter_len <= most,
            "at most 65535 from format 4 on, none before",
        )?;
        let g = granule(&self.layers);
        check(
            "tile size",
            self.tile as u64,
            self.tile >= g && self.tile <= MAX_TILE && self.tile.is_multiple_of(g),
            "a multiple of the largest cell, at most 4096",
        )
    }

    /// Serialises the header, its CRC included.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        self.validate()?;
        if has_runs(self.version) {
            return Ok(self.to_bytes_v3());
        }
        let mut out = Vec::with_capacity(self.encoded_len());
        out.extend_from_slice(&MAGIC);
        out.push(self.version);
        out.push(if self.grey { FLAG_GREY } else { 0 });
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(&self.model_id.0);
        for v in [self.width, self.height, self.tile] {
            out.extend_from_slice(&(v as u16).to_le_bytes());
        }
        out.push(self.layers.len() as u8);
        out.push(0);
        for (l, layer) in self.layers.iter().enumerate() {
            out.extend_from_slice(&(layer.k as u16).to_le_bytes());
            out.push(layer.scale_log2);
            out.push(layer.cell_log2);
            if let Some(len) = self.segments.get(l) {
                out.extend_from_slice(&len.to_le_bytes());
            }
        }
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        Ok(out)
    }

    /// §2.2 and §4 of formats 3 to 7: fixed fields, runs, varints, CRC.
    fn to_bytes_v3(&self) -> Vec<u8> {
        let runs = runs(&self.layers);
        let mut out = Vec::with_capacity(self.encoded_len());
        out.extend_from_slice(&MAGIC);
        out.push(self.version);
        out.push(if self.grey { FLAG_GREY } else { 0 });
        out.extend_from_slice(&self.model_id.0);
        for v in [self.width, self.height, self.tile] {
            out.extend_from_slice(&(v as u16).to_le_bytes());
        }
        // Both fit a byte: validate() holds n ≤ 255, and there are at most n runs.
        out.push(self.layers.len() as u8);
        out.push(runs.len() as u8);
        for (count, layer) in runs {
            out.push(count as u8);
            out.extend_from_slice(&(layer.k as u16).to_le_bytes());
            out.push(layer.scale_log2 + 16 * layer.cell_log2);
        }
        for &len in &self.segments {
            write_varint(&mut out, len);
        }
        if has_filter(self.version) {
            write_varint(&mut out, self.filter_len);
        }
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    /// Parses and validates a header at the start of `bytes` (§9 steps 1–5).
    /// Returns the header and its length in bytes.
    pub fn parse(bytes: &[u8]) -> Result<(Header, usize)> {
        if bytes.is_empty() {
            return Err(Error::EmptyInput);
        }
        if bytes.len() < MAGIC.len() || bytes[..4] != MAGIC {
            return Err(Error::BadMagic);
        }
        need(bytes, 5)?;
        let version = bytes[4];
        if !(FORMAT_V1..=FORMAT_VERSION).contains(&version) {
            return Err(Error::UnsupportedVersion {
                version,
                newest: FORMAT_VERSION,
            });
        }
        if has_runs(version) {
            return Self::parse_v3(bytes, version);
        }
        need(bytes, FIXED_HEADER_LEN)?;
        let n = bytes[22] as usize;
        let len = Self::encoded_len_for(version, n);
        need(bytes, len)?;
        let flags = checked_flags(bytes, len - 4)?;
        let reserved = u16_at(bytes, 6) as u64;
        check("reserved bytes 6-7", reserved, reserved == 0, "0")?;
        let reserved = bytes[23] as u64;
        check("reserved byte 23", reserved, reserved == 0, "0")?;
        let entry = |l: usize| FIXED_HEADER_LEN + entry_len(version) * l;
        let layers = (0..n)
            .map(|l| LayerSpec {
                k: u16_at(bytes, entry(l)) as u32,
                scale_log2: bytes[entry(l) + 2],
                cell_log2: bytes[entry(l) + 3],
            })
            .collect();
        let segments = match version {
            FORMAT_V1 => Vec::new(),
            _ => (0..n).map(|l| u32_at(bytes, entry(l) + 4)).collect(),
        };
        let header = Header::assemble(version, flags, &bytes[8..22], layers, segments, 0)?;
        Ok((header, len))
    }
}

impl Header {
    /// §9 steps 3–5 for formats 3 to 7.
    fn parse_v3(bytes: &[u8], version: u8) -> Result<(Header, usize)> {
        need(bytes, FIXED_HEADER_LEN_V3)?;
        let (n, run_count) = (bytes[20] as usize, bytes[21] as usize);
        let varints_at = FIXED_HEADER_LEN_V3 + 4 * run_count;
        need(bytes, varints_at)?;
        let mut at = varints_at;
        let mut segments = Vec::with_capacity(n);
        let mut minimal = true;
        for _ in 0..n {
            let (value, len) = read_varint(bytes, at, "segment length")?;
            minimal &= len == varint_len(value);
            segments.push(value);
            at += len;
        }
        let mut filter_len = 0;
        if has_filter(version) {
            let (value, len) = read_varint(bytes, at, "filter length")?;
            minimal &= len == varint_len(value);
            filter_len = value;
            at += len;
        }
        need(bytes, at + 4)?;
        let flags = checked_flags(bytes, at)?;
        check_layer_count(n)?;
        check(
            "run count",
            run_count as u64,
            (1..=n).contains(&run_count),
            "1 ..= the layer count",
        )?;
        let layers = expand_runs(&bytes[FIXED_HEADER_LEN_V3..varints_at], n)?;
        check("segment lengths", n as u64, minimal, "minimal varints")?;
        let header = Header::assemble(version, flags, &bytes[6..20], layers, segments, filter_len)?;
        Ok((header, at + 4))
    }

    /// A validated header from its parsed parts; `ids` holds the model id, width, height
    /// and tile size as every format lays them out, 14 bytes.
    fn assemble(
        version: u8,
        flags: u8,
        ids: &[u8],
        layers: Vec<LayerSpec>,
        segments: Vec<u32>,
        filter_len: u32,
    ) -> Result<Header> {
        let header = Header {
            version,
            grey: flags & FLAG_GREY != 0,
            model_id: ModelId(ids[..8].try_into().expect("8-byte slice")),
            width: u16_at(ids, 8) as u32,
            height: u16_at(ids, 10) as u32,
            tile: u16_at(ids, 12) as u32,
            layers,
            segments,
            filter_len,
        };
        header.validate()?;
        Ok(header)
    }
}

fn check_layer_count(n: usize) -> Result<()> {
    check(
        "layer count",
        n as u64,
        (1..=MAX_LAYERS).contains(&n),
        "1..=255",
    )
}

/// §9 steps 4 and 5's first check: the header CRC stored at `crc_at` matches the bytes
/// before it, and the flags' reserved bits are 0. Returns the flags.
fn checked_flags(bytes: &[u8], crc_at: usize) -> Result<u8> {
    let stored = u32_at(bytes, crc_at);
    let computed = crc32fast::hash(&bytes[..crc_at]);
    if stored != computed {
        return Err(Error::HeaderChecksum { stored, computed });
    }
    let flags = bytes[5];
    check(
        "flags",
        flags as u64,
        flags & !FLAG_GREY == 0,
        "reserved bits 0",
    )?;
    Ok(flags)
}

/// The schedule as runs of equal consecutive layers: (layers in the run, the layer). A
/// run fits its one-byte count because a file has at most 255 layers.
fn runs(layers: &[LayerSpec]) -> Vec<(usize, LayerSpec)> {
    let mut runs: Vec<(usize, LayerSpec)> = Vec::new();
    for layer in layers {
        match runs.last_mut() {
            Some((count, last)) if last == layer => *count += 1,
            _ => runs.push((1, *layer)),
        }
    }
    runs
}

/// Format 3's runs (4 bytes each) back into `n` layers: each run holds at least one
/// layer, consecutive runs differ and the counts add up to `n` (§4).
fn expand_runs(runs: &[u8], n: usize) -> Result<Vec<LayerSpec>> {
    let mut layers: Vec<LayerSpec> = Vec::with_capacity(n);
    for run in runs.chunks_exact(4) {
        let count = run[0] as usize;
        check("run length", count as u64, count >= 1, "1 ..= 255")?;
        let layer = LayerSpec {
            k: u16::from_le_bytes([run[1], run[2]]) as u32,
            scale_log2: run[3] & 0x0F,
            cell_log2: run[3] >> 4,
        };
        check(
            "run",
            layers.len() as u64,
            layers.last() != Some(&layer),
            "different from the run before it",
        )?;
        layers.extend(std::iter::repeat_n(layer, count));
        check(
            "layers in runs",
            layers.len() as u64,
            layers.len() <= n,
            "the layer count",
        )?;
    }
    check(
        "layers in runs",
        layers.len() as u64,
        layers.len() == n,
        "the layer count",
    )?;
    Ok(layers)
}

/// Whether a format has a filter section and its length `F` in the header (§7.5): 4 on.
pub(super) fn has_filter(version: u8) -> bool {
    version >= FORMAT_V4
}

/// Whether a format lists the schedule as runs with varint lengths (§4): 3 on.
fn has_runs(version: u8) -> bool {
    version >= FORMAT_V3
}

/// Bytes of `x` as a minimal LEB128 varint (§2.1).
pub(super) fn varint_len(x: u32) -> usize {
    (32 - x.leading_zeros() as usize).div_ceil(7).max(1)
}

pub(super) fn write_varint(out: &mut Vec<u8>, mut x: u32) {
    while x >= 0x80 {
        out.push((x & 0x7F) as u8 | 0x80);
        x >>= 7;
    }
    out.push(x as u8);
}

/// The varint at `at` and its length in bytes, read byte by byte (§9 step 3); `field`
/// names it in errors.
pub(super) fn read_varint(bytes: &[u8], at: usize, field: &'static str) -> Result<(u32, usize)> {
    let mut value = 0u64;
    for i in 0..MAX_VARINT_LEN {
        need(bytes, at + i + 1)?;
        let byte = bytes[at + i];
        value |= ((byte & 0x7F) as u64) << (7 * i);
        if byte < 0x80 {
            check(field, value, value <= u32::MAX as u64, "below 2^32")?;
            return Ok((value as u32, i + 1));
        }
    }
    Err(Error::InvalidField {
        field,
        value,
        expected: "a varint of at most 5 bytes",
    })
}

/// Bytes of one schedule entry: K, scale, cell, and in format 2 the segment length.
fn entry_len(version: u8) -> usize {
    if version == FORMAT_V1 {
        4
    } else {
        8
    }
}

fn need(bytes: &[u8], needed: usize) -> Result<()> {
    if bytes.len() < needed {
        Err(Error::TruncatedHeader {
            needed,
            got: bytes.len(),
        })
    } else {
        Ok(())
    }
}

fn u16_at(bytes: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([bytes[at], bytes[at + 1]])
}

pub(crate) fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4-byte slice"))
}
