//! The encoder's walk: every tile through the network, each cell's symbol chosen by
//! rate and distortion ([`super::rd`]), and the file those choices make.

use image::{GrayImage, RgbImage};

use super::rate_control::RateProbe;
use super::{header_for, rd, tiles};
use crate::bitstream::{self, Header};
use crate::error::Result;
use crate::io::SourceImage;
use crate::model::{LayerInput, Model, Network, Walk};

/// Largest `batch × K × 3 × h × w` candidate tensor an encoder batch may make (floats).
const ENCODE_BATCH_FLOATS: usize = 24 << 20;

/// At most this many floats of a walk's layer inputs are kept (128 MB), by the batches in
/// walk order while they fit, to make the image of the final file without walking again
/// ([`Probe::decoded_image`]): a full-resolution layer of up to two megapixels.
const KEPT_INPUT_FLOATS: usize = 1 << 25;

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

/// What every walk of one encode shares.
#[derive(Clone, Copy)]
pub(super) struct Job<'a> {
    pub model: &'a Model,
    pub source: &'a SourceImage,
    /// Tile side, a multiple of the model's granule.
    pub tile: u32,
    /// How much each pixel's error counts (0–255 for weights 1 to [`ROI_GAIN`]), the
    /// image's size; `None`: every pixel alike.
    pub roi: Option<&'a GrayImage>,
    pub tune: super::Tune,
}

/// Squared error in a region of interest (mask white) counts this many times as much as
/// outside it (mask black).
pub const ROI_GAIN: f32 = 8.0;

/// The smallest file for the job's image: one layer in which every cell keeps (the
/// network's starting image). No walk is needed to write it.
pub(super) fn smallest_file(job: Job) -> Result<Vec<u8>> {
    let (width, height) = job.source.rgb.dimensions();
    let header = header_for(job.model, width, height, job.source.grey, job.tile, 1);
    let spec = header.layers[0];
    let cells = header.index_counts()[0] as usize;
    bitstream::write_file(&header, &[vec![spec.k; cells]])
}

/// Which trailing layers a walk's file leaves out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Trim {
    /// None: the file codes every layer walked.
    Nothing,
    /// Those in which every cell keeps: they change nothing.
    AllKept,
    /// Also those whose coded cells lower the squared error by less than λ times what
    /// they cost, their keep flags included. Each cell's choice weighs only its own
    /// bits, so a layer that codes a few cells still pays a keep flag for every other
    /// cell; leaving the layer out lets a lower λ spend those bits where they buy more.
    /// The file then decodes to less than the walk's last image.
    RateDistortion,
}

/// One walk of the encoder at one λ: every layer's symbols, and what it takes to choose
/// the last layer again at another λ.
pub(super) struct Probe {
    header: Header,
    /// `[tile][layer]` symbols.
    per_tile: Vec<Vec<Vec<u32>>>,
    /// The tiles of each encoder batch, in walk order.
    batches: Vec<Vec<usize>>,
    /// Each batch's padded tile side and the layer input its walk kept, in walk order.
    inputs: Vec<BatchInputs>,
    rd: rd::RdState,
    lambda: f64,
    trim: Trim,
    /// The segment bytes of each layer of the walk's symbols written whole (less trailing
    /// layers that keep every cell).
    segments: Vec<u32>,
    /// How many leading layers the walk's file codes ([`Probe::layers_worth_coding`] at
    /// the walk's λ).
    coded: usize,
}

impl RateProbe for Probe {
    fn lambda(&self) -> f64 {
        self.lambda
    }

    /// The file as walked.
    fn file(&self) -> Result<Vec<u8>> {
        self.write(&self.per_tile, self.coded)
    }

    /// The file with the last layer that codes anything chosen again at `lambda` (the
    /// layers after it keep every cell, or are left out as in the walk's file);
    /// `None`: not possible here.
    fn file_with_last_at(&self, lambda: f64) -> Option<Result<Vec<u8>>> {
        let last = (0..self.coded).rev().find(|&l| {
            let spec = &self.header.layers[l];
            self.per_tile.iter().any(|t| !all_kept(&t[l], spec))
        })?;
        let rechosen = self.rd.rechoose(last, lambda)?;
        let mut per_tile = self.per_tile.clone();
        self.paste(&mut per_tile, last, &rechosen);
        Some(self.write(&per_tile, self.coded))
    }

    /// The size of the file with every layer chosen again at `lambda` from this walk's
    /// inputs ([`rd::RdState::rechoose_all`]): not a file any walk makes, but its size
    /// follows λ as a walk's does, and equals the walk's at the walk's own λ.
    fn estimated_size_at(&self, lambda: f64) -> Option<Result<usize>> {
        let rechosen = self.rd.rechoose_all(lambda);
        if self.share_of_bits_in(&rechosen) < LEAST_SHARE_TO_ESTIMATE {
            return None;
        }
        let mut per_tile = self.per_tile.clone();
        for (layer, symbols) in rechosen.iter().enumerate() {
            if let Some(symbols) = symbols {
                self.paste(&mut per_tile, layer, symbols);
            }
        }
        let size = self
            .write(&per_tile, self.header.layers.len())
            .and_then(|whole| {
                let (written, _) = Header::parse(&whole)?;
                let count = self.layers_worth_coding(&written.segments, &per_tile, lambda);
                self.write(&per_tile, count)
            })
            .map(|file| file.len());
        Some(size)
    }
}

/// One encoder batch's padded tile size and the input its walk kept.
struct BatchInputs {
    height: usize,
    width: usize,
    input: Option<LayerInput>,
}

/// An estimate needs the layers it can choose again (those whose inputs were stored) to
/// hold at least this share of the walk's payload: on large images only the last layers'
/// inputs fit in memory, and an estimate that moves only those predicts λ far off (a
/// 3072×2048 mosaic walked five times, where the search by sizes alone walks three).
const LEAST_SHARE_TO_ESTIMATE: f64 = 0.5;

impl Probe {
    /// A walk's probe: its symbols written once to learn each layer's segment bytes, and
    /// how many of its layers its file codes.
    fn new(
        header: Header,
        per_tile: Vec<Vec<Vec<u32>>>,
        batches: Vec<Vec<usize>>,
        inputs: Vec<BatchInputs>,
        rd: rd::RdState,
        lambda: f64,
        trim: Trim,
    ) -> Result<Probe> {
        let n = header.layers.len();
        let mut probe = Probe {
            header,
            per_tile,
            batches,
            inputs,
            rd,
            lambda,
            trim,
            segments: Vec::new(),
            coded: n,
        };
        let (written, _) = Header::parse(&probe.write(&probe.per_tile, n)?)?;
        probe.coded = probe.layers_worth_coding(&written.segments, &probe.per_tile, lambda);
        probe.segments = written.segments;
        Ok(probe)
    }

    /// The image `file` decodes to before its output filter, bit for bit what decoding
    /// gives: each batch's tiles made from the walk's kept input of the file's last layer,
    /// or where the batch kept none (or another layer's), replayed from the file; `None`
    /// where `file` does not share the walk's earlier layers (then decode it).
    pub(super) fn decoded_image(&self, network: &Network, file: &[u8]) -> Result<Option<RgbImage>> {
        let parsed = bitstream::read_file(file)?;
        let last = parsed.layers.len() - 1;
        let walked = |l: usize| self.per_tile.iter().flat_map(move |t| t[l].iter().copied());
        let same_walk = self.header.layers.get(..=last) == Some(&parsed.header.layers[..])
            && (0..last).all(|l| parsed.layers[l].iter().copied().eq(walked(l)));
        if !same_walk {
            return Ok(None);
        }
        let mut from_file = self.per_tile.clone();
        let mut symbols = parsed.layers[last].as_slice();
        for tile in &mut from_file {
            let (own, rest) = symbols.split_at(tile[last].len());
            tile[last] = own.to_vec();
            symbols = rest;
        }
        let tiles = self.header.tiles();
        let (width, height) = (self.header.width, self.header.height);
        let mut image = RgbImage::new(width, height);
        let symbols: Vec<Vec<Vec<u32>>> =
            (0..=last).map(|l| self.per_batch(&from_file, l)).collect();
        for (i, (batch, inputs)) in self.batches.iter().zip(&self.inputs).enumerate() {
            let chosen = match inputs.input.as_ref().filter(|input| input.layer == last) {
                Some(input) => network.chosen_image(input, &symbols[last][i])?,
                None => {
                    let replay: Vec<Vec<u32>> =
                        symbols.iter().map(|layer| layer[i].clone()).collect();
                    let (h, w) = (inputs.height, inputs.width);
                    let walk = network.walk(batch.len(), h, w, last + 1, Walk::Replay(&replay))?;
                    walk.images.last().expect("at least one layer").clone()
                }
            };
            let full = tiles::full_resolution(&chosen, inputs.height, inputs.width)?;
            let members: Vec<_> = batch.iter().map(|&t| tiles[t]).collect();
            tiles::paste_batch(&mut image, 0, &members, &full)?;
        }
        Ok(Some(image))
    }

    /// The share of the walk's payload bytes in the layers that `rechosen` has.
    fn share_of_bits_in(&self, rechosen: &[Option<Vec<Vec<u32>>>]) -> f64 {
        let total: u64 = self.segments.iter().map(|&s| s as u64).sum();
        let covered: u64 = (self.segments.iter().zip(rechosen))
            .filter(|(_, r)| r.is_some())
            .map(|(&s, _)| s as u64)
            .sum();
        covered as f64 / total.max(1) as f64
    }

    /// Puts one layer's symbols, one vector per batch in walk order, back in tile order.
    fn paste(&self, per_tile: &mut [Vec<Vec<u32>>], layer: usize, per_batch: &[Vec<u32>]) {
        for (batch, symbols) in self.batches.iter().zip(per_batch) {
            let cells = symbols.len() / batch.len();
            for (b, &t) in batch.iter().enumerate() {
                per_tile[t][layer] = symbols[b * cells..(b + 1) * cells].to_vec();
            }
        }
    }

    /// One layer's symbols, one vector per batch in walk order: the inverse of
    /// [`Probe::paste`].
    fn per_batch(&self, per_tile: &[Vec<Vec<u32>>], layer: usize) -> Vec<Vec<u32>> {
        self.batches
            .iter()
            .map(|batch| {
                batch
                    .iter()
                    .flat_map(|&t| per_tile[t][layer].iter().copied())
                    .collect()
            })
            .collect()
    }

    /// The file of the first `count` layers of `per_tile`'s symbols, less the trailing
    /// layers in which every cell keeps unless the walk codes every layer.
    fn write(&self, per_tile: &[Vec<Vec<u32>>], count: usize) -> Result<Vec<u8>> {
        let mut header = self.header.clone();
        let mut layers = (0..count)
            .map(|l| per_tile.iter().flat_map(|t| t[l].iter().copied()).collect())
            .collect::<Vec<Vec<u32>>>();
        if self.trim != Trim::Nothing {
            while layers.len() > 1
                && all_kept(&layers[layers.len() - 1], &header.layers[layers.len() - 1])
            {
                layers.pop();
            }
        }
        header.layers.truncate(layers.len());
        bitstream::write_file(&header, &layers)
    }

    /// How many leading layers of `per_tile`'s symbols make the file of least `D + λ·R`
    /// at trade-off `lambda` with [`Trim::RateDistortion`] (otherwise all), given the
    /// `segments` those symbols write: leaving out layer `l` saves its segment and header
    /// bytes and gives back the squared error its coded cells removed. A layer's segment
    /// does not depend on the layers after it (§7.4), so one written file gives every
    /// shorter file's size.
    fn layers_worth_coding(
        &self,
        segments: &[u32],
        per_tile: &[Vec<Vec<u32>>],
        lambda: f64,
    ) -> usize {
        let n = self.header.layers.len();
        if self.trim != Trim::RateDistortion || lambda == 0.0 {
            return n;
        }
        let header_bits = |count: usize| {
            let mut shorter = self.header.clone();
            shorter.layers.truncate(count);
            shorter.segments = segments[..count].to_vec();
            8.0 * shorter.encoded_len() as f64
        };
        // The cost of the first `count` layers less that of all the written ones.
        let (mut cost, mut best) = (0.0, (0.0, n));
        for count in (1..segments.len()).rev() {
            let Some(gain) = self.rd.gain(count, &self.per_batch(per_tile, count)) else {
                break;
            };
            let bits = 8.0 * segments[count] as f64;
            let layer_lambda = self.rd.layer_lambda(count, lambda as f32) as f64;
            cost +=
                gain - layer_lambda * bits - lambda * (header_bits(count + 1) - header_bits(count));
            if cost < best.0 {
                best = (cost, count);
            }
        }
        best.1
    }
}

/// Walks the first `n` layers at trade-off `lambda`; its file leaves out the trailing
/// layers `trim` says.
pub(super) fn walk_at(job: Job, n: usize, lambda: f64, trim: Trim) -> Result<Probe> {
    walk_with(job, n, lambda, trim, None)
}

/// [`walk_at`], pasting the chosen image of every tile into `reconstruction` if given:
/// exactly what decoding the walk's file gives, so not with [`Trim::RateDistortion`].
pub(super) fn walk_with(
    job: Job,
    n: usize,
    lambda: f64,
    trim: Trim,
    reconstruction: Option<&mut RgbImage>,
) -> Result<Probe> {
    let keep = match trim {
        Trim::RateDistortion => KEPT_INPUT_FLOATS,
        _ => 0,
    };
    walk_keeping(job, n, lambda, trim, reconstruction, keep)
}

/// [`walk_with`], keeping at most `keep` floats of layer inputs.
fn walk_keeping(
    job: Job,
    n: usize,
    lambda: f64,
    trim: Trim,
    mut reconstruction: Option<&mut RgbImage>,
    keep: usize,
) -> Result<Probe> {
    debug_assert!(reconstruction.is_none() || trim != Trim::RateDistortion);
    let (model, source) = (job.model, job.source);
    let (width, height) = source.rgb.dimensions();
    let header = header_for(model, width, height, source.grey, job.tile, n);
    let tiles = header.tiles();
    let mut per_tile: Vec<Vec<Vec<u32>>> = vec![Vec::new(); tiles.len()];
    let mut batches = Vec::new();
    let mut inputs = Vec::new();
    let network = &model.network;
    let mut rd = rd::RdState::new(&header.layers, lambda, job.tune);
    if trim == Trim::RateDistortion {
        rd = rd.may_stop_early();
    }
    let all: Vec<usize> = (0..tiles.len()).collect();
    let batch_size = |h, w| encode_batch(network, h, w, n);
    let mut kept = 0;
    tiles::for_each_batch(&tiles, &all, batch_size, |batch| {
        let (h, w) = (batch.height, batch.width);
        let pixels = tiles::tile_batch(&source.rgb, &batch.tiles, network.device())?;
        let targets = network.layer_targets(&pixels, n)?;
        let weights = job
            .roi
            .map(|roi| tiles::weight_batch(roi, &batch.tiles, ROI_GAIN));
        let mut chooser = rd
            .batch(&targets, weights.as_deref(), w, h)
            .keeping_inputs(keep - kept);
        let mut walk = network.walk(batch.tiles.len(), h, w, n, Walk::Choose(&mut chooser))?;
        let walked = walk.indices.len();
        if walked < n {
            let rest = chooser.keep_the_rest(walked, batch.tiles.len());
            walk.indices.extend(rest);
        }
        if let Some(image) = reconstruction.as_deref_mut() {
            let last = walk.images.last().expect("at least one layer");
            tiles::paste_batch(image, 0, &batch.tiles, &tiles::full_resolution(last, h, w)?)?;
        }
        split_by_tile(&walk.indices, batch.indices, &mut per_tile);
        kept += walk.input.as_ref().map_or(0, |input| input.floats());
        batches.push(batch.indices.to_vec());
        inputs.push(BatchInputs {
            height: h,
            width: w,
            input: walk.input,
        });
        Ok(())
    })?;
    Probe::new(header, per_tile, batches, inputs, rd, lambda, trim)
}

/// Codes the first `n` layers at trade-off `lambda`.
pub(super) fn encode_at(job: Job, n: usize, lambda: f64, trim: Trim) -> Result<Vec<u8>> {
    walk_at(job, n, lambda, trim)?.file()
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::decode;

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

    fn job<'a>(model: &'a Model, source: &'a SourceImage) -> Job<'a> {
        Job {
            model,
            source,
            tile: 16,
            roi: None,
            tune: super::super::Tune::Psnr,
        }
    }

    fn tiny_walk(lambda: f64) -> Probe {
        let (model, source) = tiny_model_and_source(40, 24);
        let n = model.network.config().layer_count();
        walk_at(job(&model, &source), n, lambda, Trim::RateDistortion).unwrap()
    }

    #[test]
    fn the_encoders_reconstruction_is_what_decoding_gives_bit_for_bit() {
        // Partial tiles at the right and bottom edges, several batches of tiles.
        let (model, source) = tiny_model_and_source(75, 41);
        let n = model.network.config().layer_count();
        for lambda in [0.0, 300.0] {
            let mut reconstruction = RgbImage::new(75, 41);
            let probe = walk_with(
                job(&model, &source),
                n,
                lambda,
                Trim::AllKept,
                Some(&mut reconstruction),
            )
            .unwrap();
            let decoded = decode(&model, &probe.file().unwrap(), None).unwrap();
            assert_eq!(decoded.image.to_rgb8(), reconstruction, "λ = {lambda}");
        }
    }

    /// Squared error on the 8-bit scale plus `lambda` times the file's bits.
    fn cost(model: &Model, source: &SourceImage, file: &[u8], lambda: f64) -> f64 {
        let decoded = decode(model, file, None).unwrap().image.to_rgb8();
        let error: f64 = decoded
            .as_raw()
            .iter()
            .zip(source.rgb.as_raw())
            .map(|(&a, &b)| (a as f64 - b as f64).powi(2))
            .sum();
        error + lambda * 8.0 * file.len() as f64
    }

    #[test]
    fn leaving_out_layers_not_worth_their_bits_never_costs_more() {
        // The walk may also stop early: the layers it walked are the whole walk's.
        let (model, source) = tiny_model_and_source(75, 41);
        let n = model.network.config().layer_count();
        let mut shorter = 0;
        for lambda in [
            1.0, 10.0, 30.0, 100.0, 300.0, 1_000.0, 1_500.0, 2_000.0, 3_000.0, 5_000.0, 1e4, 3e4,
            1e5, 1e7,
        ] {
            let probe = walk_at(job(&model, &source), n, lambda, Trim::RateDistortion).unwrap();
            let cut = probe.file().unwrap();
            let whole = walk_at(job(&model, &source), n, lambda, Trim::AllKept)
                .unwrap()
                .file()
                .unwrap();
            let (cut_file, whole_file) = (
                bitstream::read_file(&cut).unwrap(),
                bitstream::read_file(&whole).unwrap(),
            );
            let kept = cut_file.layers.len();
            // The same symbols, only fewer layers.
            assert_eq!(
                cut_file.layers[..],
                whole_file.layers[..kept],
                "λ = {lambda}"
            );
            if kept < whole_file.layers.len() {
                shorter += 1;
                assert!(cut.len() < whole.len(), "λ = {lambda}");
            }
            // Within the rounding of decoded pixels to 8 bits.
            let (with_cut, without) = (
                cost(&model, &source, &cut, lambda),
                cost(&model, &source, &whole, lambda),
            );
            assert!(
                with_cut <= without * 1.002,
                "λ = {lambda}: {with_cut} against {without}"
            );
        }
        assert!(shorter > 0, "no λ left a layer out");
    }

    #[test]
    fn the_image_made_from_the_kept_inputs_is_what_decoding_gives_bit_for_bit() {
        // Partial tiles at the right and bottom edges, several batches of tiles.
        let (model, source) = tiny_model_and_source(75, 41);
        let n = model.network.config().layer_count();
        // Room for every batch's input, for some batches' only, and for none.
        let rooms = [KEPT_INPUT_FLOATS, 3_000, 0];
        let mut kept = [0; 3];
        for lambda in [0.0, 50.0, 300.0, 3_000.0] {
            for (room, kept) in rooms.into_iter().zip(&mut kept) {
                let job = job(&model, &source);
                let probe = walk_keeping(job, n, lambda, Trim::RateDistortion, None, room).unwrap();
                *kept += probe.inputs.iter().filter(|i| i.input.is_some()).count();
                let rechosen = |l: f64| probe.file_with_last_at(l).unwrap().unwrap();
                let files = [
                    probe.file().unwrap(),
                    rechosen(lambda / 3.0 + 1.0),
                    rechosen(lambda * 3.0 + 1.0),
                ];
                for file in files {
                    let made = probe.decoded_image(&model.network, &file).unwrap();
                    let decoded = decode(&model, &file, None).unwrap().image.to_rgb8();
                    assert_eq!(made, Some(decoded), "λ = {lambda}, room {room}");
                }
            }
        }
        let batches = walk_at(job(&model, &source), n, 0.0, Trim::RateDistortion)
            .unwrap()
            .batches
            .len();
        assert!(batches > 1);
        assert!(kept[0] > kept[1] && kept[1] > 0 && kept[2] == 0, "{kept:?}");
    }

    #[test]
    fn a_file_of_another_walk_is_decoded_instead() {
        let (model, source) = tiny_model_and_source(40, 24);
        let n = model.network.config().layer_count();
        let walk = |lambda| walk_at(job(&model, &source), n, lambda, Trim::RateDistortion);
        let (rich, lean) = (walk(0.0).unwrap(), walk(1e9).unwrap());
        let file = rich.file().unwrap();
        assert_eq!(lean.decoded_image(&model.network, &file).unwrap(), None);
        // Nor a file of more layers than the walk walked.
        assert!(bitstream::read_file(&file).unwrap().layers.len() > 2);
        let short = walk_at(job(&model, &source), 2, 0.0, Trim::RateDistortion).unwrap();
        assert_eq!(short.decoded_image(&model.network, &file).unwrap(), None);
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
    fn the_estimated_size_is_the_walks_at_its_own_lambda_and_falls_as_lambda_rises() {
        for lambda in [50.0, 500.0, 5_000.0] {
            let probe = tiny_walk(lambda);
            let own = probe.file().unwrap().len();
            let at = |l: f64| probe.estimated_size_at(l).unwrap().unwrap();
            assert_eq!(at(lambda), own, "λ = {lambda}");
            let (richer, leaner) = (at(lambda / 8.0), at(lambda * 8.0));
            assert!(richer >= own && own >= leaner, "λ = {lambda}");
            assert!(richer > leaner, "λ = {lambda}");
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

    #[test]
    fn a_walk_whose_last_layers_keep_chooses_its_last_coding_layer_again() {
        let total = crate::model::ModelConfig::tiny().layer_count();
        // A λ at which the network's last layer keeps everywhere but an earlier one codes.
        let probe = [300.0, 1_000.0, 3_000.0, 10_000.0, 30_000.0]
            .into_iter()
            .map(tiny_walk)
            .find(|p| {
                let layers = bitstream::read_file(&p.file().unwrap())
                    .unwrap()
                    .header
                    .layers
                    .len();
                (2..total).contains(&layers)
            })
            .expect("some λ trims the last layer");
        let walked = probe.file().unwrap();
        let richer = probe
            .file_with_last_at(probe.lambda / 4.0)
            .unwrap()
            .unwrap();
        assert!(
            richer.len() > walked.len(),
            "{} vs {}",
            richer.len(),
            walked.len()
        );
        let (model, _) = tiny_model_and_source(40, 24);
        assert!(decode(&model, &richer, None).is_ok());
    }
}
