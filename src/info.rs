//! What a `.ddn` file holds, field by field: the header, each layer's cells and bits,
//! and which built-in model decodes it (`ddn info`).

use serde::Serialize;

use crate::bitstream::symbols::layer_mode;
use crate::bitstream::{layer_bits, read_file, FORMAT_V1};
use crate::error::Result;

#[derive(Debug, Serialize)]
pub struct LayerInfo {
    pub layer: usize,
    pub k: u32,
    pub scale_log2: u8,
    pub cell_pixels: u32,
    pub cells: u64,
    pub bits: u64,
    pub present: bool,
    /// Cells that kept the previous image (formats 2 to 7, layers present).
    pub kept: Option<u64>,
    /// Format 7, layers present: whether the layer's mode turns its neighbour flags on
    /// (codec-spec.md §7.3).
    pub neighbour_flags: Option<bool>,
}

/// Everything `ddn info` reports.
#[derive(Debug, Serialize)]
pub struct FileInfo {
    pub format_version: u8,
    pub model_id: String,
    /// The built-in model version that decodes the file, if this build carries it.
    pub model_version: Option<String>,
    pub width: u32,
    pub height: u32,
    pub grey: bool,
    pub tile_size: u32,
    pub tiles_x: u32,
    pub tiles_y: u32,
    pub layers_coded: usize,
    pub layers_present: usize,
    pub header_bytes: usize,
    pub payload_bits: u64,
    pub file_bytes: usize,
    pub bpp: f64,
    pub layers: Vec<LayerInfo>,
    /// The output filter of formats 4 to 7 (codec-spec.md §7.5), if the file has one.
    pub filter: Option<FilterInfo>,
}

/// The output filter of a file, in brief.
#[derive(Debug, Serialize)]
pub struct FilterInfo {
    pub bytes: u32,
    /// All classes: activity classes times direction classes.
    pub classes: usize,
    /// Direction classes per activity class (1 or 3).
    pub directions: u8,
    pub precision: u8,
    /// Whether a decode applies it (not to a truncated file).
    pub applied: bool,
}

/// Reads and checks `bytes` as a `.ddn` file and describes it.
pub fn describe(bytes: &[u8]) -> Result<FileInfo> {
    let file = read_file(bytes)?;
    let h = &file.header;
    let bits = layer_bits(h);
    let present = file.layers.len();
    let mut segment_start = h.encoded_len();
    let modes: Vec<Option<bool>> = h
        .segments
        .iter()
        .take(present)
        .map(|&len| {
            let segment = &bytes[segment_start..segment_start + len as usize];
            segment_start += len as usize;
            layer_mode(segment, h.coding())
        })
        .collect();
    let layers = h
        .layers
        .iter()
        .zip(h.index_counts())
        .zip(&bits)
        .enumerate()
        .map(|(l, ((spec, cells), &bits))| LayerInfo {
            layer: l,
            k: spec.k,
            scale_log2: spec.scale_log2,
            cell_pixels: spec.cell_pixels(),
            cells,
            bits,
            present: l < present,
            kept: file
                .layers
                .get(l)
                .filter(|_| h.version != FORMAT_V1)
                .map(|symbols| symbols.iter().filter(|&&s| s == spec.k).count() as u64),
            neighbour_flags: modes.get(l).copied().flatten(),
        })
        .collect();
    Ok(FileInfo {
        format_version: h.version,
        model_id: h.model_id.to_string(),
        model_version: crate::model::shipped::find(h.model_id).map(|m| m.version.to_string()),
        width: h.width,
        height: h.height,
        grey: h.grey,
        tile_size: h.tile,
        tiles_x: h.width.div_ceil(h.tile),
        tiles_y: h.height.div_ceil(h.tile),
        layers_coded: h.layers.len(),
        layers_present: present,
        header_bytes: h.encoded_len(),
        payload_bits: bits.iter().sum(),
        file_bytes: bytes.len(),
        bpp: bytes.len() as f64 * 8.0 / (h.width as f64 * h.height as f64),
        layers,
        filter: (h.filter_len > 0).then(|| FilterInfo {
            bytes: h.filter_len,
            classes: file.filter.as_ref().map_or(0, |f| f.classes.len()),
            directions: file.filter.as_ref().map_or(0, |f| f.directions),
            precision: file.filter.as_ref().map_or(0, |f| f.precision),
            applied: file.filter.is_some(),
        }),
    })
}
