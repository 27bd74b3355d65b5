//! The codec: a tree walk per tile that keeps each cell's nearest candidate (encode), and
//! its replay from the stored indices (decode).
//!
//! Encoder decisions (which layers, which indices) live here; the bit layout lives in
//! [`crate::bitstream`].

pub mod quality;
pub mod rd;
pub mod tiles;

use candle_core::Tensor;
use image::{DynamicImage, RgbImage};

use crate::bitstream::{self, layer_bits, DdnFile, Header, Tile, Truncation};
use crate::error::{Error, Result};
use crate::io::SourceImage;
use crate::model::ddl::{self, Candidates};
use crate::model::{Chooser, Model, Network, Walk};

/// Default tile side; rounded up to a multiple of the model's granule.
pub const DEFAULT_TILE: u32 = 256;
/// Default rate when neither `--bpp` nor `--layers` is given.
pub const DEFAULT_BPP: f64 = 0.25;
/// Largest `batch × K × 3 × h × w` candidate tensor an encoder batch may make (floats).
const ENCODE_BATCH_FLOATS: usize = 24 << 20;
/// Tiles per decoder batch.
const DECODE_BATCH: usize = 8;

/// Where λ lands at 1 bpp (then ∝ bpp⁻²) for natural images; Kodak images land within
/// about 3× of it either way.
const LAMBDA_AT_1BPP: f64 = 70.0;
/// Below this λ (squared 8-bit error per bit) the search tries λ = 0, the best file.
pub(crate) const MIN_USEFUL_LAMBDA: f64 = 1.0;
/// Rate control probes at most this many λ values.
const MAX_RATE_PROBES: usize = 12;
/// A probe within this fraction under the budget is close enough.
const RATE_TOLERANCE: f64 = 0.03;
/// The search stops when the λ that fits is within this factor of one that does not.
pub(crate) const NARROW_BRACKET: f64 = 1.05;
/// Re-choosing the last layer aims this close under the budget …
const TAIL_TOLERANCE: f64 = 0.01;
/// … with at most this many trials …
const TAIL_STEPS: usize = 8;
/// … at a λ within this factor of the walk's.
const TAIL_LAMBDA_RANGE: f64 = 3.0;

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
}

impl Default for EncodeOptions {
    fn default() -> Self {
        EncodeOptions {
            rate: Rate::Bpp(DEFAULT_BPP),
            tile: DEFAULT_TILE,
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
            "--layers {n}: the model has layers 1..={total}"
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

/// Tiles per encoder batch for tiles of `h × w` pixels.
fn encode_batch(network: &Network, h: usize, w: usize, layers: usize) -> usize {
    let largest = (0..layers)
        .map(|l| {
            let s = network.layer_shape(l, 1, h, w);
            s.k * 3 * s.height * s.width
        })
        .max()
        .unwrap_or(1);
    (ENCODE_BATCH_FLOATS / largest.max(1)).max(1)
}

/// Encodes an image into a complete `.ddn` file.
pub fn encode(model: &Model, source: &SourceImage, opts: EncodeOptions) -> Result<Vec<u8>> {
    let (width, height) = source.rgb.dimensions();
    bitstream::validate_image_size(width as u64, height as u64)?;
    let granule = model.network.config().granule();
    if opts.tile < granule {
        return Err(Error::InvalidArgument(format!(
            "a tile side of {} px is below the model's largest cell, {granule} px",
            opts.tile
        )));
    }
    let tile = tile_size(opts.tile, granule);
    let total = model.network.config().layer_count();
    match opts.rate {
        Rate::Layers(n) => {
            let n = fixed_length_layers(model, width, height, tile, Rate::Layers(n))?;
            encode_at(model, source, tile, n, 0.0, false)
        }
        Rate::Lambda(lambda) if lambda.is_finite() && lambda >= 0.0 => {
            encode_at(model, source, tile, total, lambda, true)
        }
        Rate::Lambda(lambda) => Err(Error::InvalidArgument(format!(
            "λ = {lambda}: it must be a finite number, zero or more"
        ))),
        Rate::Quality(q) => encode_at(
            model,
            source,
            tile,
            total,
            quality::lambda_for_quality(q)?,
            true,
        ),
        Rate::Psnr(db) => {
            quality::fit_psnr(model, source, tile, total, db, LAMBDA_AT_1BPP / 0.0625)
        }
        Rate::Bpp(bpp) | Rate::BppOrSmallest(bpp) if bpp.is_finite() && bpp > 0.0 => {
            let budget = (bpp * width as f64 * height as f64 / 8.0).floor() as usize;
            let smallest = smallest_file(model, source, tile)?;
            if smallest.len() > budget {
                return match opts.rate {
                    Rate::BppOrSmallest(_) => Ok(smallest),
                    _ => Err(Error::InvalidArgument(format!(
                        "{bpp} bpp is below the smallest file for this image, {} bytes ({:.4} bpp)",
                        smallest.len(),
                        smallest.len() as f64 * 8.0 / (width as f64 * height as f64)
                    ))),
                };
            }
            fit_budget(budget, bpp, smallest, |lambda| {
                walk_at(model, source, tile, total, lambda, true)
            })
        }
        Rate::Bpp(bpp) | Rate::BppOrSmallest(bpp) => Err(Error::InvalidArgument(format!(
            "a target of {bpp} bpp: it must be a finite number above zero"
        ))),
    }
}

/// The smallest file for `source`: one layer in which every cell keeps (the network's
/// starting image). No walk is needed to write it.
fn smallest_file(model: &Model, source: &SourceImage, tile: u32) -> Result<Vec<u8>> {
    let (width, height) = source.rgb.dimensions();
    let header = header_for(model, width, height, source.grey, tile, 1);
    let spec = header.layers[0];
    let cells = header.index_counts()[0] as usize;
    bitstream::write_file(&header, &[vec![spec.k; cells]])
}

/// What the rate search needs of one encoder walk.
trait RateProbe {
    fn lambda(&self) -> f64;
    fn file(&self) -> Result<Vec<u8>>;
    /// The file with only the last layer chosen again at `lambda`, if the walk allows.
    fn file_with_last_at(&self, lambda: f64) -> Option<Result<Vec<u8>>>;
}

/// Searches λ for the largest file of at most `budget` bytes. File size falls as λ rises,
/// roughly as a power of it, so each probe interpolates log size against log λ between
/// the tightest probes on either side of the budget, or extrapolates along the slope of
/// the last two. A probe that lands near the budget is finished by choosing only its
/// last layer again, which costs no network pass.
fn fit_budget<P: RateProbe>(
    budget: usize,
    bpp: f64,
    smallest: Vec<u8>,
    mut encode: impl FnMut(f64) -> Result<P>,
) -> Result<Vec<u8>> {
    let mut search = RateSearch::new(budget);
    let mut lambda = LAMBDA_AT_1BPP / (bpp * bpp);
    for _ in 0..MAX_RATE_PROBES {
        let probe = encode(lambda)?;
        let bytes = probe.file()?;
        let size = bytes.len();
        if size <= budget && (close_to(size, budget, RATE_TOLERANCE) || lambda == 0.0) {
            return Ok(bytes);
        }
        if let Some(bytes) = fit_last_layer(&probe, size, budget)? {
            return Ok(bytes);
        }
        search.record(lambda, bytes);
        if search.bracket_is_narrow() {
            break;
        }
        lambda = search.next_lambda();
    }
    // No probe fitted: the smallest file does (the caller checked).
    Ok(search.under.map_or(smallest, |(_, bytes)| bytes))
}

/// What the λ search has learnt from its probes.
struct RateSearch {
    budget: usize,
    /// The largest λ whose file was too big, and its size.
    over: Option<(f64, usize)>,
    /// The smallest λ whose file fitted, and the file.
    under: Option<(f64, Vec<u8>)>,
    /// Every probe so far: λ, size.
    probes: Vec<(f64, usize)>,
}

impl RateSearch {
    fn new(budget: usize) -> Self {
        RateSearch {
            budget,
            over: None,
            under: None,
            probes: Vec::new(),
        }
    }

    fn record(&mut self, lambda: f64, bytes: Vec<u8>) {
        let size = bytes.len();
        self.probes.push((lambda, size));
        if size <= self.budget {
            if self.under.as_ref().is_none_or(|(l, _)| lambda < *l) {
                self.under = Some((lambda, bytes));
            }
        } else if self.over.is_none_or(|(l, _)| lambda > l) {
            self.over = Some((lambda, size));
        }
    }

    /// Whether the λ that fits and the λ that bursts are so close that the size jumps
    /// between them (few cells, as in a tiny or one-pixel-high image): more probes would
    /// only land on one side or the other.
    fn bracket_is_narrow(&self) -> bool {
        match (self.over, &self.under) {
            (Some((lo, _)), Some((hi, _))) => lo > 0.0 && hi / lo < NARROW_BRACKET,
            _ => false,
        }
    }

    /// The next λ to try after the last recorded probe.
    fn next_lambda(&self) -> f64 {
        let budget = self.budget as f64;
        let n = self.probes.len();
        let (lambda, size) = self.probes[n - 1];
        let fits = |s: usize| s as f64 <= budget;
        match (self.over, &self.under) {
            (Some((lo, lo_size)), Some((hi, hi_bytes))) => {
                // λ = 0 (the best file) being too big says only that λ is positive.
                let lo = if lo > 0.0 { lo } else { hi / 64.0 };
                let (a, b) = ((lo_size as f64).ln(), (hi_bytes.len() as f64).ln());
                // Interpolation can creep from one side on a convex curve; after two
                // probes on the same side, bisect.
                let stuck = n >= 2 && fits(self.probes[n - 2].1) == fits(size);
                let t = if stuck {
                    0.5
                } else {
                    ((a - budget.ln()) / (a - b)).clamp(0.25, 0.75)
                };
                (lo.ln() + t * (hi.ln() - lo.ln())).exp()
            }
            // One side only: extrapolate along the slope of the last two probes, or the
            // typical one (size ∝ λ^-0.6) after the first, by at least a set step.
            _ => {
                let measured = (n >= 2)
                    .then(|| self.probes[n - 2])
                    .filter(|&(l, s)| l > 0.0 && l != lambda && s != size)
                    .map(|(l, s)| ((s as f64).ln() - (size as f64).ln()) / (lambda / l).ln());
                let (slope, least) = match measured {
                    Some(slope) => (slope.clamp(0.15, 2.0), 1.25),
                    None => (0.6, 2.0),
                };
                let step = (size as f64 / budget).powf(1.0 / slope);
                let next = lambda
                    * if fits(size) {
                        step.clamp(1.0 / 16.0, 1.0 / least)
                    } else {
                        step.clamp(least, 16.0)
                    };
                // Far below any useful trade-off: the budget is likely above the best
                // file, so try the best itself.
                if fits(size) && next < MIN_USEFUL_LAMBDA {
                    0.0
                } else {
                    next
                }
            }
        }
    }
}

fn close_to(size: usize, budget: usize, tolerance: f64) -> bool {
    size <= budget && size as f64 >= (1.0 - tolerance) * budget as f64
}

/// Brings a probe of `size` bytes under the budget, and within [`TAIL_TOLERANCE`] of it, by
/// choosing its last layer again at a λ at most [`TAIL_LAMBDA_RANGE`] times its own
/// (further apart, the layers' trade-offs would disagree too much to be worth it).
fn fit_last_layer(probe: &impl RateProbe, size: usize, budget: usize) -> Result<Option<Vec<u8>>> {
    let lambda = probe.lambda();
    if lambda == 0.0 {
        return Ok(None);
    }
    let far = if size > budget {
        lambda * TAIL_LAMBDA_RANGE
    } else {
        lambda / TAIL_LAMBDA_RANGE
    };
    let Some(far_file) = probe.file_with_last_at(far).transpose()? else {
        return Ok(None);
    };
    // Bracket: `fits` gives a file within the budget, `bursts` one over it.
    let ((mut fits, mut best), mut bursts) = match (size > budget, far_file.len() <= budget) {
        (true, true) => ((far, far_file), lambda),
        (false, false) => ((lambda, Vec::new()), far),
        // The far end does not cross the budget: out of this probe's reach.
        (true, false) => return Ok(None),
        (false, true) => {
            return Ok(close_to(far_file.len(), budget, RATE_TOLERANCE).then_some(far_file))
        }
    };
    for _ in 0..TAIL_STEPS {
        if close_to(best.len(), budget, TAIL_TOLERANCE) {
            break;
        }
        let mid = ((fits.ln() + bursts.ln()) / 2.0).exp();
        let Some(file) = probe.file_with_last_at(mid).transpose()? else {
            return Ok(None);
        };
        if file.len() <= budget {
            (fits, best) = (mid, file);
        } else {
            bursts = mid;
        }
    }
    Ok(close_to(best.len(), budget, RATE_TOLERANCE).then_some(best))
}

/// One walk of the encoder at one λ: every layer's symbols, and what it takes to choose
/// the last layer again at another λ.
struct Probe {
    header: Header,
    /// `[tile][layer]` symbols.
    per_tile: Vec<Vec<Vec<u32>>>,
    /// The tiles of each encoder batch, in walk order.
    batches: Vec<Vec<usize>>,
    rd: rd::RdState,
    lambda: f64,
    trim: bool,
}

impl RateProbe for Probe {
    fn lambda(&self) -> f64 {
        self.lambda
    }

    /// The file as walked.
    fn file(&self) -> Result<Vec<u8>> {
        self.write(&self.per_tile)
    }

    /// The file with the last layer chosen again at `lambda` (`None`: not possible here).
    fn file_with_last_at(&self, lambda: f64) -> Option<Result<Vec<u8>>> {
        let rechosen = self.rd.rechoose_last(lambda)?;
        let mut per_tile = self.per_tile.clone();
        let last = self.header.layers.len() - 1;
        for (batch, symbols) in self.batches.iter().zip(&rechosen) {
            let cells = symbols.len() / batch.len();
            for (b, &t) in batch.iter().enumerate() {
                per_tile[t][last] = symbols[b * cells..(b + 1) * cells].to_vec();
            }
        }
        Some(self.write(&per_tile))
    }
}

impl Probe {
    fn write(&self, per_tile: &[Vec<Vec<u32>>]) -> Result<Vec<u8>> {
        let mut header = self.header.clone();
        let mut layers = (0..header.layers.len())
            .map(|l| per_tile.iter().flat_map(|t| t[l].iter().copied()).collect())
            .collect::<Vec<Vec<u32>>>();
        if self.trim {
            while layers.len() > 1
                && all_kept(&layers[layers.len() - 1], &header.layers[layers.len() - 1])
            {
                layers.pop();
            }
            header.layers.truncate(layers.len());
        }
        bitstream::write_file(&header, &layers)
    }
}

/// Walks the first `n` layers at trade-off `lambda`; `trim` drops trailing layers in which
/// every cell kept (they change nothing).
fn walk_at(
    model: &Model,
    source: &SourceImage,
    tile: u32,
    n: usize,
    lambda: f64,
    trim: bool,
) -> Result<Probe> {
    walk_with(model, source, tile, n, lambda, trim, None)
}

/// [`walk_at`], pasting the chosen image of every tile into `reconstruction` if given:
/// exactly what decoding the walk's file gives.
fn walk_with(
    model: &Model,
    source: &SourceImage,
    tile: u32,
    n: usize,
    lambda: f64,
    trim: bool,
    mut reconstruction: Option<&mut RgbImage>,
) -> Result<Probe> {
    let (width, height) = source.rgb.dimensions();
    let header = header_for(model, width, height, source.grey, tile, n);
    let tiles = header.tiles();
    let mut per_tile: Vec<Vec<Vec<u32>>> = vec![Vec::new(); tiles.len()];
    let mut batches = Vec::new();
    let network = &model.network;
    let mut rd = rd::RdState::new(&header.layers, lambda);
    for group in tiles::group_by_size(&tiles) {
        let (h, w) = (
            tiles[group[0]].padded_height as usize,
            tiles[group[0]].padded_width as usize,
        );
        for chunk in group.chunks(encode_batch(network, h, w, n)) {
            let members: Vec<Tile> = chunk.iter().map(|&i| tiles[i]).collect();
            let batch = tiles::tile_batch(&source.rgb, &members, network.device())?;
            let targets = network.layer_targets(&batch, n)?;
            let mut chooser = rd.batch(&targets, w, h);
            let walk = network.walk(chunk.len(), h, w, n, Walk::Choose(&mut chooser))?;
            if let Some(image) = reconstruction.as_deref_mut() {
                let last = walk.images.last().expect("at least one layer");
                tiles::paste_batch(image, 0, &members, &full_resolution(last, h, w)?)?;
            }
            split_by_tile(&walk.indices, chunk, &mut per_tile);
            batches.push(chunk.to_vec());
        }
    }
    Ok(Probe {
        header,
        per_tile,
        batches,
        rd,
        lambda,
        trim,
    })
}

/// Codes the first `n` layers at trade-off `lambda`.
fn encode_at(
    model: &Model,
    source: &SourceImage,
    tile: u32,
    n: usize,
    lambda: f64,
    trim: bool,
) -> Result<Vec<u8>> {
    walk_at(model, source, tile, n, lambda, trim)?.file()
}

/// Whether every cell of a layer kept (symbol `K`), so that the layer changes nothing.
fn all_kept(symbols: &[u32], spec: &crate::bitstream::LayerSpec) -> bool {
    symbols.iter().all(|&s| s == spec.k)
}

/// Moves a batch's `[layer][B·cells]` indices to `per_tile[tile][layer]`.
fn split_by_tile(indices: &[Vec<u32>], members: &[usize], per_tile: &mut [Vec<Vec<u32>>]) {
    for layer in indices {
        let cells = layer.len() / members.len();
        for (b, &t) in members.iter().enumerate() {
            per_tile[t].push(layer[b * cells..(b + 1) * cells].to_vec());
        }
    }
}

/// A decoded image and what was missing, if anything.
pub struct Decoded {
    pub image: DynamicImage,
    /// The file ended early (codec-spec.md §9).
    pub truncation: Option<Truncation>,
    pub layers_decoded: usize,
}

/// Checks that `file` was made with `model` (codec-spec.md §3, §4).
pub fn check_model(model: &Model, header: &Header) -> Result<()> {
    if header.model_id != model.id {
        return Err(Error::ModelMismatch {
            file: header.model_id,
            model: model.id,
        });
    }
    let schedule = model.network.config().schedule();
    for (l, spec) in header.layers.iter().enumerate() {
        if schedule.get(l) != Some(spec) {
            return Err(Error::ScheduleMismatch {
                model: model.id,
                layer: l,
            });
        }
    }
    Ok(())
}

/// Decodes a `.ddn` file, using at most `max_layers` layers.
pub fn decode(model: &Model, bytes: &[u8], max_layers: Option<usize>) -> Result<Decoded> {
    decode_file(model, &bitstream::read_file(bytes)?, max_layers)
}

/// Decodes a parsed `.ddn` file, using at most `max_layers` layers.
pub fn decode_file(model: &Model, file: &DdnFile, max_layers: Option<usize>) -> Result<Decoded> {
    let header = &file.header;
    let (width, height) = (header.width, header.height);
    let mut image = if header.grey {
        DynamicImage::ImageLuma8(image::GrayImage::new(width, height))
    } else {
        DynamicImage::ImageRgb8(RgbImage::new(width, height))
    };
    let decoded = decode_bands(model, file, max_layers, |band| {
        match &mut image {
            DynamicImage::ImageLuma8(grey) => {
                image::imageops::replace(grey, &band.luma(), 0, band.y as i64)
            }
            DynamicImage::ImageRgb8(rgb) => {
                image::imageops::replace(rgb, &band.rgb, 0, band.y as i64)
            }
            _ => unreachable!("built above as grey or RGB"),
        }
        Ok(())
    })?;
    Ok(Decoded { image, ..decoded })
}

/// Rows `y..y + rgb.height()` of a decoded image, the full width.
pub struct Band {
    pub y: u32,
    pub rgb: RgbImage,
}

impl Band {
    /// The band as grey (what a file with the grey flag decodes to, codec-spec.md §6).
    pub fn luma(&self) -> image::GrayImage {
        DynamicImage::ImageRgb8(self.rgb.clone()).to_luma8()
    }
}

/// Decodes `file` band by band, top to bottom, handing each band of tile rows to `sink`
/// as soon as it is done, so that memory holds one band and not the image. The returned
/// [`Decoded`] carries an empty image.
pub fn decode_bands(
    model: &Model,
    file: &DdnFile,
    max_layers: Option<usize>,
    mut sink: impl FnMut(Band) -> Result<()>,
) -> Result<Decoded> {
    check_model(model, &file.header)?;
    let header = &file.header;
    let coded = header.layers.len();
    let n = match max_layers {
        Some(0) => {
            return Err(Error::InvalidArgument(
                "at least one layer must be decoded".into(),
            ))
        }
        Some(m) if m > coded => {
            return Err(Error::InvalidArgument(format!(
                "{m} layers asked for, but the file codes {coded}"
            )))
        }
        Some(m) => m.min(file.layers.len()),
        None => file.layers.len(),
    };
    let tiles = header.tiles();
    let offsets = tile_offsets(header, &tiles, n);
    for band in tiles::bands(&tiles, header.width, DECODE_BATCH) {
        let top = tiles[band.start].y;
        let bottom = tiles[band.end - 1].y + tiles[band.end - 1].height;
        let mut rgb = RgbImage::new(header.width, bottom - top);
        let members: Vec<usize> = band.collect();
        for group in tiles::group_by_size_of(&tiles, &members) {
            for chunk in group.chunks(DECODE_BATCH) {
                decode_chunk(
                    &model.network,
                    file,
                    &tiles,
                    &offsets,
                    chunk,
                    n,
                    &mut rgb,
                    top,
                )?;
            }
        }
        sink(Band { y: top, rgb })?;
    }
    Ok(Decoded {
        image: DynamicImage::new_rgb8(0, 0),
        truncation: file.truncation,
        layers_decoded: n,
    })
}

/// Replays the tiles `chunk` as one batch and pastes them into `band`, whose first row
/// is image row `top`.
#[allow(clippy::too_many_arguments)]
fn decode_chunk(
    network: &Network,
    file: &DdnFile,
    tiles: &[Tile],
    offsets: &[Vec<usize>],
    chunk: &[usize],
    n: usize,
    band: &mut RgbImage,
    top: u32,
) -> Result<()> {
    let (h, w) = (
        tiles[chunk[0]].padded_height as usize,
        tiles[chunk[0]].padded_width as usize,
    );
    let indices: Vec<Vec<u32>> = (0..n)
        .map(|l| {
            chunk
                .iter()
                .flat_map(|&t| {
                    file.layers[l][offsets[l][t]..offsets[l][t + 1]]
                        .iter()
                        .copied()
                })
                .collect()
        })
        .collect();
    let walk = network.walk(chunk.len(), h, w, n, Walk::Replay(&indices))?;
    let last = walk.images.last().expect("at least one layer");
    let members: Vec<Tile> = chunk.iter().map(|&i| tiles[i]).collect();
    tiles::paste_batch(band, top, &members, &full_resolution(last, h, w)?)
}

/// A walk's last image at the tiles' full `h × w` (a walk cut before the finest level
/// ends at a coarser grid, which decoding upsamples bilinearly).
fn full_resolution(last: &Tensor, h: usize, w: usize) -> Result<Tensor> {
    Ok(if last.dims()[2..] == [h, w] {
        last.clone()
    } else {
        last.upsample_bilinear2d(h, w, false)?
    })
}

/// `offsets[l][t]`: where tile `t`'s indices start in layer `l`'s sequence.
fn tile_offsets(header: &Header, tiles: &[Tile], n: usize) -> Vec<Vec<usize>> {
    header.layers[..n]
        .iter()
        .map(|spec| {
            let mut acc = 0usize;
            let mut v = vec![0];
            for t in tiles {
                acc += t.cell_count(spec) as usize;
                v.push(acc);
            }
            v
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A walk whose file size follows `size(λ)`; with `last_layer_bytes`, choosing the
    /// last layer again at `λ'` moves the size by that many bytes per halving of `λ'/λ`.
    struct FakeProbe {
        lambda: f64,
        size: usize,
        last_layer_bytes: Option<f64>,
    }

    impl RateProbe for FakeProbe {
        fn lambda(&self) -> f64 {
            self.lambda
        }
        fn file(&self) -> Result<Vec<u8>> {
            Ok(vec![0; self.size])
        }
        fn file_with_last_at(&self, lambda: f64) -> Option<Result<Vec<u8>>> {
            let per_halving = self.last_layer_bytes?;
            let shift = -per_halving * (lambda / self.lambda).log2();
            Some(Ok(vec![0; (self.size as f64 + shift).max(0.0) as usize]))
        }
    }

    fn sized(size: impl Fn(f64) -> usize) -> impl FnMut(f64) -> Result<FakeProbe> {
        move |lambda| {
            Ok(FakeProbe {
                lambda,
                size: size(lambda),
                last_layer_bytes: None,
            })
        }
    }

    /// The file `fit_budget` settles on, and how many walks it took, for sizes that fall
    /// as `start_size · (λ / λ₀)^-exponent` from the first probe's λ₀.
    fn fit_power_law(
        budget: usize,
        start_size: f64,
        exponent: f64,
        last_layer_bytes: Option<f64>,
    ) -> (usize, usize) {
        let first = LAMBDA_AT_1BPP / (0.25 * 0.25);
        let mut walks = 0;
        let got = fit_budget(budget, 0.25, Vec::new(), |lambda| {
            walks += 1;
            Ok(FakeProbe {
                lambda,
                size: (start_size * (lambda / first).powf(-exponent)) as usize,
                last_layer_bytes,
            })
        })
        .unwrap()
        .len();
        (got, walks)
    }

    #[test]
    fn the_last_layer_finishes_a_near_probe_without_another_walk() {
        // The first probe gives 10,500 bytes for a budget of 10,000; the last layer moves
        // 400 bytes per halving of its λ.
        let (got, walks) = fit_power_law(10_000, 10_500.0, 0.5, Some(400.0));
        assert_eq!(walks, 1);
        assert!((9_900..=10_000).contains(&got), "{got}");
    }

    #[test]
    fn a_last_layer_too_weak_to_reach_the_budget_leaves_it_to_the_walks() {
        let (got, walks) = fit_power_law(10_000, 20_000.0, 0.5, Some(100.0));
        assert!(walks > 1);
        assert!((9_700..=10_000).contains(&got), "{got}");
    }

    #[test]
    fn lands_just_under_the_budget() {
        let curve = |l: f64| (20_000.0 * (1.0 + l).powf(-0.4)) as usize;
        for budget in [900, 3_000, 7_000, 12_000] {
            let got = fit_budget(budget, 0.25, Vec::new(), sized(curve))
                .unwrap()
                .len();
            assert!(
                got <= budget && got as f64 >= 0.97 * budget as f64,
                "{got} for {budget}"
            );
        }
    }

    #[test]
    fn extrapolates_along_the_measured_slope() {
        // Sizes follow λ^-0.3, flatter than the typical λ^-0.6 (12,000 bytes at λ = 1000),
        // and every probe lands on one side until the slope is measured.
        let start = 12_000.0 * (LAMBDA_AT_1BPP / (0.25 * 0.25) / 1000.0).powf(-0.3);
        for budget in [5_000, 9_000, 30_000] {
            let (got, walks) = fit_power_law(budget, start, 0.3, None);
            assert!(close_to(got, budget, RATE_TOLERANCE), "{got} for {budget}");
            assert!(walks <= 4, "{walks} walks for {budget}");
        }
    }

    #[test]
    fn a_size_that_jumps_over_the_budget_stops_the_search_early() {
        // As for a one-pixel-high strip: the size drops from 647 to 551 bytes at one λ,
        // so nothing lands within 3 % under the budget of 625.
        let curve = |l: f64| {
            if l < 94_500.0 {
                (647.0 * (l / 94_500.0).powf(-0.6)) as usize
            } else {
                (551.0 * (l / 94_500.0).powf(-0.6)) as usize
            }
        };
        let mut walks = 0;
        let got = fit_budget(625, 0.25, Vec::new(), |l| {
            walks += 1;
            sized(curve)(l)
        })
        .unwrap()
        .len();
        assert!((540..=625).contains(&got), "{got}");
        assert!(walks <= 8, "{walks} walks");
    }

    #[test]
    fn a_best_file_just_over_the_budget_still_bisects() {
        // λ = 0 gives 10,300 bytes; the budget is 10,000.
        let curve = |l: f64| (10_300.0 * (1.0 + l / 50.0).powf(-0.5)) as usize;
        let got = fit_budget(10_000, 0.5, Vec::new(), sized(curve))
            .unwrap()
            .len();
        assert!((9_700..=10_000).contains(&got), "{got}");
    }

    #[test]
    fn a_roomy_budget_gives_the_best_file() {
        let curve = |l: f64| (5_000.0 * (1.0 + l / 50.0).powf(-0.5)) as usize;
        assert_eq!(
            fit_budget(100_000, 0.5, Vec::new(), sized(curve))
                .unwrap()
                .len(),
            5_000
        );
    }

    fn tiny_model_and_source(width: u32, height: u32) -> (Model, SourceImage) {
        let network = Network::new(
            &crate::model::ModelConfig::tiny(),
            3,
            &candle_core::Device::Cpu,
        )
        .unwrap();
        let bytes = crate::model::to_safetensors(&network, &[], &[]).unwrap();
        let model = Model::from_bytes(&bytes, &candle_core::Device::Cpu).unwrap();
        let rgb = RgbImage::from_fn(width, height, |x, y| {
            image::Rgb([(x * 6) as u8, (y * 9) as u8, ((x * y) % 251) as u8])
        });
        let source = SourceImage {
            rgb,
            grey: false,
            had_alpha: false,
        };
        (model, source)
    }

    fn tiny_walk(lambda: f64) -> Probe {
        let (model, source) = tiny_model_and_source(40, 24);
        let n = model.network.config().layer_count();
        walk_at(&model, &source, 16, n, lambda, true).unwrap()
    }

    #[test]
    fn the_encoders_reconstruction_is_what_decoding_gives_bit_for_bit() {
        // Partial tiles at the right and bottom edges, several batches of tiles.
        let (model, source) = tiny_model_and_source(75, 41);
        let n = model.network.config().layer_count();
        for lambda in [0.0, 300.0] {
            let mut reconstruction = RgbImage::new(75, 41);
            let probe = walk_with(
                &model,
                &source,
                16,
                n,
                lambda,
                true,
                Some(&mut reconstruction),
            )
            .unwrap();
            let decoded = decode(&model, &probe.file().unwrap(), None).unwrap();
            assert_eq!(decoded.image.to_rgb8(), reconstruction, "λ = {lambda}");
        }
    }

    #[test]
    fn the_last_layer_chosen_again_at_the_same_lambda_is_the_same_file() {
        for lambda in [0.0, 50.0, 5_000.0] {
            let probe = tiny_walk(lambda);
            let again = probe.file_with_last_at(lambda).unwrap().unwrap();
            assert_eq!(again, probe.file().unwrap(), "λ = {lambda}");
        }
    }

    #[test]
    fn a_dearer_last_layer_gives_a_smaller_file_that_still_decodes() {
        let probe = tiny_walk(20.0);
        let full = probe.file().unwrap();
        let lean = probe.file_with_last_at(1e9).unwrap().unwrap();
        assert!(lean.len() < full.len(), "{} vs {}", lean.len(), full.len());
        let file = bitstream::read_file(&lean).unwrap();
        let last = probe.header.layers.len() - 1;
        // At an enormous λ every cell of the last layer keeps, so the layer is trimmed.
        assert!(file.header.layers.len() <= last);
    }
}
