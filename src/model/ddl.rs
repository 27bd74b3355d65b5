//! The Discrete Distribution Layer (DDL), patch-wise.
//!
//! A bias-free 1×1 head turns the layer's features into K candidate residuals; each
//! candidate is the previous chosen image plus its residual. Every cell — a square of
//! `2^cell_log2` grid pixels — then keeps one candidate: the nearest to the target when
//! encoding or training, a given index when decoding, or whatever a scorer prefers.

use candle_core::{Tensor, D};
use rayon::prelude::*;

use crate::error::Result;

/// Geometry of one layer applied to a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LayerShape {
    pub batch: usize,
    pub k: usize,
    /// Grid height and width.
    pub height: usize,
    pub width: usize,
    /// Cell side in grid pixels.
    pub cell: usize,
    /// Space-to-depth factor: features have one pixel per `s2d × s2d` grid pixels.
    pub s2d: usize,
}

impl LayerShape {
    pub fn cells_y(&self) -> usize {
        self.height / self.cell
    }
    pub fn cells_x(&self) -> usize {
        self.width / self.cell
    }
    /// Cells of one batch item.
    pub fn cells(&self) -> usize {
        self.cells_y() * self.cells_x()
    }
}

/// The K candidates of one layer for a batch, kept as the head's raw output so that the
/// distances to a target can be computed in one pass without materialising K images.
pub struct Candidates {
    /// `[B, K·3·s2d², hf, wf]`: node `k`'s residual occupies channels `k·3·s2d²..`, in
    /// pixel-shuffle order.
    residuals: Tensor,
    /// The previous chosen image `[B,3,h,w]`, which every candidate adds its residual to.
    prev: Tensor,
    pub shape: LayerShape,
}

impl Candidates {
    /// Evaluates every node of `head` on `feat` (no gradient is kept).
    pub fn new(feat: &Tensor, head: &Tensor, prev: &Tensor, shape: LayerShape) -> Result<Self> {
        Ok(Candidates {
            residuals: feat.detach().conv2d(&head.detach(), 0, 1, 1, 1)?,
            prev: prev.detach(),
            shape,
        })
    }

    /// The image every candidate adds its residual to (what *keep* leaves), `[B,3,h,w]`.
    pub fn previous(&self) -> &Tensor {
        &self.prev
    }

    /// All K candidate images, `[B,K,3,h,w]`.
    pub fn images(&self) -> Result<Tensor> {
        let s = self.shape;
        let (_, _, hf, wf) = self.residuals.dims4()?;
        let per_node = self
            .residuals
            .reshape((s.batch * s.k, 3 * s.s2d * s.s2d, hf, wf))?;
        let images =
            pixel_shuffle(&per_node, s.s2d)?.reshape((s.batch, s.k, 3, s.height, s.width))?;
        Ok(images.broadcast_add(&self.prev.unsqueeze(1)?)?)
    }

    /// Sum of squared residuals (how far each candidate moves from the previous image),
    /// `[B, K, cells]` flattened.
    pub fn residual_energy(&self) -> Result<Vec<f32>> {
        // The distance to the previous image itself is the residual's own energy.
        self.cell_distances(&self.prev)
    }

    /// Sum of squared errors of the previous image against `target` over every cell,
    /// `[B, cells]` flattened: the distance of *keep*.
    pub fn keep_distances(&self, target: &Tensor) -> Result<Vec<f32>> {
        let s = self.shape;
        let error = (target.detach() - &self.prev)?
            .flatten_all()?
            .to_vec1::<f32>()?;
        let plane = 3 * s.height * s.width;
        let mut out = vec![0f32; s.batch * s.cells()];
        for (b, acc) in out.chunks_mut(s.cells()).enumerate() {
            for (i, e) in error[b * plane..(b + 1) * plane].iter().enumerate() {
                let (y, x) = ((i / s.width) % s.height, i % s.width);
                acc[(y / s.cell) * s.cells_x() + x / s.cell] += e * e;
            }
        }
        Ok(out)
    }

    /// Sum of squared errors against `target` (`[B,3,h,w]`) of every candidate over every
    /// cell, `[B, K, cells]` flattened.
    pub fn cell_distances(&self, target: &Tensor) -> Result<Vec<f32>> {
        let s = self.shape;
        let residuals = self.residuals.flatten_all()?.to_vec1::<f32>()?;
        let error = (target.detach() - &self.prev)?
            .flatten_all()?
            .to_vec1::<f32>()?;
        let cells = s.cells();
        let mut out = vec![0f32; s.batch * s.k * cells];
        out.par_chunks_mut(cells).enumerate().for_each(|(bk, acc)| {
            let b = bk / s.k;
            let plane = 3 * s.height * s.width;
            let res = &residuals[bk * plane..(bk + 1) * plane];
            accumulate_cell_errors(acc, res, &error[b * plane..(b + 1) * plane], s);
        });
        Ok(out)
    }
}

/// Adds `Σ (res - err)²` of one candidate into its cells; `res` is in the head's
/// space-to-depth order, `err` a plain `[3,h,w]` image.
fn accumulate_cell_errors(acc: &mut [f32], res: &[f32], err: &[f32], s: LayerShape) {
    let r = s.s2d;
    let (h, w) = (s.height, s.width);
    let (hf, wf) = (h / r, w / r);
    let cx = s.cells_x();
    let mut i = 0;
    for c in 0..3 {
        for dy in 0..r {
            for dx in 0..r {
                for fy in 0..hf {
                    let y = fy * r + dy;
                    let row = &err[(c * h + y) * w..];
                    let cell_row = (y / s.cell) * cx;
                    for fx in 0..wf {
                        let x = fx * r + dx;
                        let d = res[i] - row[x];
                        acc[cell_row + x / s.cell] += d * d;
                        i += 1;
                    }
                }
            }
        }
    }
}

fn pixel_shuffle(x: &Tensor, r: usize) -> Result<Tensor> {
    Ok(if r == 1 {
        x.clone()
    } else {
        candle_nn::ops::pixel_shuffle(x, r)?
    })
}

/// Index of the smallest of each run of `k` values; ties go to the lowest index.
pub fn argmin(values: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &v) in values.iter().enumerate().skip(1) {
        if v < values[best] {
            best = i;
        }
    }
    best as u32
}

/// The distances of cell `cell` of item `b` for all K candidates.
pub fn distances_of_cell(dist: &[f32], shape: LayerShape, b: usize, cell: usize) -> Vec<f32> {
    let cells = shape.cells();
    (0..shape.k)
        .map(|k| dist[(b * shape.k + k) * cells + cell])
        .collect()
}

/// The nearest candidate of every cell, `[B, cells]` flattened.
pub fn nearest(dist: &[f32], shape: LayerShape) -> Vec<u32> {
    (0..shape.batch)
        .flat_map(|b| (0..shape.cells()).map(move |c| (b, c)))
        .map(|(b, c)| argmin(&distances_of_cell(dist, shape, b, c)))
        .collect()
}

/// The chosen node of every feature pixel, `[B, h/s2d, w/s2d]` flattened, from per-cell
/// indices `[B, cells]`.
fn feature_pixel_indices(indices: &[u32], shape: LayerShape) -> Vec<u32> {
    let r = shape.s2d;
    let (hf, wf, cx) = (shape.height / r, shape.width / r, shape.cells_x());
    let cells = shape.cells();
    let mut out = Vec::with_capacity(shape.batch * hf * wf);
    for b in 0..shape.batch {
        for fy in 0..hf {
            let row = &indices[b * cells + (fy * r / shape.cell) * cx..];
            out.extend((0..wf).map(|fx| row[fx * r / shape.cell]));
        }
    }
    out
}

/// The chosen candidate of every cell, `[B,3,h,w]`, computed on its own: each feature
/// pixel applies only its chosen node's head rows; index `K` keeps the cell unchanged.
/// In training this is where the gradient flows, so only chosen nodes receive any.
pub fn replay_chosen(
    feat: &Tensor,
    head: &Tensor,
    prev: &Tensor,
    indices: &[u32],
    shape: LayerShape,
) -> Result<Tensor> {
    let (b, c, hf, wf) = feat.dims4()?;
    let per_node = 3 * shape.s2d * shape.s2d;
    let mut rows = head.reshape((shape.k, per_node * c))?;
    if indices.iter().any(|&i| i as usize == shape.k) {
        // Index K is *keep*: a node whose residual is zero.
        let zero = Tensor::zeros((1, per_node * c), rows.dtype(), rows.device())?;
        rows = Tensor::cat(&[&rows, &zero], 0)?;
    }
    let map = Tensor::from_vec(
        feature_pixel_indices(indices, shape),
        b * hf * wf,
        feat.device(),
    )?;
    let weights = rows
        .index_select(&map, 0)?
        .reshape((b, hf, wf, per_node, c))?;
    let residual = weights
        .broadcast_mul(&feat.permute((0, 2, 3, 1))?.unsqueeze(3)?)?
        .sum(D::Minus1)?
        .permute((0, 3, 1, 2))?
        .contiguous()?;
    Ok((pixel_shuffle(&residual, shape.s2d)? + prev)?)
}

/// [`replay_chosen`] for walks without gradient (coding): the same pixels from plain
/// dot products per feature pixel, with no `[pixels, 3·s2d², C]` gathered weight tensor.
/// That tensor is hundreds of megabytes at full resolution, and fresh pages for it cost
/// more than the arithmetic.
pub fn replay_chosen_direct(
    feat: &Tensor,
    head: &Tensor,
    prev: &Tensor,
    indices: &[u32],
    shape: LayerShape,
) -> Result<Tensor> {
    let (b, c, hf, wf) = feat.dims4()?;
    let per_node = 3 * shape.s2d * shape.s2d;
    let plane = hf * wf;
    // [B, pixels, C]: each pixel's features contiguous.
    let feat = feat
        .permute((0, 2, 3, 1))?
        .flatten_all()?
        .to_vec1::<f32>()?;
    let head = head.flatten_all()?.to_vec1::<f32>()?;
    let nodes = feature_pixel_indices(indices, shape);
    let mut out = vec![0f32; b * per_node * plane];
    out.par_chunks_mut(plane).enumerate().for_each(|(bc, dst)| {
        let (item, ch) = (bc / per_node, bc % per_node);
        for (px, v) in dst.iter_mut().enumerate() {
            let k = nodes[item * plane + px] as usize;
            if k < shape.k {
                let row = &head[(k * per_node + ch) * c..][..c];
                let x = &feat[(item * plane + px) * c..][..c];
                *v = row.iter().zip(x).map(|(a, b)| a * b).sum();
            }
        }
    });
    let residual = Tensor::from_vec(out, (b, per_node, hf, wf), prev.device())?;
    Ok((pixel_shuffle(&residual, shape.s2d)? + prev)?)
}

/// Mean squared error of two tensors as a scalar tensor.
pub fn mse(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    Ok((a - b)?.sqr()?.mean_all()?)
}

/// Uniformly random indices, `[B, cells]`.
pub fn random_indices(rng: &mut crate::rng::Rng, shape: LayerShape) -> Vec<u32> {
    (0..shape.batch * shape.cells())
        .map(|_| rng.below(shape.k as u64) as u32)
        .collect()
}
