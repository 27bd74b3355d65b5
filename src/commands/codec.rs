//! `ddn compress` and `ddn decompress`.

use std::path::{Path, PathBuf};

use crate::codec::{self, EncodeOptions, Rate};
use crate::error::{Error, Result};
use crate::io::{decode_image, default_output, is_stdio, read_input, save_image, write_output};

use super::device::ModelArgs;

#[derive(Debug, clap::Args)]
pub struct CompressOptions {
    /// The image: PNG, JPEG, PPM/PGM, BMP, TIFF, WebP, GIF, TGA, QOI (`-` reads stdin).
    pub input: PathBuf,
    /// The .ddn file to write (default: the input's name with .ddn; stdout for stdin input).
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// Target rate in bits per pixel, header included: the best file that fits.
    /// The default is 0.25.
    #[arg(long, conflicts_with_all = ["layers", "lambda"])]
    pub bpp: Option<f64>,
    /// Code exactly this many layers of the model, every cell taking its nearest
    /// candidate (or keep).
    #[arg(long, conflicts_with = "lambda")]
    pub layers: Option<usize>,
    /// Trade-off instead of a target rate: each cell minimises squared error (8-bit
    /// scale) + LAMBDA × bits. Larger is smaller and coarser; 0 is the best the model can do.
    #[arg(long)]
    pub lambda: Option<f64>,
    /// Tile side in pixels (rounded up to a multiple of the model's largest cell).
    #[arg(long, default_value_t = codec::DEFAULT_TILE)]
    pub tile: u32,
    /// Overwrite the output if it exists.
    #[arg(short, long)]
    pub force: bool,
    #[command(flatten)]
    pub model: ModelArgs,
}

#[derive(Debug, clap::Args)]
pub struct DecompressOptions {
    /// The .ddn file (`-` reads stdin).
    pub input: PathBuf,
    /// The image to write; its extension picks the format (default: the input's name with
    /// .png; stdout for stdin input).
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// Decode only the first N layers (a coarser image).
    #[arg(long)]
    pub layers: Option<usize>,
    /// Overwrite the output if it exists.
    #[arg(short, long)]
    pub force: bool,
    #[command(flatten)]
    pub model: ModelArgs,
}

fn output_path(input: &Path, output: &Option<PathBuf>, extension: &str) -> PathBuf {
    match output {
        Some(p) => p.clone(),
        None if is_stdio(input) => PathBuf::from("-"),
        None => default_output(input, extension),
    }
}

/// Refuses before any work when the output exists, or would overwrite the input.
fn check_output(input: &Path, output: &Path, force: bool) -> Result<()> {
    if is_stdio(output) {
        return Ok(());
    }
    if !is_stdio(input) && same_file(input, output) {
        return Err(Error::InvalidArgument(format!(
            "output {} is the input",
            output.display()
        )));
    }
    if output.exists() && !force {
        return Err(Error::OutputExists(output.to_path_buf()));
    }
    match output.parent() {
        Some(dir) if !dir.as_os_str().is_empty() && !dir.is_dir() => Err(Error::io(
            output,
            std::io::Error::new(std::io::ErrorKind::NotFound, "its folder does not exist"),
        )),
        _ => Ok(()),
    }
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

pub fn compress(opts: &CompressOptions) -> Result<()> {
    let output = output_path(&opts.input, &opts.output, "ddn");
    check_output(&opts.input, &output, opts.force)?;
    let source = decode_image(&read_input(&opts.input)?)?;
    if source.had_alpha {
        eprintln!("ddn: warning: the alpha channel is not coded and was dropped");
    }
    let model = opts.model.load()?;
    let rate = match (opts.bpp, opts.layers, opts.lambda) {
        (_, Some(n), _) => Rate::Layers(n),
        (_, _, Some(l)) => Rate::Lambda(l),
        (Some(b), _, _) => Rate::Bpp(b),
        (None, None, None) => Rate::Bpp(codec::DEFAULT_BPP),
    };
    let bytes = codec::encode(
        &model,
        &source,
        EncodeOptions {
            rate,
            tile: opts.tile,
        },
    )?;
    write_output(&output, opts.force, &bytes)
}

pub fn decompress(opts: &DecompressOptions) -> Result<()> {
    let output = output_path(&opts.input, &opts.output, "png");
    check_output(&opts.input, &output, opts.force)?;
    // The file is checked before the model is loaded: a bad input fails fast.
    let file = crate::bitstream::read_file(&read_input(&opts.input)?)?;
    let model = opts.model.load()?;
    let decoded = codec::decode_file(&model, &file, opts.layers)?;
    if let Some(t) = decoded.truncation {
        eprintln!(
            "ddn: warning: truncated file: decoded {} of {} layers; the payload could not be verified",
            decoded.layers_decoded, t.coded
        );
    }
    save_image(&output, opts.force, &decoded.image)
}
