//! `ddn compress` and `ddn decompress`.

use std::path::{Path, PathBuf};

use image::ImageFormat;

use ddn::bitstream::DdnFile;
use ddn::codec::{self, EncodeOptions, Rate, Replayed};
use ddn::error::{Error, Result};
use ddn::io::{
    check_output, check_pixels, decode_image, decode_image_within, output_format, read_input,
    save_image, streams_rows, write_output, write_output_with, write_rows,
};
use ddn::model::{Model, ModelCache};

use super::batch::{BatchArgs, Plan};
use super::device::ModelArgs;
use ddn::bitstream::header::MAX_PIXELS;

#[derive(Debug, clap::Args)]
pub struct CompressOptions {
    /// Images: PNG, JPEG, PPM/PGM, BMP, TIFF, WebP, GIF, TGA, QOI (`-` reads stdin), or
    /// directories of them with --recursive.
    #[arg(required = true, value_name = "INPUT")]
    pub inputs: Vec<PathBuf>,
    /// The .ddn file to write, for one input (default: the input's name with .ddn;
    /// stdout for stdin input).
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub batch: BatchArgs,
    /// Target rate in bits per pixel, header included: the best file that fits.
    /// With no rate option at all: 0.25, or the smallest possible file for images too
    /// small to fit that.
    #[arg(long, group = "rate")]
    pub bpp: Option<f64>,
    /// Quality 1–100: a fixed trade-off between error and size, the same on every image
    /// (λ = 4·10^((100 − Q)/25)); on Kodak photographs 25 gives about 0.14 bpp, 50 about
    /// 0.6 and 75 about 1.4, more on detailed images.
    #[arg(short, long, value_name = "Q", group = "rate")]
    pub quality: Option<u8>,
    /// The smallest file whose decoded PSNR is at least DB (on RGB; on grey for grey images).
    #[arg(long, value_name = "DB", group = "rate")]
    pub psnr: Option<f64>,
    /// Code exactly this many layers of the model, every cell taking its nearest
    /// candidate (or keep).
    #[arg(long, group = "rate")]
    pub layers: Option<usize>,
    /// Trade-off instead of a target rate: each cell minimises squared error (8-bit
    /// scale) + LAMBDA × bits. Larger is smaller and coarser; 0 is the best the model can do.
    #[arg(long, group = "rate")]
    pub lambda: Option<f64>,
    /// Region of interest: a grey mask of any size, scaled to the image, white where the
    /// image matters most. Errors under white count 8 times those under black, so at the
    /// same size a face or text stays sharper and the background gives up bits.
    #[arg(long, value_name = "MASK")]
    pub roi: Option<PathBuf>,
    /// Print the file's size, bpp and decoded PSNR on stderr.
    #[arg(long)]
    pub report: bool,
    /// Tile side in pixels (rounded up to a multiple of the model's largest cell).
    #[arg(long, default_value_t = codec::DEFAULT_TILE)]
    pub tile: u32,
    /// What the choices favour: psnr (squared error), or ssim, which gives the coarse
    /// levels more of the rate: MS-SSIM up by 0.001–0.005 for up to 0.1 dB of PSNR.
    #[arg(long, value_enum, default_value_t = TuneArg::Psnr)]
    pub tune: TuneArg,
    /// Overwrite the output if it exists.
    #[arg(short, long)]
    pub force: bool,
    /// Refuse images with more pixels than this, before decoding them. The default is
    /// the format's limit.
    #[arg(long, value_name = "N", default_value_t = MAX_PIXELS)]
    pub max_pixels: u64,
    #[command(flatten)]
    pub model: ModelArgs,
}

/// `--tune`'s values ([`codec::Tune`]).
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum TuneArg {
    Psnr,
    Ssim,
}

impl From<TuneArg> for codec::Tune {
    fn from(tune: TuneArg) -> Self {
        match tune {
            TuneArg::Psnr => codec::Tune::Psnr,
            TuneArg::Ssim => codec::Tune::Ssim,
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct DecompressOptions {
    /// .ddn files (`-` reads stdin), or directories of them with --recursive.
    #[arg(required = true, value_name = "INPUT")]
    pub inputs: Vec<PathBuf>,
    /// The image to write, for one input; its extension picks the format (default: the
    /// input's name with .png; stdout for stdin input).
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub batch: BatchArgs,
    /// Decode only the first N layers (a coarser image).
    #[arg(long)]
    pub layers: Option<usize>,
    /// Refuse files whose image has more pixels than this, before decoding anything
    /// (for services that decode untrusted files). The default is the format's limit.
    #[arg(long, value_name = "N", default_value_t = MAX_PIXELS)]
    pub max_pixels: u64,
    /// Overwrite the output if it exists.
    #[arg(short, long)]
    pub force: bool,
    #[command(flatten)]
    pub model: ModelArgs,
}

fn bits_per_pixel(bytes: usize, width: u32, height: u32) -> f64 {
    bytes as f64 * 8.0 / (width as f64 * height as f64)
}

pub fn compress(opts: &CompressOptions) -> Result<()> {
    let plan = Plan::new(&opts.inputs, &opts.output, &opts.batch, is_image_path)?;
    let roi = match &opts.roi {
        Some(path) => Some(decode_image(&read_input(path)?)?.luma()),
        None => None,
    };
    let model = opts.model.load()?;
    plan.run(&opts.output, &opts.batch, "ddn", |input, output| {
        compress_one(&model, opts, roi.as_ref(), input, output)
    })
}

/// Compresses one image; returns the file's bits per pixel.
fn compress_one(
    model: &Model,
    opts: &CompressOptions,
    roi: Option<&image::GrayImage>,
    input: &Path,
    output: &Path,
) -> Result<f64> {
    let mut inputs = vec![input];
    inputs.extend(opts.roi.as_deref());
    create_parent(output, opts.batch.out_dir.is_some())?;
    check_output(&inputs, output, opts.force)?;
    let source = decode_image_within(&read_input(input)?, opts.max_pixels)?;
    let rate = match (opts.bpp, opts.quality, opts.psnr, opts.layers, opts.lambda) {
        (Some(b), ..) => Rate::Bpp(b),
        (_, Some(q), ..) => Rate::Quality(q),
        (_, _, Some(db), ..) => Rate::Psnr(db),
        (.., Some(n), _) => Rate::Layers(n),
        (.., Some(l)) => Rate::Lambda(l),
        (None, None, None, None, None) => Rate::BppOrSmallest(codec::DEFAULT_BPP),
    };
    let encode_options = EncodeOptions {
        rate,
        tile: opts.tile,
        tune: opts.tune.into(),
    };
    let bytes = match roi {
        Some(mask) => codec::encode_with_roi(model, &source, encode_options, mask)?,
        None => codec::encode(model, &source, encode_options)?,
    };
    write_output(output, opts.force, &bytes)?;
    let (w, h) = source.rgb.dimensions();
    let bpp = bits_per_pixel(bytes.len(), w, h);
    if opts.report {
        let decoded = codec::decode(model, &bytes, None)?;
        eprintln!(
            "ddn: {}: {} bytes, {bpp:.4} bpp, PSNR {:.2} dB",
            input.display(),
            bytes.len(),
            codec::quality::decoded_psnr(&source, &decoded.image.to_rgb8())
        );
    }
    if source.had_alpha {
        eprintln!(
            "ddn: warning: {}: the alpha channel is not coded and was dropped",
            input.display()
        );
    }
    Ok(bpp)
}

/// Makes the folders of a batch output under `--out-dir`.
fn create_parent(output: &Path, under_out_dir: bool) -> Result<()> {
    match output.parent() {
        Some(dir) if under_out_dir && !dir.as_os_str().is_empty() => {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))
        }
        _ => Ok(()),
    }
}

pub fn decompress(opts: &DecompressOptions) -> Result<()> {
    let plan = Plan::new(&opts.inputs, &opts.output, &opts.batch, is_ddn_path)?;
    let models = ModelCache::default();
    plan.run(&opts.output, &opts.batch, "png", |input, output| {
        decompress_one(&models, opts, input, output)
    })
}

/// Decompresses one file; returns its bits per pixel.
fn decompress_one(
    models: &ModelCache,
    opts: &DecompressOptions,
    input: &Path,
    output: &Path,
) -> Result<f64> {
    create_parent(output, opts.batch.out_dir.is_some())?;
    check_output(&[input], output, opts.force)?;
    // The file is checked before the model is loaded: a bad input fails fast.
    let bytes = read_input(input)?;
    let file = ddn::bitstream::read_file(&bytes)?;
    let (w, h) = (file.header.width, file.header.height);
    check_pixels(w, h, opts.max_pixels)?;
    let id = file.header.model_id;
    let model = models.get_or_load(id, || opts.model.load_for(id))?;
    let format = output_format(output);
    let decoded = if streams_rows(format) {
        decode_streaming(&model, &file, opts.layers, output, format, opts.force)?
    } else {
        let decoded = codec::decode_file(&model, &file, opts.layers)?;
        save_image(output, opts.force, &decoded.image)?;
        Replayed {
            truncation: decoded.truncation,
            layers_decoded: decoded.layers_decoded,
        }
    };
    if let Some(t) = decoded.truncation {
        // A truncated file is never filtered (codec-spec.md §7.5): say so when it had one.
        let unfiltered = if file.header.filter_len > 0 {
            ", and its output filter was not applied"
        } else {
            ""
        };
        eprintln!(
            "ddn: warning: {}: truncated file: decoded {} of {} layers; the payload could not be verified{unfiltered}",
            input.display(),
            decoded.layers_decoded,
            t.coded
        );
    }
    Ok(bits_per_pixel(bytes.len(), w, h))
}

fn is_image_path(path: &Path) -> bool {
    ImageFormat::from_path(path).is_ok_and(|f| f.reading_enabled())
}

fn is_ddn_path(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("ddn"))
}

/// Decodes band by band straight into the output image (PNG, PPM/PGM, TGA): memory
/// holds one band of tiles, not the image, however large the file says the image is.
fn decode_streaming(
    model: &Model,
    file: &DdnFile,
    layers: Option<usize>,
    output: &Path,
    format: ImageFormat,
    force: bool,
) -> Result<Replayed> {
    let header = &file.header;
    let mut decoded = None;
    write_output_with(output, force, |out| {
        write_rows(
            out,
            format,
            header.width,
            header.height,
            header.grey,
            |write| {
                let d = codec::decode_bands(model, file, layers, |band| {
                    if header.grey {
                        write(band.luma().as_raw())
                    } else {
                        write(band.rgb.as_raw())
                    }
                })?;
                decoded = Some(d);
                Ok(())
            },
        )
    })?;
    Ok(decoded.expect("set when the write succeeded"))
}
