//! §2–§5 of codec-spec.md: the header's fields, their ranges, and how they are read and
//! written.

use crate::error::{Error, Result};
use crate::schedule::check_field as check;
pub use crate::schedule::{granule, LayerSpec, ModelId, MAX_LAYERS};

/// §2.2: `0x89 'D' 'D' 'N'`.
pub const MAGIC: [u8; 4] = [0x89, b'D', b'D', b'N'];
/// The format version this build writes.
pub const FORMAT_VERSION: u8 = 2;
/// The first format: fixed-length indices, no keep symbol. Still read and written.
pub const FORMAT_V1: u8 = 1;
/// Bytes before the layer schedule.
pub const FIXED_HEADER_LEN: usize = 24;
pub const MAX_SIDE: u32 = 65_535;
pub const MAX_PIXELS: u64 = 256 * 1024 * 1024;
pub const MAX_TILE: u32 = 4096;
const FLAG_GREY: u8 = 0x01;

/// The decoded header of a `.ddn` file (§2.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// §2.2: 1 or 2.
    pub version: u8,
    /// §6: the source was greyscale.
    pub grey: bool,
    pub model_id: ModelId,
    pub width: u32,
    pub height: u32,
    pub tile: u32,
    /// The coded layers, the model's first `layers.len()`.
    pub layers: Vec<LayerSpec>,
    /// Format 2: the byte length of every layer's segment (§4, §7). Empty in format 1.
    pub segments: Vec<u32>,
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
    /// Bytes the header takes with `n` layers (§1).
    pub fn encoded_len_for(version: u8, n: usize) -> usize {
        FIXED_HEADER_LEN + entry_len(version) * n + 4
    }

    pub fn encoded_len(&self) -> usize {
        Self::encoded_len_for(self.version, self.layers.len())
    }

    /// Checks every range of §2.2, §4 and §5.
    pub fn validate(&self) -> Result<()> {
        validate_image_size(self.width as u64, self.height as u64)?;
        let n = self.layers.len();
        check(
            "layer count",
            n as u64,
            (1..=MAX_LAYERS).contains(&n),
            "1..=255",
        )?;
        self.layers.iter().try_for_each(LayerSpec::validate)?;
        let segments_expected = if self.version == FORMAT_V1 { 0 } else { n };
        check(
            "segment count",
            self.segments.len() as u64,
            self.segments.len() == segments_expected,
            "one per layer in format 2, none in format 1",
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
        if version != FORMAT_V1 && version != FORMAT_VERSION {
            return Err(Error::UnsupportedVersion {
                version,
                newest: FORMAT_VERSION,
            });
        }
        need(bytes, FIXED_HEADER_LEN)?;
        let n = bytes[22] as usize;
        let len = Self::encoded_len_for(version, n);
        need(bytes, len)?;
        let stored = u32_at(bytes, len - 4);
        let computed = crc32fast::hash(&bytes[..len - 4]);
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
        let header = Header {
            version,
            grey: flags & FLAG_GREY != 0,
            model_id: ModelId(bytes[8..16].try_into().expect("8-byte slice")),
            width: u16_at(bytes, 16) as u32,
            height: u16_at(bytes, 18) as u32,
            tile: u16_at(bytes, 20) as u32,
            layers,
            segments,
        };
        header.validate()?;
        Ok((header, len))
    }
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
