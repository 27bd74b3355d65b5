//! Rate-distortion choices: each cell keeps the symbol with the least `D + λ·R`, where `D`
//! is its squared error (weighted by the image pixels a grid pixel stands for) and `R`
//! the bits the adaptive coder would spend on it now (codec-spec.md §7).

use candle_core::Tensor;

use crate::bitstream::symbols::{keep_context, CellGrid, LayerModel, PrevLayer};
use crate::bitstream::LayerSpec;
use crate::error::Result;
use crate::model::ddl::Candidates;
use crate::model::Chooser;

/// Squared error is measured on the 8-bit scale; the network works on `v/255 − 0.5`.
const EIGHT_BIT: f32 = 255.0 * 255.0;

/// What rate-distortion choices carry across the batches of one encode.
pub struct RdState {
    schedule: Vec<LayerSpec>,
    lambda: f32,
    /// One adaptive model per layer, carried from batch to batch so that the estimates
    /// follow the coder's adaptation.
    models: Vec<LayerModel>,
}

impl RdState {
    pub fn new(schedule: &[LayerSpec], lambda: f64) -> Self {
        RdState {
            schedule: schedule.to_vec(),
            lambda: lambda as f32,
            models: schedule.iter().map(|s| LayerModel::new(s.k)).collect(),
        }
    }

    /// A chooser for one batch of tiles of `width × height` padded pixels.
    pub fn batch<'a>(
        &'a mut self,
        targets: &'a [Tensor],
        width: usize,
        height: usize,
    ) -> RdChooser<'a> {
        RdChooser {
            state: self,
            targets,
            prev: Vec::new(),
            tile_side: (width, height),
        }
    }
}

/// Picks every cell's symbol by `D + λ·R`; with `λ = 0`, the nearest of the K candidates
/// and keep.
pub struct RdChooser<'a> {
    state: &'a mut RdState,
    targets: &'a [Tensor],
    /// The previous layer's symbols of this batch, `[B·cells]`.
    prev: Vec<u32>,
    /// Padded tile size in image pixels.
    tile_side: (usize, usize),
}

impl RdChooser<'_> {
    fn grid(&self, layer: usize) -> CellGrid {
        let side = self.state.schedule[layer].cell_pixels() as usize;
        CellGrid {
            cols: self.tile_side.0 / side,
            rows: self.tile_side.1 / side,
            side,
        }
    }
}

impl Chooser for RdChooser<'_> {
    fn choose(&mut self, layer: usize, candidates: &Candidates) -> Result<Vec<u32>> {
        let shape = candidates.shape;
        let target = &self.targets[layer];
        let dist = candidates.cell_distances(target)?;
        let keep_dist = candidates.keep_distances(target)?;
        let spec = self.state.schedule[layer];
        // A grid pixel at scale s stands for 4^s image pixels.
        let weight = EIGHT_BIT * (1u32 << (2 * spec.scale_log2)) as f32;
        let grid = self.grid(layer);
        let prev_grid = layer
            .checked_sub(1)
            .map(|p| (self.grid(p), self.state.schedule[p].k));
        let (k, cells) = (shape.k, grid.len());
        let lambda = self.state.lambda;
        let model = &mut self.state.models[layer];
        let mut costs = vec![0f32; k];
        let mut chosen = Vec::with_capacity(shape.batch * cells);
        for b in 0..shape.batch {
            let start = chosen.len();
            let prev = prev_grid.map(|(g, keep)| PrevLayer {
                grid: g,
                symbols: &self.prev[b * g.len()..(b + 1) * g.len()],
                keep,
            });
            for y in 0..grid.rows {
                for x in 0..grid.cols {
                    let cell = y * grid.cols + x;
                    let ctx = keep_context(&chosen[start..], spec.k, grid, prev.as_ref(), x, y);
                    model.index_costs(ctx, &mut costs);
                    let mut best = spec.k;
                    let mut best_j =
                        weight * keep_dist[b * cells + cell] + lambda * model.keep_cost(ctx);
                    for (i, &bits) in costs.iter().enumerate() {
                        let j = weight * dist[(b * k + i) * cells + cell] + lambda * bits;
                        // Strictly less: ties go to the lowest index, keep (K) last.
                        if j < best_j || (j == best_j && (i as u32) < best) {
                            best_j = j;
                            best = i as u32;
                        }
                    }
                    model.update(ctx, best);
                    chosen.push(best);
                }
            }
        }
        self.prev = chosen.clone();
        Ok(chosen)
    }
}
