//! §2–§5 of codec-spec.md: the header's fields, their ranges, and how they are read and
//! written.

use std::fmt;

use crate::error::{Error, Result};

use super::packer::{MAX_K, MIN_K};

/// §2.2: `0x89 'D' 'D' 'N'`.
pub const MAGIC: [u8; 4] = [0x89, b'D', b'D', b'N'];
/// The format version this build reads and writes.
pub const FORMAT_VERSION: u8 = 1;
/// Bytes before the layer schedule.
pub const FIXED_HEADER_LEN: usize = 24;
pub const MAX_SIDE: u32 = 65_535;
pub const MAX_PIXELS: u64 = 256 * 1024 * 1024;
pub const MAX_TILE: u32 = 4096;
pub const MAX_LAYERS: usize = 255;
const FLAG_GREY: u8 = 0x01;
const MAX_SCALE_LOG2: u8 = 7;
const MAX_CELL_LOG2: u8 = 7;
const MAX_GRANULE_LOG2: u8 = 10;

/// §3: the first 8 bytes of the SHA-256 of the model file.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ModelId(pub [u8; 8]);

impl fmt::Display for ModelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for ModelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ModelId({self})")
    }
}

/// §4: one layer of the schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LayerSpec {
    /// Candidates per cell.
    pub k: u32,
    /// The layer's grid is the image downsampled by `2^scale_log2`.
    pub scale_log2: u8,
    /// A cell is `2^cell_log2` grid pixels on a side.
    pub cell_log2: u8,
}

impl LayerSpec {
    /// Side of one cell in image pixels.
    pub fn cell_pixels(&self) -> u32 {
        1 << (self.scale_log2 + self.cell_log2)
    }

    /// Checks the ranges of §4.
    pub fn validate(&self) -> Result<()> {
        check(
            "K",
            self.k as u64,
            (MIN_K..=MAX_K).contains(&self.k),
            "2..=4096",
        )?;
        check(
            "scale",
            self.scale_log2 as u64,
            self.scale_log2 <= MAX_SCALE_LOG2,
            "0..=7",
        )?;
        check(
            "cell",
            self.cell_log2 as u64,
            self.cell_log2 <= MAX_CELL_LOG2 && self.scale_log2 + self.cell_log2 <= MAX_GRANULE_LOG2,
            "0..=7 with scale + cell <= 10",
        )
    }
}

/// The decoded header of a `.ddn` file (§2.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// §6: the source was greyscale.
    pub grey: bool,
    pub model_id: ModelId,
    pub width: u32,
    pub height: u32,
    pub tile: u32,
    /// The coded layers, the model's first `layers.len()`.
    pub layers: Vec<LayerSpec>,
}

fn check(field: &'static str, value: u64, ok: bool, expected: &'static str) -> Result<()> {
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidField {
            field,
            value,
            expected,
        })
    }
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

/// §4: side of the largest cell of any layer in the schedule.
pub fn granule(layers: &[LayerSpec]) -> u32 {
    layers.iter().map(LayerSpec::cell_pixels).max().unwrap_or(1)
}

impl Header {
    /// Bytes the header takes with `n` layers (§1).
    pub fn encoded_len_for(n: usize) -> usize {
        FIXED_HEADER_LEN + 4 * n + 4
    }

    pub fn encoded_len(&self) -> usize {
        Self::encoded_len_for(self.layers.len())
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
        out.push(FORMAT_VERSION);
        out.push(if self.grey { FLAG_GREY } else { 0 });
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(&self.model_id.0);
        for v in [self.width, self.height, self.tile] {
            out.extend_from_slice(&(v as u16).to_le_bytes());
        }
        out.push(self.layers.len() as u8);
        out.push(0);
        for layer in &self.layers {
            out.extend_from_slice(&(layer.k as u16).to_le_bytes());
            out.push(layer.scale_log2);
            out.push(layer.cell_log2);
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
        if bytes[4] != FORMAT_VERSION {
            return Err(Error::UnsupportedVersion(bytes[4]));
        }
        need(bytes, FIXED_HEADER_LEN)?;
        let n = bytes[22] as usize;
        let len = Self::encoded_len_for(n);
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
        let reserved = u16_at(bytes, 6) as u64 | (bytes[23] as u64) << 16;
        check("reserved", reserved, reserved == 0, "0")?;
        let layers = (0..n)
            .map(|l| {
                let at = FIXED_HEADER_LEN + 4 * l;
                LayerSpec {
                    k: u16_at(bytes, at) as u32,
                    scale_log2: bytes[at + 2],
                    cell_log2: bytes[at + 3],
                }
            })
            .collect();
        let header = Header {
            grey: flags & FLAG_GREY != 0,
            model_id: ModelId(bytes[8..16].try_into().expect("8-byte slice")),
            width: u16_at(bytes, 16) as u32,
            height: u16_at(bytes, 18) as u32,
            tile: u16_at(bytes, 20) as u32,
            layers,
        };
        header.validate()?;
        Ok((header, len))
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
