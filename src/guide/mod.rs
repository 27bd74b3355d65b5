//! The guided walk, the DDN paper's zero-shot conditional generation: the same
//! unconditional tree, walked with
//! another scoring rule. At every layer each condition scores every cell's K
//! candidates and keep; the walk takes the best, or one of the best two at random, so tasks the
//! network never trained for — super-resolution, inpainting, colorization, denoising —
//! are solved with no gradient.

pub mod back_projection;
pub mod restore;

use candle_core::Tensor;

use crate::error::Result;
use crate::model::ddl::{self, Candidates, LayerShape};
use crate::model::Chooser;
use crate::rng::Rng;

/// What of a candidate a condition looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// The colour image.
    Colour,
    /// BT.601 luma (0.299 R + 0.587 G + 0.114 B).
    Grey,
}

/// One scoring rule: the MSE between the candidates, seen through `view`, and `target`,
/// compared at the coarser of the two resolutions, over the pixels that `known` marks.
pub struct Condition {
    /// `[B,3,H,W]` in model space, at any power-of-two scale of the walk's images.
    pub target: Tensor,
    /// `[B,1,H,W]`: how much each target pixel counts, 1 where it is known, 0 where it
    /// is not.
    pub known: Option<Tensor>,
    pub view: View,
    /// Weight of this condition's ranks when several are combined.
    pub weight: f64,
}

fn view(x: &Tensor, v: View) -> Result<Tensor> {
    Ok(match v {
        View::Colour => x.clone(),
        View::Grey => {
            let weights = Tensor::new(&crate::model::color::LUMA_WEIGHTS, x.device())?
                .reshape((1, 3, 1, 1))?
                .to_dtype(x.dtype())?;
            x.broadcast_mul(&weights)?.sum_keepdim(1)?
        }
    })
}

/// Sums (or spreads) a per-pixel error map `[N, h, w]` onto a `cy × cx` cell grid.
fn to_cells(err: &Tensor, cy: usize, cx: usize) -> Result<Tensor> {
    let (n, h, _) = err.dims3()?;
    Ok(if h >= cy {
        let f = h / cy;
        err.reshape((n, cy, f, cx, f))?.sum(4)?.sum(2)?
    } else {
        err.unsqueeze(1)?.upsample_nearest2d(cy, cx)?.squeeze(1)?
    })
}

impl Condition {
    /// Error of every candidate in every cell, `[B, K, cells]` flattened; lower is better.
    pub fn cell_errors(&self, images: &Tensor, shape: LayerShape) -> Result<Vec<f32>> {
        let (b, k) = (shape.batch, shape.k);
        let (_, _, th, _) = self.target.dims4()?;
        let cands = view(
            &images.reshape((b * k, 3, shape.height, shape.width))?,
            self.view,
        )?;
        let target = view(&self.target, self.view)?;
        let (cands, target, known) = if th <= shape.height {
            let f = shape.height / th;
            (pool(&cands, f)?, target, self.known.clone())
        } else {
            let f = th / shape.height;
            match &self.known {
                Some(m) => {
                    let area = pool(m, f)?;
                    let t = (pool(&target.broadcast_mul(m)?, f)?.broadcast_div(&(&area + 1e-6)?))?;
                    (cands, t, Some(area))
                }
                None => (cands, pool(&target, f)?, None),
            }
        };
        let (_, c, h, w) = cands.dims4()?;
        let diff = cands
            .reshape((b, k, c, h, w))?
            .broadcast_sub(&target.unsqueeze(1)?)?
            .sqr()?;
        let diff = match known {
            Some(m) => diff.broadcast_mul(&m.unsqueeze(1)?)?,
            None => diff,
        };
        let err = diff.sum(2)?.reshape((b * k, h, w))?;
        Ok(to_cells(&err, shape.cells_y(), shape.cells_x())?
            .flatten_all()?
            .to_vec1::<f32>()?)
    }
}

fn pool(x: &Tensor, f: usize) -> Result<Tensor> {
    Ok(if f == 1 { x.clone() } else { x.avg_pool2d(f)? })
}

/// Turns each condition's errors into ranks per cell and adds them, weighted
/// (`MultiGuidedSampler` in the reference); one condition keeps its raw errors.
fn combined_scores(errors: &[Vec<f32>], weights: &[f64], shape: LayerShape) -> Vec<f32> {
    if errors.len() == 1 {
        return errors[0].clone();
    }
    let cells = shape.cells();
    let mut total = vec![0f32; errors[0].len()];
    for (err, &w) in errors.iter().zip(weights) {
        for b in 0..shape.batch {
            for c in 0..cells {
                let at = |k: usize| (b * shape.k + k) * cells + c;
                let mut order: Vec<usize> = (0..shape.k).collect();
                order.sort_by(|&x, &y| err[at(x)].total_cmp(&err[at(y)]).then(x.cmp(&y)));
                for (rank, &k) in order.iter().enumerate() {
                    total[at(k)] += (w * rank as f64) as f32;
                }
            }
        }
    }
    total
}

/// The smallest weight of the residual energy next to the conditions' scores: enough to
/// break ties only.
pub const TIE_BREAK: f32 = 1e-4;

/// Picks per cell the best candidate (`top = 1`) or one of the best `top` at random.
pub struct GuidedChooser {
    pub conditions: Vec<Condition>,
    pub top: usize,
    pub rng: Rng,
    /// Weight of each candidate's residual energy (how far it moves the image) added to
    /// its score: a prior for small, smooth steps. [`TIE_BREAK`] only breaks ties.
    pub smoothness: f32,
}

impl Chooser for GuidedChooser {
    fn choose(&mut self, _layer: usize, candidates: &Candidates) -> Result<Vec<u32>> {
        // Keep (index K, no change) competes as one more candidate.
        let shape = LayerShape {
            k: candidates.shape.k + 1,
            ..candidates.shape
        };
        let images = Tensor::cat(
            &[&candidates.images()?, &candidates.previous().unsqueeze(1)?],
            1,
        )?;
        let errors = self
            .conditions
            .iter()
            .map(|c| c.cell_errors(&images, shape))
            .collect::<Result<Vec<_>>>()?;
        let weights: Vec<f64> = self.conditions.iter().map(|c| c.weight).collect();
        let mut scores = combined_scores(&errors, &weights, shape);
        // Where the conditions cannot tell candidates apart (a cell with no known pixel,
        // detail finer than a low-resolution input), the smallest step from the previous
        // image wins, keep first: no arbitrary texture where nothing asks for it.
        let energy = candidates.residual_energy()?;
        let cells = shape.cells();
        for b in 0..shape.batch {
            for k in 0..shape.k - 1 {
                for c in 0..cells {
                    scores[(b * shape.k + k) * cells + c] +=
                        self.smoothness * energy[(b * (shape.k - 1) + k) * cells + c];
                }
            }
        }
        let top = self.top.clamp(1, shape.k);
        let mut out = Vec::with_capacity(shape.batch * cells);
        for b in 0..shape.batch {
            for c in 0..cells {
                let s = ddl::distances_of_cell(&scores, shape, b, c);
                let mut order: Vec<usize> = (0..shape.k).collect();
                order.sort_by(|&x, &y| s[x].total_cmp(&s[y]).then(x.cmp(&y)));
                let pick = if top == 1 {
                    0
                } else {
                    self.rng.below(top as u64) as usize
                };
                out.push(order[pick] as u32);
            }
        }
        Ok(out)
    }
}

/// Keeps a uniformly random candidate in every cell: the generative side of DDN.
pub struct RandomChooser {
    pub rng: Rng,
}

impl Chooser for RandomChooser {
    fn choose(&mut self, _layer: usize, candidates: &Candidates) -> Result<Vec<u32>> {
        Ok(ddl::random_indices(&mut self.rng, candidates.shape))
    }
}
