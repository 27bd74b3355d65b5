//! The training walk's choice: the nearest candidate of every cell, recorded for
//! Split-and-Prune, replaced by random indices when chain dropout fires. With a keep
//! trade-off, a cell keeps the current image where its nearest candidate does not pay
//! for its bits, as the encoder's `D + λ·R` choice would (so the network learns from the
//! partly kept images it meets when coding).

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

/// This step's keep decision: a cell keeps unless its nearest candidate lowers the
/// squared error (8-bit scale, in image pixels) by more than `lambda · bits`.
#[derive(Debug, Clone)]
pub struct KeepRule {
    pub lambda: f32,
    /// Every layer's `scale_log2`.
    pub scales: Vec<u8>,
}

impl KeepRule {
    /// The trade-off of step `step`: log-uniform in `[lo, hi]`, one draw per step,
    /// reproducible from the seed; `None` when `hi` is 0 (training never keeps) and on a
    /// `plain_share` of the steps.
    pub fn for_step(
        seed: u64,
        step: u64,
        [lo, hi]: [f64; 2],
        plain_share: f64,
        scales: Vec<u8>,
    ) -> Option<Self> {
        if hi <= 0.0 || Rng::derive(seed, &[0x504C, step]).uniform() < plain_share {
            return None;
        }
        let u = Rng::derive(seed, &[0x4B45, step]).uniform();
        let lambda = (lo.max(1e-3).ln() * (1.0 - u) + hi.ln() * u).exp();
        Some(KeepRule {
            lambda: lambda as f32,
            scales,
        })
    }

    /// Whether a cell of `layer` (of K nodes) keeps, as a test of its squared errors in
    /// model units summed over the layer's grid, `keep` and `nearest`; each grid pixel
    /// stands for `4^scale_log2` image pixels. The bits of a coded index are taken as
    /// log2(K) plus two for the keep flags (a coded cell among mostly kept ones costs
    /// about that).
    pub(crate) fn for_layer(&self, k: usize, layer: usize) -> impl Fn(f32, f32) -> bool + Sync {
        let weight = 255.0 * 255.0 * (1u32 << (2 * self.scales[layer])) as f32;
        let penalty = self.lambda * ((k as f32).log2() + 2.0);
        move |keep, nearest| weight * keep < weight * nearest + penalty
    }
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
    pub keep: Option<KeepRule>,
}

impl Chooser for TrainChooser<'_> {
    fn choose(&mut self, layer: usize, candidates: &Candidates) -> Result<Vec<u32>> {
        let shape = candidates.shape;
        let target = &self.targets[layer];
        let (dist, keep) = match &self.keep {
            Some(rule) => {
                let (d, keep_dist) = candidates.cell_and_keep_distances(target)?;
                (d, Some((keep_dist, rule.for_layer(shape.k, layer))))
            }
            None => (candidates.cell_distances(target)?, None),
        };
        // One tally per batch item, in parallel (a GPU batch has ~10⁶ cells per layer),
        // merged in batch order so every run counts alike. Kept cells code no node, so
        // Split-and-Prune does not count them.
        let tallies: Vec<(NodeStats, Vec<u32>)> = (0..shape.batch)
            .into_par_iter()
            .map(|b| {
                let mut tally = NodeStats::new(shape.k);
                let nearest = (0..shape.cells())
                    .map(|c| {
                        let cell = ddl::distances_of_cell(&dist, shape, b, c);
                        let best = ddl::argmin(&cell);
                        if let Some((keep_dist, keeps)) = &keep {
                            if keeps(keep_dist[b * shape.cells() + c], cell[best as usize]) {
                                return shape.k as u32;
                            }
                        }
                        tally.record(&cell);
                        best
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
        nearest
            .iter()
            .filter(|&&i| (i as usize) < shape.k)
            .for_each(|&i| picks[i as usize] += 1);
        if dropout_fires(self.seed, self.step, layer, self.chain_dropout) {
            let mut rng = Rng::derive(self.seed, &[0x5A4D, self.step, layer as u64]);
            return Ok(ddl::random_indices(&mut rng, shape));
        }
        Ok(nearest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_step_draws_its_own_lambda_within_the_range_reproducibly() {
        assert!(KeepRule::for_step(1, 0, [0.0, 0.0], 0.0, vec![0]).is_none());
        let range = [100.0, 16_000.0];
        let draws: Vec<f32> = (0..200)
            .map(|step| {
                KeepRule::for_step(1, step, range, 0.0, vec![0])
                    .unwrap()
                    .lambda
            })
            .collect();
        assert!(draws.iter().all(|&l| (100.0..=16_000.0).contains(&l)));
        // Log-uniform: about half the draws under the geometric mean (1,265).
        let low = draws.iter().filter(|&&l| l < 1_265.0).count();
        assert!((70..=130).contains(&low), "{low}");
        let again = KeepRule::for_step(1, 7, range, 0.0, vec![0])
            .unwrap()
            .lambda;
        assert_eq!(again, draws[7]);
    }

    #[test]
    fn a_plain_share_of_steps_never_keeps_and_the_others_draw_as_before() {
        let range = [25.0, 16_000.0];
        let rules: Vec<Option<KeepRule>> = (0..400)
            .map(|step| KeepRule::for_step(1, step, range, 0.25, vec![0]))
            .collect();
        let plain = rules.iter().filter(|r| r.is_none()).count();
        assert!((70..=130).contains(&plain), "{plain}");
        for (step, rule) in rules.iter().enumerate() {
            if let Some(rule) = rule {
                let alone = KeepRule::for_step(1, step as u64, range, 0.0, vec![0]).unwrap();
                assert_eq!(rule.lambda, alone.lambda);
            }
        }
        assert!((0..50).all(|step| KeepRule::for_step(1, step, range, 1.0, vec![0]).is_none()));
    }

    #[test]
    fn a_cell_keeps_unless_its_nearest_candidate_pays_for_its_bits() {
        // Layer 0 at full resolution, layer 1 at half.
        let rule = |lambda| KeepRule {
            lambda,
            scales: vec![0, 1],
        };
        // K = 16: 4 + 2 bits, worth 600 in 8-bit squared error. At full resolution one
        // unit of model-space squared error is 65,025 of it.
        let saving = |units: f32| rule(100.0).for_layer(16, 0)(1.0 + units, 1.0);
        assert!(saving(500.0 / 65_025.0));
        assert!(!saving(700.0 / 65_025.0));
        // A grid pixel at half resolution stands for four image pixels.
        assert!(!rule(100.0).for_layer(16, 1)(1.0 + 200.0 / 65_025.0, 1.0));
        // No candidate nearer than the current image: keep whatever λ.
        assert!(rule(0.0).for_layer(16, 0)(1.0, 1.5));
    }
}
