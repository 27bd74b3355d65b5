//! What a model and a `.ddn` file must agree on: the layer schedule (each layer's K,
//! scale and cell size, codec-spec.md §4) and the model's identity (§3). The model and
//! the bitstream both build on this module; neither imports the other.

use std::fmt;

use crate::error::{Error, Result};

/// Fewest candidates a layer may have.
pub const MIN_K: u32 = 2;
/// Most candidates a layer may have.
pub const MAX_K: u32 = 4096;
/// Most layers a schedule may have.
pub const MAX_LAYERS: usize = 255;
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
        check_field(
            "K",
            self.k as u64,
            (MIN_K..=MAX_K).contains(&self.k),
            "2..=4096",
        )?;
        check_field(
            "scale",
            self.scale_log2 as u64,
            self.scale_log2 <= MAX_SCALE_LOG2,
            "0..=7",
        )?;
        check_field(
            "cell",
            self.cell_log2 as u64,
            self.cell_log2 <= MAX_CELL_LOG2 && self.scale_log2 + self.cell_log2 <= MAX_GRANULE_LOG2,
            "0..=7 with scale + cell <= 10",
        )
    }
}

/// §4: the side of the largest cell of any layer in the schedule, in image pixels.
pub fn granule(layers: &[LayerSpec]) -> u32 {
    layers.iter().map(LayerSpec::cell_pixels).max().unwrap_or(1)
}

/// An out-of-range field as an error naming the field and the range it must lie in.
pub(crate) fn check_field(
    field: &'static str,
    value: u64,
    ok: bool,
    expected: &'static str,
) -> Result<()> {
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
