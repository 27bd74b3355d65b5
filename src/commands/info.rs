//! `ddn info`: the header of a `.ddn` file, field by field.

use std::path::PathBuf;

use ddn::error::Result;
use ddn::info::{describe, FileInfo};
use ddn::io::read_input;

#[derive(Debug, clap::Args)]
pub struct InfoOptions {
    /// The .ddn file (`-` reads stdin).
    pub input: PathBuf,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
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
    match &i.filter {
        Some(f) if f.applied => s.push_str(&format!(
            "filter          {} bytes: {} class{}{}, precision {}\n",
            f.bytes,
            f.classes,
            if f.classes == 1 { "" } else { "es" },
            if f.directions > 1 {
                format!(
                    " ({} by activity × {} by direction)",
                    f.classes / f.directions as usize,
                    f.directions
                )
            } else {
                String::new()
            },
            f.precision
        )),
        Some(f) => s.push_str(&format!(
            "filter          {} bytes, not applied: the file is truncated\n",
            f.bytes
        )),
        None => s.push_str("filter          none\n"),
    }
    s.push_str("layer      K  scale  cell px      cells       bits   kept  present  flags\n");
    for l in &i.layers {
        let kept = l.kept.map_or("-".to_string(), |k| {
            format!("{:.0}%", 100.0 * k as f64 / l.cells as f64)
        });
        s.push_str(&format!(
            "{:>5} {:>6} {:>6} {:>8} {:>10} {:>10} {:>6}  {:<7}  {}\n",
            l.layer,
            l.k,
            l.scale_log2,
            l.cell_pixels,
            l.cells,
            l.bits,
            kept,
            if l.present { "yes" } else { "no" },
            match l.neighbour_flags {
                Some(true) => "on",
                Some(false) => "off",
                None => "-",
            }
        ));
    }
    s
}
