//! Least-squares refits of heads on a trunk held still, as a vector quantiser's codebook
//! is refitted (Lloyd): walk training crops choosing the nearest candidate, sum for every
//! node the features and errors of the cells that chose it, and give each node the head
//! rows that fit those cells best. Nodes copied with a little noise (a layer given more
//! candidates) split their cells between them at the first pass and move apart at the
//! next ones, with no optimiser state to disturb the rest of the network.

use candle_core::Tensor;

use super::chooser::KeepRule;
use super::data::Dataset;
use super::Hyper;
use crate::error::{Error, Result};
use crate::model::ddl::{self, Candidates, LayerShape, NodeSums};
use crate::model::{Chooser, Network, Walk};

/// What one pass measured in one refitted layer, before its refit.
#[derive(Debug, Clone)]
pub struct LayerFit {
    pub layer: usize,
    /// Mean squared error per value of the chosen candidates (model space).
    pub mse: f64,
    /// Nodes that coded at least one cell.
    pub nodes_used: usize,
}

/// How strongly a refit holds a node to its old rows: the ridge is this times the mean
/// diagonal of the node's feature Gram matrix, enough to keep a node with few cells (or
/// features that span few directions) from a wild fit, too little to hold back the rest.
const RIDGE: f64 = 1e-3;

/// One pass: `batches` batches of `hyper.batch` crops of `hyper.crop` pixels (drawn from
/// `hyper.seed` at steps `first_step` on), walked as training steps walk them (cells keep
/// by the steps' keep rule, and keep cells code no node), then every head of `layers`
/// (walk order, cells of whole feature pixels) refitted to the cells that chose it.
pub fn refit_pass(
    network: &Network,
    dataset: &Dataset,
    hyper: &Hyper,
    (first_step, batches): (u64, u64),
    layers: &[usize],
) -> Result<Vec<LayerFit>> {
    let last = *layers.iter().max().expect("a layer to refit");
    let mut chooser = SumChooser {
        targets: Vec::new(),
        keep: None,
        layers,
        sums: vec![None; last + 1],
        error: vec![(0.0, 0); last + 1],
    };
    let scales: Vec<u8> = (network.config().schedule().iter())
        .map(|s| s.scale_log2)
        .collect();
    let (batch, crop) = (hyper.batch, hyper.crop);
    for step in first_step..first_step + batches {
        let images = dataset.batch(hyper.seed, step, batch, crop, network.device())?;
        chooser.targets = network.layer_targets(&images, last + 1)?;
        chooser.keep = KeepRule::for_step(
            hyper.seed,
            step,
            hyper.keep_lambda,
            hyper.plain_share,
            scales.clone(),
        );
        network.walk(batch, crop, crop, last + 1, Walk::Choose(&mut chooser))?;
    }
    let heads = network.heads();
    layers
        .iter()
        .map(|&l| {
            let sums = chooser.sums[l]
                .take()
                .ok_or_else(|| Error::InvalidArgument(format!("layer {l} cannot be refitted")))?;
            let head = &heads[l];
            let mut rows = head.as_tensor().flatten_all()?.to_vec1::<f32>()?;
            refit_head(&mut rows, &sums);
            let shape = head.as_tensor().shape().clone();
            head.set(&Tensor::from_vec(rows, shape, network.device())?)?;
            let (sq, values) = chooser.error[l];
            Ok(LayerFit {
                layer: l,
                mse: sq / values.max(1) as f64,
                nodes_used: sums.cells.iter().filter(|&&c| c > 0).count(),
            })
        })
        .collect()
}

/// Chooses the nearest candidate, or keep where the batch's keep rule says so, and sums,
/// in the layers given sums, each node's cells.
struct SumChooser<'a> {
    targets: Vec<Tensor>,
    keep: Option<KeepRule>,
    /// The layers summed (walk order).
    layers: &'a [usize],
    /// Per layer, once its first batch is summed.
    sums: Vec<Option<NodeSums>>,
    /// Per layer: the chosen candidates' squared error and how many values it is over.
    error: Vec<(f64, usize)>,
}

impl Chooser for SumChooser<'_> {
    fn choose(&mut self, layer: usize, candidates: &Candidates) -> Result<Vec<u32>> {
        let s = candidates.shape;
        let target = &self.targets[layer];
        let (dist, keep_dist) = candidates.cell_and_keep_distances(target)?;
        let mut nearest = ddl::nearest(&dist, s);
        if let Some(rule) = &self.keep {
            let keeps = rule.for_layer(s.k, layer);
            for (i, index) in nearest.iter_mut().enumerate() {
                if keeps(
                    keep_dist[i],
                    chosen_distance(&dist, &keep_dist, s, i, *index),
                ) {
                    *index = s.k as u32;
                }
            }
        }
        if self.layers.contains(&layer) {
            if !candidates.has_node_sums() {
                return Err(Error::InvalidArgument(format!(
                    "layer {layer}: its cells are smaller than a feature pixel"
                )));
            }
            let sums = self.sums[layer].get_or_insert_with(|| candidates.empty_node_sums());
            candidates.add_node_sums(target, &nearest, sums)?;
            let chosen: f64 = (nearest.iter().enumerate())
                .map(|(i, &k)| chosen_distance(&dist, &keep_dist, s, i, k) as f64)
                .sum();
            let e = &mut self.error[layer];
            e.0 += chosen;
            e.1 += s.batch * 3 * s.height * s.width;
        }
        Ok(nearest)
    }
}

/// The squared error of cell `i` (`[B·cells]` order) under index `k` (keep when `k` is K),
/// from the layer's `[B, K, cells]` distances and `[B, cells]` keep distances.
fn chosen_distance(dist: &[f32], keep_dist: &[f32], s: LayerShape, i: usize, k: u32) -> f32 {
    let (b, cell, k) = (i / s.cells(), i % s.cells(), k as usize);
    if k < s.k {
        dist[(b * s.k + k) * s.cells() + cell]
    } else {
        keep_dist[i]
    }
}

/// Gives every node of `head` (`[K·planes, channels]`, node `k`'s rows `k·planes..`) that
/// coded a cell the rows `H` minimising `Σ ‖H f − ε‖² + μ‖H − H_old‖²` over its cells:
/// `H (G + μI) = Bᵀ + μ H_old`, with `G = Σ f fᵀ` and `B = Σ f εᵀ` from `sums`.
pub fn refit_head(head: &mut [f32], sums: &NodeSums) {
    let (c, planes, width) = (sums.channels, sums.planes, sums.width());
    for (k, rows) in head.chunks_exact_mut(planes * c).enumerate() {
        if sums.cells[k] == 0 {
            continue;
        }
        let terms = &sums.terms[k * width..][..width];
        let mut gram = vec![0f64; c * c];
        let mut t = 0;
        for i in 0..c {
            for j in i..c {
                gram[i * c + j] = terms[t];
                gram[j * c + i] = terms[t];
                t += 1;
            }
        }
        let trace: f64 = (0..c).map(|i| gram[i * c + i]).sum();
        if trace <= 0.0 {
            continue;
        }
        let mu = RIDGE * trace / c as f64;
        (0..c).for_each(|i| gram[i * c + i] += mu);
        // Right-hand sides `[channels, planes]`: `B + μ H_oldᵀ`.
        let mut rhs: Vec<f64> = (0..c * planes)
            .map(|i| {
                let (ch, q) = (i / planes, i % planes);
                terms[t + i] + mu * rows[q * c + ch] as f64
            })
            .collect();
        if cholesky_solve(&mut gram, &mut rhs, c, planes) {
            for (i, x) in rhs.iter().enumerate() {
                let (ch, q) = (i / planes, i % planes);
                rows[q * c + ch] = *x as f32;
            }
        }
    }
}

/// Solves `A X = R` for a symmetric positive definite `A` (`n × n`, overwritten by its
/// Cholesky factor) and `m` right-hand sides `R` (`n × m`, overwritten by `X`). False,
/// and `R` unusable, when `A` is not positive definite.
fn cholesky_solve(a: &mut [f64], r: &mut [f64], n: usize, m: usize) -> bool {
    for j in 0..n {
        let d = a[j * n + j] - (0..j).map(|p| a[j * n + p] * a[j * n + p]).sum::<f64>();
        if d <= 0.0 || !d.is_finite() {
            return false;
        }
        let d = d.sqrt();
        a[j * n + j] = d;
        for i in j + 1..n {
            let dot: f64 = (0..j).map(|p| a[i * n + p] * a[j * n + p]).sum();
            a[i * n + j] = (a[i * n + j] - dot) / d;
        }
    }
    for col in 0..m {
        // L y = r, then Lᵀ x = y.
        for i in 0..n {
            let dot: f64 = (0..i).map(|p| a[i * n + p] * r[p * m + col]).sum();
            r[i * m + col] = (r[i * m + col] - dot) / a[i * n + i];
        }
        for i in (0..n).rev() {
            let dot: f64 = (i + 1..n).map(|p| a[p * n + i] * r[p * m + col]).sum();
            r[i * m + col] = (r[i * m + col] - dot) / a[i * n + i];
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cholesky_solves_a_small_system() {
        // A = [[4, 2], [2, 3]], X = [[1, 2], [−1, 0.5]] → R = A X.
        let mut a = vec![4.0, 2.0, 2.0, 3.0];
        let mut r = vec![2.0, 9.0, -1.0, 5.5];
        assert!(cholesky_solve(&mut a, &mut r, 2, 2));
        for (x, want) in r.iter().zip([1.0, 2.0, -1.0, 0.5]) {
            assert!((x - want).abs() < 1e-12, "{r:?}");
        }
        let mut singular = vec![1.0, 1.0, 1.0, 1.0];
        assert!(!cholesky_solve(&mut singular, &mut [0.0, 0.0], 2, 1));
    }
}
