//! The training walk's choice: the nearest candidate of every cell, recorded for
//! Split-and-Prune, replaced by random indices when chain dropout fires.

use candle_core::Tensor;
use rayon::prelude::*;

use super::split_prune::NodeStats;
use crate::error::Result;
use crate::model::ddl::{self, Candidates};
use crate::model::Chooser;
use crate::rng::Rng;

/// Whether chain dropout replaces layer `layer`'s choices at step `step`: one draw per
/// layer per step, reproducible from the seed.
pub fn dropout_fires(seed: u64, step: u64, layer: usize, p: f64) -> bool {
    p > 0.0 && Rng::derive(seed, &[0xD409, step, layer as u64]).uniform() < p
}

pub struct TrainChooser<'a> {
    /// Targets per layer, at each layer's resolution.
    pub targets: &'a [Tensor],
    pub stats: &'a mut [NodeStats],
    /// Picks of each layer's nodes in this step (for logging).
    pub picks: Vec<Vec<u64>>,
    pub seed: u64,
    pub step: u64,
    pub chain_dropout: f64,
}

impl Chooser for TrainChooser<'_> {
    fn choose(&mut self, layer: usize, candidates: &Candidates) -> Result<Vec<u32>> {
        let shape = candidates.shape;
        let dist = candidates.cell_distances(&self.targets[layer])?;
        // One tally per batch item, in parallel (a GPU batch has ~10⁶ cells per layer),
        // merged in batch order so every run counts alike.
        let tallies: Vec<(NodeStats, Vec<u32>)> = (0..shape.batch)
            .into_par_iter()
            .map(|b| {
                let mut tally = NodeStats::new(shape.k);
                let nearest = (0..shape.cells())
                    .map(|c| {
                        let cell = ddl::distances_of_cell(&dist, shape, b, c);
                        tally.record(&cell);
                        ddl::argmin(&cell)
                    })
                    .collect();
                (tally, nearest)
            })
            .collect();
        let mut nearest = Vec::with_capacity(shape.batch * shape.cells());
        for (tally, item) in &tallies {
            self.stats[layer].merge(tally);
            nearest.extend_from_slice(item);
        }
        if self.picks.len() <= layer {
            self.picks.resize(layer + 1, Vec::new());
        }
        let picks = &mut self.picks[layer];
        picks.resize(shape.k, 0);
        nearest.iter().for_each(|&i| picks[i as usize] += 1);
        if dropout_fires(self.seed, self.step, layer, self.chain_dropout) {
            let mut rng = Rng::derive(self.seed, &[0x5A4D, self.step, layer as u64]);
            return Ok(ddl::random_indices(&mut rng, shape));
        }
        Ok(nearest)
    }
}
