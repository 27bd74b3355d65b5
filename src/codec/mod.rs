//! The codec: a tree walk per tile that chooses each cell's symbol by rate and
//! distortion (encode), and its replay from the stored symbols (decode).
//!
//! One module per stage: [`encoder`] walks the network and makes the choices,
//! [`rate_control`] searches the trade-off λ for a target size, [`quality`] for a target
//! quality, [`decoder`] replays a file. The bit layout lives in [`crate::bitstream`].

pub mod decoder;
pub mod encoder;
pub mod filter;
pub mod quality;
pub mod rate_control;
pub mod rd;
pub mod tiles;

use candle_core::Tensor;

use crate::bitstream::{self, layer_bits, Header};
use crate::error::{Error, Result};
use crate::io::SourceImage;
use crate::model::ddl::{self, Candidates};
use crate::model::{Chooser, Model};

pub use decoder::{check_model, decode, decode_bands, decode_file, Band, Decoded, Replayed};
use encoder::{encode_at, smallest_file, walk_at, Job, Probe, Trim};
use rate_control::{fit_budget, RateProbe};

/// Default tile side; rounded up to a multiple of the model's granule. Each tile is coded
/// alone, so the network sees no context across a tile's edge: on Kodak, one tile per
/// image instead of 256-pixel tiles gave 0.07–0.11 dB more at every rate at the same size
/// (docs/experiments.md, "Larger tiles"). Memory follows the batches, which the encoder
/// and decoder bound by size, so a larger tile costs little of it.
pub const DEFAULT_TILE: u32 = 1024;
/// Default rate when neither `--bpp` nor `--layers` is given.
pub const DEFAULT_BPP: f64 = 0.25;

/// Where λ lands at 1 bpp with the default model for an image of typical activity
/// (222 until the encoder left out unpaying layers, which makes a file smaller at the
/// same λ: on 19 training photos the λ that fit was 0.77–0.82 times the start at 0.1,
/// 0.25, 0.5 and 1 bpp, docs/experiments.md) …
const LAMBDA_AT_1BPP: f64 = 178.0;
/// … how it grows at lower rates, λ ∝ bpp^-1.53 …
const LAMBDA_BPP_EXPONENT: f64 = 1.53;
/// … and with the image's [`activity`], λ ∝ activity^1.53 about a typical activity: a
/// busy image needs a larger λ for the same rate. Fitted to 57 training photos at 0.1,
/// 0.25, 0.5 and 1 bpp (docs/experiments.md, "Fewer walks per --bpp"): one photo's λ
/// lies within about 1.4× of the fit (one standard deviation), 2× without the activity.
const LAMBDA_ACTIVITY_EXPONENT: f64 = 1.53;
pub(crate) const TYPICAL_ACTIVITY: f64 = 21.4;

/// The λ the rate search starts from for a target of `bpp` on an image of `activity`.
pub(crate) fn start_lambda(bpp: f64, activity: f64) -> f64 {
    let busy = (activity.max(0.1) / TYPICAL_ACTIVITY).powf(LAMBDA_ACTIVITY_EXPONENT);
    LAMBDA_AT_1BPP * bpp.powf(-LAMBDA_BPP_EXPONENT) * busy
}

/// How busy an image is: the mean absolute difference of horizontally plus that of
/// vertically adjacent luma values (8-bit scale; 0 for a flat image), on the image
/// averaged over 2×2 pixels (an axis of one pixel is not averaged). At half resolution it
/// predicts λ better than at full (pixel noise costs the coarse layers little). One pass,
/// a few milliseconds for a 24-megapixel photo.
pub(crate) fn activity(rgb: &image::RgbImage) -> f64 {
    let (width, height) = (rgb.width() as usize, rgb.height() as usize);
    let (fx, fy) = (
        if width >= 2 { 2 } else { 1 },
        if height >= 2 { 2 } else { 1 },
    );
    let (w, h) = (width / fx, height / fy);
    let luma = |x: usize, y: usize| {
        let p = rgb.get_pixel(x as u32, y as u32);
        crate::model::color::luma(p.0.map(f32::from)) as f64
    };
    let mut small = vec![0f64; w * h];
    for (i, v) in small.iter_mut().enumerate() {
        let (x, y) = ((i % w) * fx, (i / w) * fy);
        let sum: f64 = (0..fy)
            .flat_map(|dy| (0..fx).map(move |dx| (x + dx, y + dy)))
            .map(|(x, y)| luma(x, y))
            .sum();
        *v = sum / (fx * fy) as f64;
    }
    let mean = |sum: f64, count: usize| if count == 0 { 0.0 } else { sum / count as f64 };
    let rows = || small.chunks_exact(w);
    let across: f64 = rows()
        .map(|row| row.windows(2).map(|p| (p[1] - p[0]).abs()).sum::<f64>())
        .sum();
    let down: f64 = rows()
        .zip(rows().skip(1))
        .map(|(a, b)| a.iter().zip(b).map(|(x, y)| (y - x).abs()).sum::<f64>())
        .sum();
    mean(across, (w - 1) * h) + mean(down, w * (h - 1))
}

/// What the encoder aims at.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rate {
    /// The best file of at most this many bits per pixel, header included: a search over
    /// the rate-distortion trade-off λ.
    Bpp(f64),
    /// Exactly this many layers, every cell taking its nearest candidate or keep.
    Layers(usize),
    /// Every layer, each cell minimising squared error (8-bit scale) + λ × bits.
    Lambda(f64),
    /// The smallest file whose decoded PSNR (RGB, or grey for grey images) is at least
    /// this many dB: a search over λ.
    Psnr(f64),
    /// A quality from 1 to 100: a fixed trade-off λ, the same for every image
    /// ([`quality::lambda_for_quality`]).
    Quality(u8),
    /// As [`Rate::Bpp`], but an image whose smallest possible file is over the target
    /// gets that smallest file instead of an error: a default rate that every image can
    /// meet, as a quality setting does.
    BppOrSmallest(f64),
}

#[derive(Debug, Clone, Copy)]
pub struct EncodeOptions {
    pub rate: Rate,
    pub tile: u32,
    pub tune: Tune,
}

impl Default for EncodeOptions {
    fn default() -> Self {
        EncodeOptions {
            rate: Rate::Bpp(DEFAULT_BPP),
            tile: DEFAULT_TILE,
            tune: Tune::default(),
        }
    }
}

/// What the rate-distortion choices favour.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Tune {
    /// Squared error (PSNR): a bit costs the same λ in every layer.
    #[default]
    Psnr,
    /// Structure (MS-SSIM): a layer's λ shrinks by [`SSIM_COARSE_LAMBDA`] for every
    /// halving of its resolution, so the coarse levels get more of the rate. On ten
    /// training photos with model v6: MS-SSIM +0.001 to +0.005 at 0.1–1.0 bpp for 0.00 to
    /// 0.09 dB of PSNR (docs/experiments.md).
    Ssim,
}

/// [`Tune::Ssim`]'s factor on λ per halving of a layer's resolution.
pub const SSIM_COARSE_LAMBDA: f32 = 0.8;

impl Tune {
    /// The factor on λ for a layer at scale `scale_log2`.
    pub fn lambda_factor(self, scale_log2: u8) -> f32 {
        match self {
            Tune::Psnr => 1.0,
            Tune::Ssim => SSIM_COARSE_LAMBDA.powi(scale_log2 as i32),
        }
    }
}

/// Keeps the nearest candidate of every cell.
pub struct NearestChooser<'a> {
    pub targets: &'a [Tensor],
}

impl Chooser for NearestChooser<'_> {
    fn choose(&mut self, layer: usize, candidates: &Candidates) -> Result<Vec<u32>> {
        let shape = candidates.shape;
        let dist = candidates.cell_distances(&self.targets[layer])?;
        Ok(ddl::nearest(&dist, shape))
    }
}

/// The tile side actually used for a requested one: at least one granule and a multiple
/// of it (codec-spec.md §5).
pub fn tile_size(requested: u32, granule: u32) -> u32 {
    requested.max(granule).div_ceil(granule) * granule
}

/// The header of a file coding `layers` layers of `image`.
fn header_for(
    model: &Model,
    width: u32,
    height: u32,
    grey: bool,
    tile: u32,
    layers: usize,
) -> Header {
    Header {
        version: bitstream::FORMAT_VERSION,
        grey,
        model_id: model.id,
        width,
        height,
        tile,
        layers: model.network.config().schedule()[..layers].to_vec(),
        segments: Vec::new(),
        filter_len: 0,
    }
}

/// Bytes of a format-1 file (fixed-length indices) with the first `n` layers: what a
/// codec without entropy coding would spend (the residual-VQ baseline's rate).
pub fn fixed_length_len(model: &Model, width: u32, height: u32, tile: u32, n: usize) -> u64 {
    let mut header = header_for(model, width, height, false, tile, n);
    header.version = bitstream::FORMAT_V1;
    let bits: u64 = layer_bits(&header).iter().sum();
    header.encoded_len() as u64 + bits.div_ceil(8) + 4
}

/// The most layers whose format-1 file fits `rate` (a layer count passes through checked).
pub fn fixed_length_layers(
    model: &Model,
    width: u32,
    height: u32,
    tile: u32,
    rate: Rate,
) -> Result<usize> {
    let total = model.network.config().layer_count();
    match rate {
        Rate::Layers(n) if (1..=total).contains(&n) => Ok(n),
        Rate::Layers(n) => Err(Error::InvalidArgument(format!(
            "{n} layers asked for, but the model has layers 1..={total}"
        ))),
        Rate::Bpp(bpp) | Rate::BppOrSmallest(bpp) if bpp.is_finite() && bpp > 0.0 => {
            let budget = bpp * width as f64 * height as f64;
            let fits =
                |n: usize| fixed_length_len(model, width, height, tile, n) as f64 * 8.0 <= budget;
            let n = (1..=total).take_while(|&n| fits(n)).count();
            if n == 0 {
                let min = fixed_length_len(model, width, height, tile, 1) as f64 * 8.0
                    / (width as f64 * height as f64);
                return Err(Error::InvalidArgument(format!(
                    "{bpp} bpp is below this image's smallest rate, {min:.4} bpp (one layer)"
                )));
            }
            Ok(n)
        }
        Rate::Bpp(bpp) | Rate::BppOrSmallest(bpp) => Err(Error::InvalidArgument(format!(
            "a target of {bpp} bpp: it must be a finite number above zero"
        ))),
        Rate::Lambda(_) | Rate::Psnr(_) | Rate::Quality(_) => Ok(total),
    }
}

/// Encodes an image into a complete `.ddn` file.
pub fn encode(model: &Model, source: &SourceImage, opts: EncodeOptions) -> Result<Vec<u8>> {
    let (width, height) = source.rgb.dimensions();
    bitstream::validate_image_size(width as u64, height as u64)?;
    let job = Job {
        model,
        source,
        tile: checked_tile(model, opts.tile)?,
        roi: None,
        tune: opts.tune,
    };
    encode_job(job, opts.rate)
}

/// The tile side for a requested one, refusing sides below the model's largest cell.
fn checked_tile(model: &Model, requested: u32) -> Result<u32> {
    let granule = model.network.config().granule();
    if requested < granule {
        return Err(Error::InvalidArgument(format!(
            "a tile side of {requested} px is below the model's largest cell, {granule} px"
        )));
    }
    Ok(tile_size(requested, granule))
}

/// [`encode`] with a region of interest: `importance` is a grey mask of any size, scaled
/// to the image, white where errors count most ([`encoder::ROI_GAIN`] times black's). At
/// the same file size, the region comes out sharper and the rest gives up bits.
pub fn encode_with_roi(
    model: &Model,
    source: &SourceImage,
    opts: EncodeOptions,
    importance: &image::GrayImage,
) -> Result<Vec<u8>> {
    let (width, height) = source.rgb.dimensions();
    let scaled = image::imageops::resize(
        importance,
        width,
        height,
        image::imageops::FilterType::Triangle,
    );
    let job = Job {
        model,
        source,
        tile: checked_tile(model, opts.tile)?,
        roi: Some(&scaled),
        tune: opts.tune,
    };
    encode_job(job, opts.rate)
}

fn encode_job(job: Job, rate: Rate) -> Result<Vec<u8>> {
    let (model, tile) = (job.model, job.tile);
    let (width, height) = job.source.rgb.dimensions();
    let total = model.network.config().layer_count();
    match rate {
        Rate::Layers(n) => {
            let n = fixed_length_layers(model, width, height, tile, Rate::Layers(n))?;
            encode_at(job, n, 0.0, Trim::Nothing)
        }
        Rate::Lambda(lambda) if lambda.is_finite() && lambda >= 0.0 => {
            encode_at_lambda(job, total, lambda)
        }
        Rate::Lambda(lambda) => Err(Error::InvalidArgument(format!(
            "λ = {lambda}: it must be a finite number, zero or more"
        ))),
        Rate::Quality(q) => encode_at_lambda(job, total, quality::lambda_for_quality(q)?),
        Rate::Psnr(db) => {
            let start = start_lambda(DEFAULT_BPP, activity(&job.source.rgb));
            quality::fit_psnr(job, total, db, start)
        }
        Rate::Bpp(bpp) | Rate::BppOrSmallest(bpp) if bpp.is_finite() && bpp > 0.0 => {
            let budget = (bpp * width as f64 * height as f64 / 8.0).floor() as usize;
            let smallest = smallest_file(job)?;
            if smallest.len() > budget {
                return match rate {
                    Rate::BppOrSmallest(_) => Ok(smallest),
                    _ => Err(Error::InvalidArgument(format!(
                        "{bpp} bpp is below the smallest file for this image, {} bytes ({:.4} bpp)",
                        smallest.len(),
                        smallest.len() as f64 * 8.0 / (width as f64 * height as f64)
                    ))),
                };
            }
            let start = start_lambda(bpp, activity(&job.source.rgb));
            let reserve = filter_reserve(budget).min(budget - smallest.len());
            let (file, probe) = fit_budget(budget - reserve, bpp, start, smallest, |lambda| {
                walk_at(job, total, lambda, Trim::RateDistortion)
            })?;
            // The payload is chosen: bytes the filter leaves would go unused, so it takes
            // the option that lowers the error most within them (λ = 0).
            let room = budget.saturating_sub(file.len());
            with_output_filter(job, file, probe.as_ref(), 0.0, room)
        }
        Rate::Bpp(bpp) | Rate::BppOrSmallest(bpp) => Err(Error::InvalidArgument(format!(
            "a target of {bpp} bpp: it must be a finite number above zero"
        ))),
    }
}

/// One walk of `layers` layers at trade-off `lambda`, and the output filter that pays at
/// the same λ.
fn encode_at_lambda(job: Job, layers: usize, lambda: f64) -> Result<Vec<u8>> {
    let probe = walk_at(job, layers, lambda, Trim::RateDistortion)?;
    with_output_filter(job, probe.file()?, Some(&probe), lambda, usize::MAX)
}

/// Bytes a `--bpp` search leaves for the output filter (codec-spec.md §7.5): about 0.8 %
/// of the budget, between 64 and 400 bytes, what the filter chosen at λ took on Kodak
/// images (one class at 0.05 bpp, 50–60 bytes; 4–8 classes at 1 bpp, 250–450 bytes;
/// docs/experiments.md, "The output filter"); at most 1/32 of a small budget, whose
/// file a filter could not pay for anyway. What the filter does not take is left unused;
/// a filter that would need more gets fewer classes or none.
fn filter_reserve(budget: usize) -> usize {
    (budget / 128).clamp(64, 400).min(budget / 32)
}

/// `file` with the output filter that pays at `lambda` and takes at most `room` more
/// bytes, fitted to the file's own decode (codec-spec.md §7.5): made from the inputs
/// `walk` kept of the file's last layer where it can, else by decoding the file.
fn with_output_filter(
    job: Job,
    file: Vec<u8>,
    walk: Option<&Probe>,
    lambda: f64,
    room: usize,
) -> Result<Vec<u8>> {
    let made = walk
        .map(|walk| walk.decoded_image(&job.model.network, &file))
        .transpose()?
        .flatten();
    let decoded = match made {
        Some(image) => image,
        None => decode_rgb(job, &file)?,
    };
    filter::add_fitted_filter(file, &job.source.rgb, &decoded, lambda, room)
}

/// What `file` decodes to before its output filter, in RGB even for a grey image.
fn decode_rgb(job: Job, file: &[u8]) -> Result<image::RgbImage> {
    let parsed = bitstream::read_file(file)?;
    let (width, height) = job.source.rgb.dimensions();
    let mut decoded = image::RgbImage::new(width, height);
    decode_bands(job.model, &parsed, None, |band| {
        image::imageops::replace(&mut decoded, &band.rgb, 0, band.y as i64);
        Ok(())
    })?;
    Ok(decoded)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grey(v: u8) -> image::Rgb<u8> {
        image::Rgb([v, v, v])
    }

    #[test]
    fn activity_is_the_mean_neighbour_difference_at_half_resolution() {
        let flat = image::RgbImage::from_pixel(9, 7, grey(77));
        assert_eq!(activity(&flat), 0.0);
        // Columns 0 0 100 100: at half resolution one row, 0 then 100.
        let steps = image::RgbImage::from_fn(4, 2, |x, _| grey(if x < 2 { 0 } else { 100 }));
        assert!((activity(&steps) - 100.0).abs() < 1e-9);
        // Rows alternate 0 and 100: averaged in pairs, nothing is left.
        let fine = image::RgbImage::from_fn(4, 4, |_, y| grey(100 * (y % 2) as u8));
        assert_eq!(activity(&fine), 0.0);
        // A one-pixel-high strip is averaged across only: 0 10 0 10 → 5 5.
        let strip = image::RgbImage::from_fn(4, 1, |x, _| grey(10 * (x % 2) as u8));
        assert_eq!(activity(&strip), 0.0);
        assert_eq!(activity(&image::RgbImage::from_pixel(1, 1, grey(3))), 0.0);
    }

    #[test]
    fn a_busier_image_or_a_lower_rate_starts_from_a_larger_lambda() {
        let typical = start_lambda(0.25, TYPICAL_ACTIVITY);
        assert!(start_lambda(0.25, 3.0 * TYPICAL_ACTIVITY) > 2.0 * typical);
        assert!(start_lambda(0.1, TYPICAL_ACTIVITY) > 2.0 * typical);
        // A flat image still starts from a positive, finite λ.
        let flat = start_lambda(0.25, 0.0);
        assert!(flat > 0.0 && flat.is_finite());
    }
}
