//! `ddn info`: the header of a `.ddn` file, field by field.

use std::path::PathBuf;

use serde::Serialize;

use crate::bitstream::{layer_bits, read_file, FORMAT_V1};
use crate::error::Result;
use crate::io::read_input;

#[derive(Debug, clap::Args)]
pub struct InfoOptions {
    /// The .ddn file (`-` reads stdin).
    pub input: PathBuf,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Serialize)]
pub struct LayerInfo {
    pub layer: usize,
    pub k: u32,
    pub scale_log2: u8,
    pub cell_pixels: u32,
    pub cells: u64,
    pub bits: u64,
    pub present: bool,
    /// Cells that kept the previous image (format 2, layers present).
    pub kept: Option<u64>,
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
}

/// Reads and checks `bytes` as a `.ddn` file and describes it.
pub fn describe(bytes: &[u8]) -> Result<FileInfo> {
    let file = read_file(bytes)?;
    let h = &file.header;
    let bits = layer_bits(h);
    let present = file.layers.len();
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
    })
}

pub fn run(opts: &InfoOptions) -> Result<()> {
    let info = describe(&read_input(&opts.input)?)?;
    if opts.json {
        println!("{}", serde_json::to_string(&info).expect("serialisable"));
    } else {
        print!("{}", render_text(&info));
    }
    Ok(())
}

fn render_text(i: &FileInfo) -> String {
    let mut s = format!(
        "format version  {}\nmodel id        {} ({})\nsize            {}x{}{}\ntiles           {}x{} of {} px\nlayers          {} present of {} coded\nheader          {} bytes\npayload         {} bits\nfile            {} bytes, {:.4} bpp\n",
        i.format_version,
        i.model_id,
        i.model_version.as_deref().map_or_else(
            || "not built in: decode it with that model's file".to_string(),
            |v| format!("built-in model {v}")
        ),
        i.width,
        i.height,
        if i.grey { " (grey)" } else { "" },
        i.tiles_x,
        i.tiles_y,
        i.tile_size,
        i.layers_present,
        i.layers_coded,
        i.header_bytes,
        i.payload_bits,
        i.file_bytes,
        i.bpp,
    );
    s.push_str("layer      K  scale  cell px      cells       bits   kept  present\n");
    for l in &i.layers {
        let kept = l.kept.map_or("-".to_string(), |k| {
            format!("{:.0}%", 100.0 * k as f64 / l.cells as f64)
        });
        s.push_str(&format!(
            "{:>5} {:>6} {:>6} {:>8} {:>10} {:>10} {:>6}  {}\n",
            l.layer,
            l.k,
            l.scale_log2,
            l.cell_pixels,
            l.cells,
            l.bits,
            kept,
            if l.present { "yes" } else { "no" }
        ));
    }
    s
}
