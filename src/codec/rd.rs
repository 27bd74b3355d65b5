//! Rate-distortion choices: each cell keeps the symbol with the least `D + λ·R`, where `D`
//! is its squared error (weighted by the image pixels a grid pixel stands for) and `R`
//! the bits the adaptive coder would spend on it now (codec-spec.md §7).

use candle_core::Tensor;

use super::Tune;
use crate::bitstream::range_coder::Adaptation;
use crate::bitstream::symbols::{scan_tile, CellGrid, LayerModel, PrevLayer};
use crate::bitstream::LayerSpec;
use crate::error::Result;
use crate::model::ddl::Candidates;
use crate::model::{Chooser, KeepInput, LayerInput};

/// Squared error is measured on the 8-bit scale; the network works on `v/255 − 0.5`.
const EIGHT_BIT: f32 = 255.0 * 255.0;

/// A walk that may stop early ([`RdState::may_stop_early`]) stops after this many layers
/// in a row whose coded cells removed less squared error than λ times the layer's
/// estimated bits: on Kodak such layers come in a run at the end, and the encoder leaves
/// them out of the file anyway (`encoder::Trim::RateDistortion`).
const LOSING_LAYERS_TO_STOP: usize = 3;
/// … or this many when the last of them is at full resolution (the one before may be the
/// last at half resolution), where a layer costs a walk four times what one at half
/// resolution does: on 8 Kodak images at 0.05–1.0 bpp, 47 of 48 files came out byte for
/// byte the same, and kodim01 at 0.25 bpp encoded in 3.19 s instead of 3.53 s
/// (docs/experiments.md, "Walks stop sooner at full resolution"). Stopping after two at
/// every scale lost 0.04 dB at 0.05 bpp, where walks end at coarser levels.
const LOSING_FULL_RESOLUTION_LAYERS_TO_STOP: usize = 2;

/// How many losing layers in a row stop a walk that may stop early, the last at `scale_log2`.
fn losing_layers_to_stop(scale_log2: u8) -> usize {
    if scale_log2 == 0 {
        LOSING_FULL_RESOLUTION_LAYERS_TO_STOP
    } else {
        LOSING_LAYERS_TO_STOP
    }
}

/// At most this many stored distances (floats) for choosing a layer again; past it the
/// earliest layers are dropped first, and the largest images skip that fine rate step.
const STORED_FLOATS_MAX: usize = 1 << 26;

/// What rate-distortion choices carry across the batches of one encode.
pub struct RdState {
    schedule: Vec<LayerSpec>,
    lambda: f32,
    tune: Tune,
    /// One adaptive model per layer, carried from batch to batch so that the estimates
    /// follow the coder's adaptation.
    models: Vec<LayerModel>,
    /// Every layer's choice inputs of every batch, in walk order, so that a layer can be
    /// chosen again at another λ without walking the network (`None`: dropped to stay
    /// within [`STORED_FLOATS_MAX`]).
    stored: Vec<Option<Vec<LayerChoice>>>,
    stored_floats: usize,
    may_stop_early: bool,
}

/// Everything one layer's choices in one batch depend on, besides λ and the coder state.
struct LayerChoice {
    spec: LayerSpec,
    grid: CellGrid,
    /// The previous layer's grid and symbols of this batch, `[B·cells]`.
    prev: Option<(CellGrid, u32, Vec<u32>)>,
    /// `[B, K, cells]` squared errors of the candidates and `[B, cells]` of keep; both
    /// empty for a layer the walk stopped before, where every cell keeps.
    dist: Vec<f32>,
    keep_dist: Vec<f32>,
    batch: usize,
}

impl LayerChoice {
    /// Whether the walk reached this layer (else every cell keeps).
    fn walked(&self) -> bool {
        !self.keep_dist.is_empty()
    }

    /// A grid pixel at scale s stands for 4^s image pixels.
    fn weight(&self) -> f32 {
        EIGHT_BIT * (1u32 << (2 * self.spec.scale_log2)) as f32
    }

    /// How much the cells that code a candidate among `symbols` (`[B·cells]`, as
    /// [`LayerChoice::choose`] gives them) lower the weighted squared error from keeping.
    fn gain(&self, symbols: &[u32]) -> f64 {
        if !self.walked() {
            return 0.0;
        }
        let (k, cells) = (self.spec.k as usize, self.grid.len());
        let weight = self.weight() as f64;
        symbols
            .iter()
            .enumerate()
            .filter(|&(_, &s)| s != self.spec.k)
            .map(|(at, &s)| {
                let (b, cell) = (at / cells, at % cells);
                let coded = self.dist[(b * k + s as usize) * cells + cell];
                weight * (self.keep_dist[at] - coded) as f64
            })
            .sum()
    }

    /// The symbol of every cell, `[B·cells]`, minimising `D + λ·R` cell by cell in coding
    /// order, the rate taken from (and fed back into) `model`; `lambda` is this layer's
    /// ([`RdState::layer_lambda`]). Also the bits the chosen symbols cost by `model`.
    fn choose(&self, model: &mut LayerModel, lambda: f32) -> (Vec<u32>, f64) {
        let (spec, grid) = (self.spec, self.grid);
        let (k, cells) = (spec.k as usize, grid.len());
        let weight = self.weight();
        let walked = self.walked();
        let mut path = Vec::new();
        let mut bits = 0.0;
        let mut chosen = Vec::with_capacity(self.batch * cells);
        for b in 0..self.batch {
            let prev = self.prev.as_ref().map(|(g, keep, symbols)| PrevLayer {
                grid: *g,
                symbols: &symbols[b * g.len()..(b + 1) * g.len()],
                keep: *keep,
            });
            scan_tile(grid, spec.k, prev.as_ref(), &mut chosen, |cell, ctx| {
                let keep_cost = model.keep_cost(ctx);
                let (mut best, mut best_bits) = (spec.k, keep_cost);
                if walked {
                    let costs = model.index_costs(ctx, &mut path);
                    let mut best_j = weight * self.keep_dist[b * cells + cell] + lambda * keep_cost;
                    for (i, &bits) in costs.iter().enumerate() {
                        let j = weight * self.dist[(b * k + i) * cells + cell] + lambda * bits;
                        // Strictly less: ties go to the lowest index, keep (K) last.
                        if j < best_j || (j == best_j && (i as u32) < best) {
                            best_j = j;
                            (best, best_bits) = (i as u32, bits);
                        }
                    }
                }
                bits += best_bits as f64;
                model.update(ctx, best);
                Some(best)
            });
        }
        (chosen, bits)
    }
}

/// The probabilities whose costs the choices weigh: format 5's slow ones, whatever the
/// file's format. Format 6's learn from a layer's first few symbols at once, and choices
/// weighed with them follow the first indices chosen (each choice makes its index cheaper
/// for the next cells): on 8 Kodak images that lost 0.06–0.09 dB from 0.25 to 1 bpp
/// (docs/experiments.md, "Finer probabilities: format 6"). With these costs a λ gives the
/// same symbols in either format, and format 6 codes them in fewer bits.
const DECISION_COSTS: Adaptation = Adaptation::Fixed;

/// Whether the choices weigh format 7's neighbour flags (codec-spec.md §7.3) in every
/// layer, though the writer may code a layer without them: an index that repeats a
/// neighbour's then costs what its flag does, so where two candidates come out about
/// equally good a cell takes its neighbour's, and the flags save more. On 8 Kodak images
/// +0.07 dB at 0.05 bpp and +0.05 at 0.25 over the same format choosing blind to them
/// (docs/experiments.md, "Neighbour flags: format 7").
const DECISION_NEIGHBOUR_FLAGS: bool = true;

/// The model whose costs a layer of `k` candidates weighs.
fn decision_model(k: u32) -> LayerModel {
    LayerModel::new(k, DECISION_COSTS, DECISION_NEIGHBOUR_FLAGS)
}

impl RdState {
    pub fn new(schedule: &[LayerSpec], lambda: f64, tune: Tune) -> Self {
        RdState {
            schedule: schedule.to_vec(),
            lambda: lambda as f32,
            tune,
            models: schedule.iter().map(|s| decision_model(s.k)).collect(),
            stored: schedule.iter().map(|_| Some(Vec::new())).collect(),
            stored_floats: 0,
            may_stop_early: false,
        }
    }

    /// Lets a walk stop once its last layers stop paying for their bits (see
    /// [`losing_layers_to_stop`]); for encoders that leave such layers out of the file.
    pub fn may_stop_early(mut self) -> Self {
        self.may_stop_early = self.lambda > 0.0;
        self
    }

    /// A chooser for one batch of tiles of `width × height` padded pixels.
    /// `weights` (`[B, height, width]`), if given, scale each pixel's squared error.
    pub fn batch<'a>(
        &'a mut self,
        targets: &'a [Tensor],
        weights: Option<&'a [f32]>,
        width: usize,
        height: usize,
    ) -> RdChooser<'a> {
        RdChooser {
            state: self,
            targets,
            weights,
            prev: Vec::new(),
            tile_side: (width, height),
            losing_layers: 0,
            keep_inputs: 0,
        }
    }

    /// Layer `layer`'s symbols chosen again at `lambda`, one vector per batch in walk
    /// order; `None` when the walk did not reach that layer or its inputs were dropped.
    pub fn rechoose(&self, layer: usize, lambda: f64) -> Option<Vec<Vec<u32>>> {
        let choices = self.stored.get(layer)?.as_ref().filter(|c| !c.is_empty())?;
        let mut model = decision_model(self.schedule[layer].k);
        let lambda = self.layer_lambda(layer, lambda as f32);
        Some(
            choices
                .iter()
                .map(|c| c.choose(&mut model, lambda).0)
                .collect(),
        )
    }

    /// How much layer `layer`'s coded cells lower the weighted squared error from keeping
    /// (the `D` of its choices), for its symbols one vector per batch in walk order;
    /// `None` when the walk did not reach that layer or its inputs were dropped.
    pub fn gain(&self, layer: usize, per_batch: &[Vec<u32>]) -> Option<f64> {
        let choices = self.stored.get(layer)?.as_ref().filter(|c| !c.is_empty())?;
        Some(
            choices
                .iter()
                .zip(per_batch)
                .map(|(choice, symbols)| choice.gain(symbols))
                .sum(),
        )
    }

    /// Layer `layer`'s trade-off for a walk at `lambda`: the walk's, scaled by the tuning.
    pub fn layer_lambda(&self, layer: usize, lambda: f32) -> f32 {
        lambda * self.tune.lambda_factor(self.schedule[layer].scale_log2)
    }

    /// Every layer's symbols chosen again at `lambda`, each layer on its own from this
    /// walk's stored inputs (the walk's own earlier symbols stay its contexts, and its
    /// candidates stay those the walk's choices made): roughly what a walk at `lambda`
    /// would choose, without walking. `None` for the layers [`RdState::rechoose`] cannot.
    pub fn rechoose_all(&self, lambda: f64) -> Vec<Option<Vec<Vec<u32>>>> {
        use rayon::prelude::*;
        (0..self.schedule.len())
            .into_par_iter()
            .map(|layer| self.rechoose(layer, lambda))
            .collect()
    }

    fn store(&mut self, layer: usize, choice: LayerChoice) {
        let floats = |c: &LayerChoice| c.dist.len() + c.keep_dist.len();
        if self.stored[layer].is_none() {
            return;
        }
        self.stored_floats += floats(&choice);
        while self.stored_floats > STORED_FLOATS_MAX {
            let Some(first) = self.stored.iter().position(Option::is_some) else {
                return;
            };
            let dropped = self.stored[first]
                .take()
                .expect("positioned on a stored layer");
            self.stored_floats -= dropped.iter().map(floats).sum::<usize>();
            if first == layer {
                self.stored_floats -= floats(&choice);
                return;
            }
        }
        self.stored[layer]
            .as_mut()
            .expect("checked above")
            .push(choice);
    }
}

/// Picks every cell's symbol by `D + λ·R`; with `λ = 0`, the nearest of the K candidates
/// and keep.
pub struct RdChooser<'a> {
    state: &'a mut RdState,
    targets: &'a [Tensor],
    /// Per-pixel error weights of the batch, `[B, h, w]` in padded image pixels.
    weights: Option<&'a [f32]>,
    /// The previous layer's symbols of this batch, `[B·cells]`.
    prev: Vec<u32>,
    /// Padded tile size in image pixels.
    tile_side: (usize, usize),
    /// How many layers in a row, up to the last chosen, did not pay for their bits.
    losing_layers: usize,
    /// The most floats of a layer's input the walk keeps ([`Chooser::keeps_input_of`]).
    keep_inputs: usize,
}

impl RdChooser<'_> {
    /// Lets the walk keep the input of its last layer that paid for its bits, if it holds
    /// at most `floats` floats: the layer an encoder's file most often ends on (the walk
    /// stops after [`losing_layers_to_stop`] more, which the file leaves out).
    pub fn keeping_inputs(mut self, floats: usize) -> Self {
        self.keep_inputs = floats;
        self
    }

    /// Every cell of the layers from `walked` on keeps, for a walk that stopped there:
    /// their symbols, `[layer][B·cells]`, chosen (and stored) as the walked layers' are.
    pub fn keep_the_rest(&mut self, walked: usize, batch: usize) -> Vec<Vec<u32>> {
        (walked..self.state.schedule.len())
            .map(|layer| {
                self.store_and_choose(layer, batch, Vec::new(), Vec::new())
                    .0
            })
            .collect()
    }

    /// Chooses layer `layer`'s symbols from its distances (none: every cell keeps) and
    /// stores them for choosing again; also what the layer's choices net: the squared
    /// error they remove less λ times their estimated bits.
    fn store_and_choose(
        &mut self,
        layer: usize,
        batch: usize,
        dist: Vec<f32>,
        keep_dist: Vec<f32>,
    ) -> (Vec<u32>, f64) {
        let choice = LayerChoice {
            spec: self.state.schedule[layer],
            grid: self.grid(layer),
            prev: layer.checked_sub(1).map(|p| {
                let prev = std::mem::take(&mut self.prev);
                (self.grid(p), self.state.schedule[p].k, prev)
            }),
            dist,
            keep_dist,
            batch,
        };
        let lambda = self.state.layer_lambda(layer, self.state.lambda);
        let (chosen, bits) = choice.choose(&mut self.state.models[layer], lambda);
        let net = choice.gain(&chosen) - lambda as f64 * bits;
        self.state.store(layer, choice);
        self.prev = chosen.clone();
        (chosen, net)
    }

    fn grid(&self, layer: usize) -> CellGrid {
        let side = self.state.schedule[layer].cell_pixels() as usize;
        CellGrid {
            cols: self.tile_side.0 / side,
            rows: self.tile_side.1 / side,
            side,
        }
    }

    /// The mean pixel weight of every cell of `grid`, `[B·cells]`.
    fn cell_weights(&self, weights: &[f32], grid: CellGrid, batch: usize) -> Vec<f32> {
        let (w, h) = self.tile_side;
        let side = grid.side;
        let mut out = Vec::with_capacity(batch * grid.len());
        for b in 0..batch {
            let plane = &weights[b * w * h..(b + 1) * w * h];
            for cy in 0..grid.rows {
                for cx in 0..grid.cols {
                    let sum: f32 = (cy * side..(cy + 1) * side)
                        .map(|y| plane[y * w + cx * side..][..side].iter().sum::<f32>())
                        .sum();
                    out.push(sum / (side * side) as f32);
                }
            }
        }
        out
    }
}

/// Scales every cell's distances, `[B, K, cells]` and `[B, cells]`, by its weight
/// (`[B·cells]`).
fn weigh(dist: &mut [f32], keep_dist: &mut [f32], cell_weights: &[f32], batch: usize) {
    let cells = keep_dist.len() / batch;
    let k = dist.len() / keep_dist.len();
    keep_dist
        .iter_mut()
        .zip(cell_weights)
        .for_each(|(d, w)| *d *= w);
    for (row, chunk) in dist.chunks_mut(cells).enumerate() {
        let b = row / k;
        chunk
            .iter_mut()
            .zip(&cell_weights[b * cells..(b + 1) * cells])
            .for_each(|(d, w)| *d *= w);
    }
}

impl Chooser for RdChooser<'_> {
    fn choose(&mut self, layer: usize, candidates: &Candidates) -> Result<Vec<u32>> {
        let (mut dist, mut keep_dist) = candidates.cell_and_keep_distances(&self.targets[layer])?;
        let batch = candidates.shape.batch;
        if let Some(weights) = self.weights {
            let cell_weights = self.cell_weights(weights, self.grid(layer), batch);
            weigh(&mut dist, &mut keep_dist, &cell_weights, batch);
        }
        let (chosen, net) = self.store_and_choose(layer, batch, dist, keep_dist);
        self.losing_layers = if net < 0.0 { self.losing_layers + 1 } else { 0 };
        Ok(chosen)
    }

    fn goes_on_after(&self, layer: usize) -> bool {
        let scale_log2 = self.state.schedule[layer].scale_log2;
        !(self.state.may_stop_early && self.losing_layers >= losing_layers_to_stop(scale_log2))
    }

    /// The input of a layer that paid, if it fits; a paying layer whose input does not
    /// fit drops the one kept before, which the file then seldom ends on.
    fn keeps_input_of(&self, _layer: usize, input: &LayerInput) -> KeepInput {
        match (self.losing_layers == 0, input.floats() <= self.keep_inputs) {
            (true, true) => KeepInput::This,
            (true, false) => KeepInput::Nothing,
            (false, _) => KeepInput::AsBefore,
        }
    }
}
