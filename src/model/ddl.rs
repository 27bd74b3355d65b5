//! The Discrete Distribution Layer (DDL), patch-wise.
//!
//! A bias-free 1×1 head turns the layer's features into K candidate residuals; each
//! candidate is the previous chosen image plus its residual. Every cell — a square of
//! `2^cell_log2` grid pixels — then keeps one candidate: the nearest to the target when
//! encoding or training, a given index when decoding, or whatever a scorer prefers.

use candle_core::Tensor;
use rayon::prelude::*;

use super::conv::with_f32s;
use super::gemm::{gemm, Threads};
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

/// The K candidates of one layer for a batch, kept as the layer's features and head so
/// that the distances to a target can be computed without materialising K images.
pub struct Candidates {
    /// `[B, C, hf, wf]`.
    feat: Tensor,
    /// `[K·3·s2d², C, 1, 1]`: node `k`'s residual is channels `k·3·s2d²..` of the head
    /// applied to the features, in pixel-shuffle order.
    head: Tensor,
    /// The previous chosen image `[B,3,h,w]`, which every candidate adds its residual to.
    prev: Tensor,
    pub shape: LayerShape,
}

impl Candidates {
    /// Every node of `head` on `feat` (no gradient is kept).
    pub fn new(feat: &Tensor, head: &Tensor, prev: &Tensor, shape: LayerShape) -> Result<Self> {
        Ok(Candidates {
            feat: feat.detach(),
            head: head.detach(),
            prev: prev.detach(),
            shape,
        })
    }

    /// `[B, K·3·s2d², hf, wf]`.
    fn residuals(&self) -> Result<Tensor> {
        Ok(self.feat.conv2d(&self.head, 0, 1, 1, 1)?)
    }

    /// The image every candidate adds its residual to (what *keep* leaves), `[B,3,h,w]`.
    pub fn previous(&self) -> &Tensor {
        &self.prev
    }

    /// All K candidate images, `[B,K,3,h,w]`.
    pub fn images(&self) -> Result<Tensor> {
        let s = self.shape;
        let residuals = self.residuals()?;
        let (_, _, hf, wf) = residuals.dims4()?;
        let per_node = residuals.reshape((s.batch * s.k, 3 * s.s2d * s.s2d, hf, wf))?;
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

    /// The distances of every candidate (`[B, K, cells]`) and of *keep* (`[B, cells]`, the
    /// previous image's own squared error) to `target`, from one error image.
    pub fn cell_and_keep_distances(&self, target: &Tensor) -> Result<(Vec<f32>, Vec<f32>)> {
        let error = self.error(target)?;
        let keep = self.keep_from_error(&error);
        let distances = if !self.feat.device().is_cpu() {
            self.cell_distances_on_device(target)?
        } else if gram_pays(self.shape, self.feat.dim(1)?) {
            self.cell_distances_by_gram(&error, &keep)?
        } else {
            self.cell_distances_by_bands(&error)?
        };
        Ok((distances, keep))
    }

    /// Sum of squared errors against `target` (`[B,3,h,w]`) of every candidate over every
    /// cell, `[B, K, cells]` flattened.
    pub fn cell_distances(&self, target: &Tensor) -> Result<Vec<f32>> {
        if self.feat.device().is_cpu() {
            self.cell_distances_by_bands(&self.error(target)?)
        } else {
            self.cell_distances_on_device(target)
        }
    }

    /// `target − previous`, `[B,3,h,w]` flattened.
    fn error(&self, target: &Tensor) -> Result<Vec<f32>> {
        Ok((target.detach() - &self.prev)?
            .flatten_all()?
            .to_vec1::<f32>()?)
    }

    fn keep_from_error(&self, error: &[f32]) -> Vec<f32> {
        let s = self.shape;
        let (cx, shift) = (s.cells_x(), s.cell.trailing_zeros());
        let mut out = vec![0f32; s.batch * s.cells()];
        for (b, acc) in out.chunks_mut(s.cells()).enumerate() {
            for (row, y) in error[b * 3 * s.height * s.width..]
                .chunks(s.width)
                .zip((0..s.height).cycle())
                .take(3 * s.height)
            {
                let acc = &mut acc[(y >> shift) * cx..][..cx];
                for (x, e) in row.iter().enumerate() {
                    acc[x >> shift] += e * e;
                }
            }
        }
        out
    }

    /// Where the tensors live (an accelerator): the K candidate images are made there and
    /// only the per-cell sums come back, `[B, K, cells]` rather than `[B, K, 3, h, w]`.
    fn cell_distances_on_device(&self, target: &Tensor) -> Result<Vec<f32>> {
        let s = self.shape;
        let squared = self
            .images()?
            .broadcast_sub(&target.detach().unsqueeze(1)?)?
            .sqr()?
            .sum(2)?;
        let per_cell = squared
            .reshape((s.batch, s.k, s.cells_y(), s.cell, s.cells_x(), s.cell))?
            .sum(5)?
            .sum(3)?;
        Ok(per_cell.flatten_all()?.to_vec1::<f32>()?)
    }

    /// Band by band of cell rows, each band's residuals made by one small GEMM that stays
    /// in cache: the whole `[B,K,3,h,w]` residual tensor would be hundreds of MB per layer.
    fn cell_distances_by_bands(&self, error: &[f32]) -> Result<Vec<f32>> {
        let s = self.shape;
        let head = self.head.flatten_all()?.to_vec1::<f32>()?;
        let (channels, rows) = (self.feat.dim(1)?, head.len() / self.feat.dim(1)?);
        let (hf, wf) = (s.height / s.s2d, s.width / s.s2d);
        // A band is whole cell rows and whole feature rows.
        let band_grid_rows = s.cell.max(s.s2d);
        let (band_rows, band_cells) = (
            band_grid_rows / s.s2d,
            band_grid_rows / s.cell * s.cells_x(),
        );
        let bands = s.height / band_grid_rows;
        let per_band = self.map_bands(error, band_rows, |feat, band, err| {
            let mut res = vec![0f32; rows * band_rows * wf];
            gemm(
                (rows, band_rows * wf, channels),
                &mut res,
                false,
                &head,
                (channels, 1),
                &feat[band.feature_row * wf..],
                (hf * wf, 1),
                Threads::One,
            );
            let mut acc = vec![0f32; s.k * band_cells];
            let mut squares = vec![0f32; wf];
            for (node, acc) in acc.chunks_mut(band_cells).enumerate() {
                let res = &res[node * err.len()..][..err.len()];
                super::simd::widest(
                    #[inline(always)]
                    || accumulate_cell_errors(acc, res, err, &mut squares, s, band_rows),
                );
            }
            acc
        })?;
        let cells = s.cells();
        let mut out = vec![0f32; s.batch * s.k * cells];
        for (task, acc) in per_band.iter().enumerate() {
            let (b, band) = (task / bands, task % bands);
            for (node, src) in acc.chunks(band_cells).enumerate() {
                let at = (b * s.k + node) * cells + band * band_cells;
                out[at..at + band_cells].copy_from_slice(src);
            }
        }
        Ok(out)
    }

    /// `f(features, band, error)` for every band of `rows` feature rows of every batch
    /// item, in parallel: the item's features (`[channels, hf, wf]`) and the band's error
    /// in the head's layout ([`band_error`]); the results item by item, band by band.
    fn map_bands<T: Send>(
        &self,
        error: &[f32],
        rows: usize,
        f: impl Fn(&[f32], Band, &[f32]) -> T + Sync,
    ) -> Result<Vec<T>> {
        let s = self.shape;
        let bands = s.height / s.s2d / rows;
        let plane = 3 * s.height * s.width;
        let item = self.feat.dim(1)? * (s.height / s.s2d) * (s.width / s.s2d);
        Ok(with_f32s(&self.feat, |feat| {
            (0..s.batch * bands)
                .into_par_iter()
                .map(|task| {
                    let (b, band) = (task / bands, task % bands);
                    let band = Band {
                        feature_row: band * rows,
                        feature_rows: rows,
                    };
                    let err = band_error(&error[b * plane..(b + 1) * plane], s, band);
                    f(&feat[b * item..(b + 1) * item], band, &err)
                })
                .collect()
        })?)
    }

    /// The distances of [`Candidates::cell_distances_by_bands`] (to within rounding), made
    /// from each cell's sums instead of each candidate's residuals. A candidate's squared
    /// error over a cell is `‖ε‖² − 2⟨H_k, Σ f εᵀ⟩ + ⟨H_kᵀH_k, Σ f fᵀ⟩`, where `f` are the
    /// cell's feature pixels, `ε` the error (target − previous) at each in the head's
    /// layout, and `H_k` node `k`'s rows of the head. So one small product per cell (its
    /// features against themselves and the error, [`CellSums`]) and one per band of cells
    /// against every node's terms ([`NodeTerms`]) replace a product of every node's head
    /// with every feature pixel; `keep` (`[B, cells]`) gives `‖ε‖²`.
    fn cell_distances_by_gram(&self, error: &[f32], keep: &[f32]) -> Result<Vec<f32>> {
        let s = self.shape;
        let head = self.head.flatten_all()?.to_vec1::<f32>()?;
        let channels = self.feat.dim(1)?;
        let nodes = NodeTerms::new(&head, s.k, 3 * s.s2d * s.s2d, channels);
        let side = s.cell / s.s2d;
        let hf = s.height / s.s2d;
        let (bands, cx, cells) = (hf / side, s.cells_x(), s.cells());
        let per_band = self.map_bands(error, side, |feat, band, err| {
            let sums = CellSums::of_band(feat, err, s, channels, band);
            let mut out = vec![0f32; s.k * cx];
            gemm(
                (s.k, cx, nodes.width),
                &mut out,
                false,
                &nodes.terms,
                (nodes.width, 1),
                &sums.terms,
                (cx, 1),
                Threads::One,
            );
            out
        })?;
        let mut out = vec![0f32; s.batch * s.k * cells];
        for (task, terms) in per_band.iter().enumerate() {
            let (b, first) = (task / bands, task % bands * cx);
            let keep = &keep[b * cells + first..][..cx];
            for (node, terms) in terms.chunks(cx).enumerate() {
                let at = (b * s.k + node) * cells + first;
                for ((d, t), e) in out[at..at + cx].iter_mut().zip(terms).zip(keep) {
                    // Rounding may take a near-perfect candidate a hair below zero.
                    *d = (e + t).max(0.0);
                }
            }
        }
        Ok(out)
    }
}

/// Each node's least-squares sums over the cells that chose it (see
/// [`Candidates::add_node_sums`]): `[K, width]` in [`CellSums`]' layout (the upper triangle
/// of `Σ f fᵀ`, then `Σ f εᵀ` channel-major), in f64 as they sum millions of cells.
#[derive(Debug, Clone)]
pub struct NodeSums {
    pub channels: usize,
    /// Residual planes per feature pixel, `3·s2d²`.
    pub planes: usize,
    pub terms: Vec<f64>,
    /// Cells summed per node.
    pub cells: Vec<u64>,
}

impl NodeSums {
    pub fn new(k: usize, channels: usize, planes: usize) -> Self {
        NodeSums {
            channels,
            planes,
            terms: vec![0.0; k * NodeTerms::width(channels, planes)],
            cells: vec![0; k],
        }
    }

    pub fn width(&self) -> usize {
        NodeTerms::width(self.channels, self.planes)
    }
}

impl Candidates {
    /// Whether [`Candidates::add_node_sums`] can sum this layer: each cell holds whole
    /// feature pixels.
    pub fn has_node_sums(&self) -> bool {
        self.shape.cell >= self.shape.s2d
    }

    /// Sums for this layer's nodes with no cell yet.
    pub fn empty_node_sums(&self) -> NodeSums {
        let channels = self.feat.dim(1).expect("features [B, C, h, w]");
        NodeSums::new(self.shape.k, channels, 3 * self.shape.s2d * self.shape.s2d)
    }

    /// Adds, for every cell whose index in `indices` (`[B·cells]`) is a node (not keep),
    /// the cell's feature Gram matrix and feature-error products against `target` to that
    /// node's sums: what a least-squares fit of the node's rows of the head to the errors
    /// of the cells it codes needs.
    pub fn add_node_sums(
        &self,
        target: &Tensor,
        indices: &[u32],
        sums: &mut NodeSums,
    ) -> Result<()> {
        let s = self.shape;
        assert!(self.has_node_sums(), "cells of whole feature pixels");
        let channels = self.feat.dim(1)?;
        let width = sums.width();
        let side = s.cell / s.s2d;
        let (bands, cx, cells) = (s.height / s.s2d / side, s.cells_x(), s.cells());
        let error = self.error(target)?;
        let per_band = self.map_bands(&error, side, |feat, band, err| {
            CellSums::of_band(feat, err, s, channels, band)
        })?;
        for (task, band) in per_band.iter().enumerate() {
            let (b, first) = (task / bands, task % bands * cx);
            for x in 0..cx {
                let node = indices[b * cells + first + x] as usize;
                if node >= s.k {
                    continue;
                }
                sums.cells[node] += 1;
                let acc = &mut sums.terms[node * width..][..width];
                for (a, t) in acc.iter_mut().zip(band.terms[x..].iter().step_by(cx)) {
                    *a += *t as f64;
                }
            }
        }
        Ok(())
    }
}

/// Whether [`Candidates::cell_distances_by_gram`] does at most half the multiplications
/// of [`Candidates::cell_distances_by_bands`] for a layer of this shape and `channels`
/// feature channels: where a cell holds many feature pixels (model v6's 8×8-pixel cells
/// at full resolution: 16 feature pixels of 48 channels, about a quarter).
fn gram_pays(s: LayerShape, channels: usize) -> bool {
    if s.cell < s.s2d {
        return false;
    }
    let pixels = (s.cell / s.s2d).pow(2);
    let planes = 3 * s.s2d * s.s2d;
    let direct = s.k * planes * channels * pixels;
    let by_gram =
        channels * (channels + planes) * pixels + s.k * NodeTerms::width(channels, planes);
    2 * by_gram <= direct
}

/// Each node's side of [`Candidates::cell_distances_by_gram`], `[K, width]`: the upper
/// triangle of `H_kᵀH_k` (row by row, the terms off the diagonal doubled, as the Gram
/// matrix is symmetric), then `−2·H_k` laid out as [`CellSums`] lays out `Σ f εᵀ`.
struct NodeTerms {
    terms: Vec<f32>,
    width: usize,
}

impl NodeTerms {
    /// `head` is `[K·planes, channels]`, node `k`'s rows `k·planes..`.
    fn new(head: &[f32], k: usize, planes: usize, channels: usize) -> Self {
        let width = Self::width(channels, planes);
        let mut terms = Vec::with_capacity(k * width);
        for h in head.chunks_exact(planes * channels).take(k) {
            let column = |c: usize| (0..planes).map(move |q| h[q * channels + c]);
            for i in 0..channels {
                for j in i..channels {
                    let g: f32 = column(i).zip(column(j)).map(|(a, b)| a * b).sum();
                    terms.push(if i == j { g } else { 2.0 * g });
                }
            }
            for c in 0..channels {
                terms.extend(column(c).map(|v| -2.0 * v));
            }
        }
        NodeTerms { terms, width }
    }

    fn width(channels: usize, planes: usize) -> usize {
        channels * (channels + 1) / 2 + channels * planes
    }
}

/// Each cell's side of [`Candidates::cell_distances_by_gram`] for one band of cells (one
/// cell high), `[width, cells_x]` (a column per cell, its terms as [`NodeTerms`] lays out
/// a node's): the upper triangle of `Σ f fᵀ`, then `Σ f εᵀ` (channel-major).
struct CellSums {
    terms: Vec<f32>,
}

/// Cells whose sums are made together, one per vector lane.
const LANES: usize = 16;

impl CellSums {
    /// `feat` is one batch item's `[channels, hf, wf]`, `err` the band's error in the
    /// head's layout ([`band_error`]).
    fn of_band(feat: &[f32], err: &[f32], s: LayerShape, channels: usize, band: Band) -> Self {
        let (side, wf, hf) = (band.feature_rows, s.width / s.s2d, s.height / s.s2d);
        let planes = 3 * s.s2d * s.s2d;
        let cx = s.cells_x();
        let mut terms = vec![0f32; NodeTerms::width(channels, planes) * cx];
        // `[channel or error plane][pixel of the cell]` of `LANES` cells side by side.
        let mut lanes = vec![[0f32; LANES]; (channels + planes) * side * side];
        for first in (0..cx).step_by(LANES) {
            let n = LANES.min(cx - first);
            for (row, dst) in lanes.chunks_exact_mut(side).enumerate() {
                let (plane, y) = (row / side, row % side);
                let src = if plane < channels {
                    &feat[(plane * hf + band.feature_row + y) * wf..][..wf]
                } else {
                    &err[((plane - channels) * side + y) * wf..][..wf]
                };
                for (x, lane) in dst.iter_mut().enumerate() {
                    *lane = [0.0; LANES];
                    for (l, v) in lane[..n].iter_mut().enumerate() {
                        *v = src[(first + l) * side + x];
                    }
                }
            }
            super::simd::widest(
                #[inline(always)]
                || write_products(&mut terms, &lanes, (channels, planes), (first, n), cx),
            );
        }
        CellSums { terms }
    }
}

/// Writes the products of [`CellSums::of_band`] for the `n` cells from `first` into their
/// columns of `terms`, each lane its own cell's sum over the cell's pixels.
#[inline(always)]
fn write_products(
    terms: &mut [f32],
    lanes: &[[f32; LANES]],
    (channels, planes): (usize, usize),
    (first, n): (usize, usize),
    cx: usize,
) {
    let pixels = lanes.len() / (channels + planes);
    let row = |r: usize| &lanes[r * pixels..(r + 1) * pixels];
    let mut t = 0;
    let mut store = |sums: [f32; LANES]| {
        terms[t * cx + first..][..n].copy_from_slice(&sums[..n]);
        t += 1;
    };
    let dot = |a: &[[f32; LANES]], b: &[[f32; LANES]]| {
        let mut acc = [0f32; LANES];
        for (u, v) in a.iter().zip(b) {
            for l in 0..LANES {
                acc[l] += u[l] * v[l];
            }
        }
        acc
    };
    for i in 0..channels {
        for j in i..channels {
            store(dot(row(i), row(j)));
        }
    }
    for c in 0..channels {
        for q in 0..planes {
            store(dot(row(c), row(channels + q)));
        }
    }
}

/// Feature rows `feature_row..feature_row + feature_rows` of a layer.
#[derive(Debug, Clone, Copy)]
struct Band {
    feature_row: usize,
    feature_rows: usize,
}

/// One band of the plain `[3,h,w]` error image laid out as the head lays out a candidate's
/// residual: `[3·s2d², band rows, wf]`, plane `(c·s2d + dy)·s2d + dx` holding grid pixel
/// `(fy·s2d + dy, fx·s2d + dx)` of channel `c`. Then a residual and the error meet
/// element by element.
fn band_error(err: &[f32], s: LayerShape, band: Band) -> Vec<f32> {
    let r = s.s2d;
    let (h, w) = (s.height, s.width);
    let mut out = Vec::with_capacity(3 * r * r * band.feature_rows * (w / r));
    for c in 0..3 {
        for dy in 0..r {
            for dx in 0..r {
                for fy in band.feature_row..band.feature_row + band.feature_rows {
                    let y = fy * r + dy;
                    let row = &err[(c * h + y) * w..(c * h + y + 1) * w];
                    out.extend(row[dx..].iter().step_by(r));
                }
            }
        }
    }
    out
}

/// Adds `Σ (res − err)²` of one candidate over one band of `rows` feature rows into that
/// band's cells; `res` and `err` are both in the head's layout ([`band_error`]), `squares`
/// is scratch of one feature row. Each cell adds its terms in the order of the planes, rows
/// and columns, as it always has: the encoder's choices, and so its files, depend on these
/// sums bit for bit.
///
/// Inlined, so that a caller in [`super::simd::widest`] gets it compiled for AVX-512.
#[inline(always)]
fn accumulate_cell_errors(
    acc: &mut [f32],
    res: &[f32],
    err: &[f32],
    squares: &mut [f32],
    s: LayerShape,
    rows: usize,
) {
    let r = s.s2d;
    let wf = s.width / r;
    let cx = s.cells_x();
    // Cells and s2d are powers of two: shifts, not divisions, in the inner loop.
    let cell_shift = s.cell.trailing_zeros();
    let mut i = 0;
    for _c in 0..3 {
        for dy in 0..r {
            for dx in 0..r {
                for fy in 0..rows {
                    let acc = &mut acc[((fy * r + dy) >> cell_shift) * cx..][..cx];
                    let (res, err) = (&res[i..i + wf], &err[i..i + wf]);
                    for ((q, x), e) in squares.iter_mut().zip(res).zip(err) {
                        *q = (x - e) * (x - e);
                    }
                    match s.cell / r {
                        0 => {
                            // A feature pixel spans cells: each term to its own cell.
                            for (fx, q) in squares.iter().enumerate() {
                                acc[(fx * r + dx) >> cell_shift] += q;
                            }
                        }
                        1 => add_runs::<1>(acc, squares),
                        2 => add_runs::<2>(acc, squares),
                        4 => add_runs::<4>(acc, squares),
                        8 => add_runs::<8>(acc, squares),
                        m => acc
                            .iter_mut()
                            .zip(squares.chunks_exact(m))
                            .for_each(|(a, run)| run.iter().for_each(|q| *a += q)),
                    }
                    i += wf;
                }
            }
        }
    }
}

/// `acc[c] += run[0]; … += run[M−1]` for each cell's run of `M` terms, in that order; with
/// `M` known, the cells of a row go through the vector units together.
#[inline(always)]
fn add_runs<const M: usize>(acc: &mut [f32], squares: &[f32]) {
    for (a, run) in acc.iter_mut().zip(squares.chunks_exact(M)) {
        for q in run {
            *a += q;
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

/// Index of the smallest value; ties go to the lowest index.
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
///
/// Every node's residual at every feature pixel comes from one GEMM (`[pixels, C]` by
/// `[C, K·3·s2d²]`, a few GFLOP), and the chosen node's values are gathered from it; the
/// backward pass is then a scatter and two GEMMs. Gathering each pixel's head rows instead
/// (`[pixels, 3·s2d², C]`) and multiplying element-wise spent most of a training step in
/// broadcast and reduction kernels on the CPU, and on a GPU the gather's gradient (candle's
/// `index_add`) looped over every pixel in one thread per column.
pub fn replay_chosen(
    feat: &Tensor,
    head: &Tensor,
    prev: &Tensor,
    indices: &[u32],
    shape: LayerShape,
) -> Result<Tensor> {
    let (b, c, hf, wf) = feat.dims4()?;
    let per_node = 3 * shape.s2d * shape.s2d;
    let pixels = b * hf * wf;
    let mut rows = head.reshape((shape.k * per_node, c))?;
    let nodes = feature_pixel_indices(indices, shape);
    if nodes.iter().any(|&i| i as usize == shape.k) {
        // Index K is *keep*: a node whose residual is zero (zero rows, so the product
        // makes its columns without a copy of the whole result).
        let zero = Tensor::zeros((per_node, c), rows.dtype(), rows.device())?;
        rows = Tensor::cat(&[&rows, &zero], 0)?;
    }
    let all = feat
        .permute((0, 2, 3, 1))?
        .contiguous()?
        .reshape((pixels, c))?
        .matmul(&rows.t()?)?;
    let columns: Vec<u32> = nodes
        .iter()
        .flat_map(|&k| (0..per_node as u32).map(move |j| k * per_node as u32 + j))
        .collect();
    let columns = Tensor::from_vec(columns, (pixels, per_node), feat.device())?;
    let residual = all
        .gather(&columns, 1)?
        .reshape((b, hf, wf, per_node))?
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
    if !feat.device().is_cpu() {
        // An accelerator has the memory for the gathered weights, and the data stays on it.
        return replay_chosen(feat, head, prev, indices, shape);
    }
    let (b, c, hf, wf) = feat.dims4()?;
    let per_node = 3 * shape.s2d * shape.s2d;
    let plane = hf * wf;
    let head = head_by_channel(
        &head.flatten_all()?.to_vec1::<f32>()?,
        (shape.k, per_node, c),
    );
    let nodes = feature_pixel_indices(indices, shape);
    // Blocks of pixels, each with all its output channels: the block's features are read
    // from memory once for all of them, where a task per output plane read every feature
    // plane once per output channel.
    let blocks = plane.div_ceil(BLOCK);
    let mut staged = vec![0f32; b * blocks * per_node * BLOCK];
    // [B, C, pixels]: as the conv made it, read where it lies.
    with_f32s(feat, |feat| {
        staged
            .par_chunks_mut(per_node * BLOCK)
            .enumerate()
            .for_each(|(task, dst)| {
                let (item, px0) = (task / blocks, task % blocks * BLOCK);
                let nodes = &nodes[item * plane + px0..];
                let feat = &feat[item * c * plane + px0..(item + 1) * c * plane];
                let n = BLOCK.min(plane - px0);
                chosen_residuals(dst, BLOCK, (feat, c, plane), n, (nodes, &head, shape.k));
            })
    })?;
    // The residuals go straight to their grid pixels (candle's pixel shuffle) onto the
    // previous image: `prev + r` has the bits of the `r + prev` of separate ops.
    let (_, _, h, w) = prev.dims4()?;
    let r = shape.s2d;
    let mut image = prev.flatten_all()?.to_vec1::<f32>()?;
    image.par_chunks_mut(w).enumerate().for_each(|(row, line)| {
        let (item, color, y) = (row / h / 3, row / h % 3, row % h);
        for (x, v) in line.iter_mut().enumerate() {
            let (px, ch) = ((y / r) * wf + x / r, (color * r + y % r) * r + x % r);
            *v += staged[((item * blocks + px / BLOCK) * per_node + ch) * BLOCK + px % BLOCK];
        }
    });
    Ok(Tensor::from_vec(image, (b, 3, h, w), prev.device())?)
}

/// The head's `[K·P, C]` weights as `[K, C, P]`: a pixel's `P` sums then step through
/// its node's weights in the order of the feature channel, `P` at a time.
fn head_by_channel(head: &[f32], (k, p, c): (usize, usize, usize)) -> Vec<f32> {
    let mut out = vec![0f32; k * c * p];
    for node in 0..k {
        for ch in 0..p {
            for j in 0..c {
                out[(node * c + j) * p + ch] = head[(node * p + ch) * c + j];
            }
        }
    }
    out
}

/// `dst[ch · stride + px] = Σ_j w[j][ch] · feat[j·plane + px]` (`j < c`) for the first `n`
/// pixels, `w` the `[C, P]` weights ([`head_by_channel`]) of the pixel's node
/// `nodes[px]`, each sum in order of `j` from the first product (what `f32`'s `Sum`
/// gives, bit for bit: decoding depends on it). Only the pixels that code pay for
/// products: a pixel whose node is `k` or more keeps its cell and gets −0 in every
/// channel.
///
/// That −0 stands for a sum of zero products, whose sign would depend on the features:
/// added to the previous image, −0 leaves every pixel as it was, where +0 would turn a −0
/// pixel into +0. No later operation of the network (sums, products, `e^x`, division by
/// `1 + e^−v`, rounding to 8 bits) turns a zero's sign into a different number, so a
/// decoded image is the same either way.
fn chosen_residuals(
    dst: &mut [f32],
    stride: usize,
    feat: (&[f32], usize, usize),
    n: usize,
    (nodes, weights, k): (&[u32], &[f32], usize),
) {
    super::simd::widest(
        #[inline(always)]
        || chosen_residuals_by_width(dst, stride, feat, n, (nodes, weights, k)),
    )
}

/// [`chosen_residuals`] with the sums of a pixel in registers for the usual widths
/// (`P = 3·s2d²`: 3 or 12).
#[inline(always)]
fn chosen_residuals_by_width(
    dst: &mut [f32],
    stride: usize,
    feat: (&[f32], usize, usize),
    n: usize,
    node_weights: (&[u32], &[f32], usize),
) {
    match dst.len() / stride {
        3 => residuals_into(&mut [0.0; 3], dst, stride, feat, n, node_weights),
        12 => residuals_into(&mut [0.0; 12], dst, stride, feat, n, node_weights),
        p => residuals_into(&mut vec![0.0; p], dst, stride, feat, n, node_weights),
    }
}

/// [`chosen_residuals`] with `sums`, one pixel's `P` sums, for scratch: an array of a
/// known length stays in registers once this is inlined.
#[inline(always)]
fn residuals_into(
    sums: &mut [f32],
    dst: &mut [f32],
    stride: usize,
    (feat, c, plane): (&[f32], usize, usize),
    n: usize,
    (nodes, weights, k): (&[u32], &[f32], usize),
) {
    let p = sums.len();
    for px in 0..n {
        let node = nodes[px] as usize;
        sums.fill(-0.0);
        if node < k {
            let w = &weights[node * c * p..][..c * p];
            for (j, w) in w.chunks_exact(p).enumerate() {
                let x = feat[j * plane + px];
                if j == 0 {
                    sums.iter_mut().zip(w).for_each(|(s, w)| *s = w * x);
                } else {
                    sums.iter_mut().zip(w).for_each(|(s, w)| *s += w * x);
                }
            }
        }
        for (ch, &s) in sums.iter().enumerate() {
            dst[ch * stride + px] = s;
        }
    }
}

/// Pixels per task of [`replay_chosen_direct`]: dozens of tasks for a full-resolution layer.
const BLOCK: usize = 2048;

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

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, D};

    fn random(shape: &[usize], seed: u64) -> Tensor {
        let mut rng = crate::rng::Rng::new(seed);
        let data: Vec<f32> = (0..shape.iter().product())
            .map(|_| rng.uniform() as f32 - 0.5)
            .collect();
        Tensor::from_vec(data, shape, &Device::Cpu).unwrap()
    }

    /// A layer of 5 nodes over a batch of 2 with 6 feature channels, and random features,
    /// head and previous image for it.
    fn small_layer(
        cell: usize,
        s2d: usize,
        height: usize,
        width: usize,
    ) -> (LayerShape, [Tensor; 3]) {
        let (batch, k, channels) = (2, 5, 6);
        let shape = LayerShape {
            batch,
            k,
            height,
            width,
            cell,
            s2d,
        };
        let inputs = [
            random(&[batch, channels, height / s2d, width / s2d], 1),
            random(&[k * 3 * s2d * s2d, channels, 1, 1], 2),
            random(&[batch, 3, height, width], 3),
        ];
        (shape, inputs)
    }

    /// The element-wise formulation `replay_chosen` had before its GEMM one: the chosen
    /// pixels and the gradients must not change.
    fn replay_by_gathered_rows(
        feat: &Tensor,
        head: &Tensor,
        prev: &Tensor,
        indices: &[u32],
        shape: LayerShape,
    ) -> Tensor {
        let (b, c, hf, wf) = feat.dims4().unwrap();
        let per_node = 3 * shape.s2d * shape.s2d;
        let rows = head.reshape((shape.k, per_node * c)).unwrap();
        let zero = Tensor::zeros((1, per_node * c), rows.dtype(), rows.device()).unwrap();
        let rows = Tensor::cat(&[&rows, &zero], 0).unwrap();
        let map = Tensor::new(feature_pixel_indices(indices, shape), feat.device()).unwrap();
        let weights = rows
            .index_select(&map, 0)
            .unwrap()
            .reshape((b, hf, wf, per_node, c))
            .unwrap();
        let feat = feat.permute((0, 2, 3, 1)).unwrap().unsqueeze(3).unwrap();
        let residual = weights
            .broadcast_mul(&feat)
            .unwrap()
            .sum(D::Minus1)
            .unwrap()
            .permute((0, 3, 1, 2))
            .unwrap();
        (pixel_shuffle(&residual, shape.s2d).unwrap() + prev).unwrap()
    }

    #[test]
    fn the_replayed_pixels_and_their_gradients_match_the_gathered_rows() {
        use candle_core::Var;
        // (cell, s2d): cells larger than, equal to and smaller than a feature pixel.
        for (cell, s2d) in [(4, 2), (2, 2), (1, 2), (2, 1)] {
            let (shape, [feat, head, prev]) = small_layer(cell, s2d, 8, 8);
            let (feat, head) = (
                Var::from_tensor(&feat).unwrap(),
                Var::from_tensor(&head).unwrap(),
            );
            let LayerShape {
                batch,
                k,
                height,
                width,
                ..
            } = shape;
            // Every node and keep (index K) among the cells.
            let indices: Vec<u32> = (0..batch * shape.cells())
                .map(|i| (i * 3 % (k + 1)) as u32)
                .collect();
            let probe = random(&[batch, 3, height, width], 4);
            let run = |y: Tensor| {
                let values = y.flatten_all().unwrap().to_vec1::<f32>().unwrap();
                let g = (y * &probe).unwrap().sum_all().unwrap().backward().unwrap();
                let grads = [feat.as_tensor(), head.as_tensor()].map(|v| {
                    g.get(v)
                        .unwrap()
                        .flatten_all()
                        .unwrap()
                        .to_vec1::<f32>()
                        .unwrap()
                });
                (values, grads)
            };
            let (v1, g1) = run(replay_chosen(&feat, &head, &prev, &indices, shape).unwrap());
            let (v2, g2) = run(replay_by_gathered_rows(
                &feat, &head, &prev, &indices, shape,
            ));
            let close = |a: &[f32], b: &[f32]| a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-5);
            assert!(close(&v1, &v2), "values ({cell}, {s2d})");
            assert!(close(&g1[0], &g2[0]), "feature gradient ({cell}, {s2d})");
            assert!(close(&g1[1], &g2[1]), "head gradient ({cell}, {s2d})");
            let direct = replay_chosen_direct(&feat, &head, &prev, &indices, shape).unwrap();
            assert!(close(
                &v1,
                &direct.flatten_all().unwrap().to_vec1::<f32>().unwrap()
            ));
        }
    }

    #[test]
    fn chosen_residuals_have_the_bits_of_in_order_sums() {
        // Widths with registers of their own (3, 12) and one without (5).
        for p in [3, 12, 5] {
            let (k, c, plane, n, stride) = (4, 7, 300, 260, 270);
            let feat = random(&[c * plane], 5).to_vec1::<f32>().unwrap();
            let head = random(&[k * p * c], 6).to_vec1::<f32>().unwrap();
            // Runs of every length, single pixels, and keeps (node k and above).
            let nodes: Vec<u32> = (0..plane)
                .map(|px| ((px / 5 + px % 3) % 7) as u32)
                .collect();
            let weights = head_by_channel(&head, (k, p, c));
            let mut dst = vec![f32::NAN; p * stride];
            chosen_residuals(
                &mut dst,
                stride,
                (&feat, c, plane),
                n,
                (&nodes, &weights, k),
            );
            for ch in 0..p {
                for px in 0..n {
                    let v = dst[ch * stride + px];
                    let node = nodes[px] as usize;
                    if node < k {
                        let row = &head[(node * p + ch) * c..][..c];
                        let sum: f32 = (0..c).map(|j| row[j] * feat[j * plane + px]).sum();
                        assert_eq!(v.to_bits(), sum.to_bits(), "{p}: {ch}, {px}");
                    } else {
                        assert_eq!(v.to_bits(), (-0f32).to_bits(), "{p}: {ch}, {px}");
                    }
                }
                assert!(dst[ch * stride + n..(ch + 1) * stride]
                    .iter()
                    .all(|v| v.is_nan()));
            }
        }
    }

    #[test]
    fn distances_by_gram_equal_the_banded_ones() {
        // (cell, s2d): cells of several feature pixels, and of one; rows of 5 to 20 cells,
        // so that some fill the vector lanes and some leave a partial group.
        for (cell, s2d) in [(8, 2), (4, 2), (2, 2), (4, 1), (2, 1)] {
            let (shape, [feat, head, prev]) = small_layer(cell, s2d, 16, 40);
            let cands = Candidates::new(&feat, &head, &prev, shape).unwrap();
            let target = random(&[shape.batch, 3, shape.height, shape.width], 4);
            let error = cands.error(&target).unwrap();
            let keep = cands.keep_from_error(&error);
            let by_gram = cands.cell_distances_by_gram(&error, &keep).unwrap();
            let banded = cands.cell_distances_by_bands(&error).unwrap();
            assert_eq!(by_gram.len(), banded.len());
            for (a, b) in by_gram.iter().zip(&banded) {
                assert!(
                    (a - b).abs() <= 1e-4 * b.max(1.0),
                    "{a} vs {b} ({cell}, {s2d})"
                );
            }
        }
    }

    #[test]
    fn node_sums_refit_a_node_to_the_cells_that_chose_it() {
        // Every cell's target is node 3's candidate; cells choose nodes 0 and 1 or keep. A
        // refit from the sums gives nodes 0 and 1 node 3's rows and leaves the others.
        let (shape, [feat, head, prev]) = small_layer(8, 2, 16, 40);
        let cands = Candidates::new(&feat, &head, &prev, shape).unwrap();
        let target = cands
            .images()
            .unwrap()
            .narrow(1, 3, 1)
            .unwrap()
            .squeeze(1)
            .unwrap();
        let indices: Vec<u32> = (0..shape.batch * shape.cells())
            .map(|i| [0, 1, shape.k as u32][i % 3])
            .collect();
        let mut sums = cands.empty_node_sums();
        cands.add_node_sums(&target, &indices, &mut sums).unwrap();
        assert_eq!(sums.cells, [7, 7, 0, 0, 0]);
        let old = head.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let mut rows = old.clone();
        crate::train::refit::refit_head(&mut rows, &sums);
        let node = |h: &[f32], k: usize| h[k * 72..(k + 1) * 72].to_vec();
        for k in [0, 1] {
            for (a, b) in node(&rows, k).iter().zip(node(&old, 3)) {
                assert!((a - b).abs() < 0.01, "node {k}: {a} vs {b}");
            }
        }
        for k in [2, 3, 4] {
            assert_eq!(node(&rows, k), node(&old, k));
        }
    }

    #[test]
    fn the_gram_path_is_taken_where_it_saves_half() {
        let shape = |cell, s2d| LayerShape {
            batch: 1,
            k: 64,
            height: 512,
            width: 768,
            cell,
            s2d,
        };
        // Model v6's full-resolution layers (48 channels, features at half resolution):
        // 8×8-pixel cells take it, 4×4 and 2×2 do not; nor do its coarse levels.
        assert!(gram_pays(shape(8, 2), 48));
        assert!(!gram_pays(shape(4, 2), 48));
        assert!(!gram_pays(shape(2, 2), 48));
        assert!(!gram_pays(shape(4, 1), 64));
        assert!(!gram_pays(shape(4, 2), 64));
    }

    #[test]
    fn banded_distances_equal_the_whole_residual_ones() {
        // (cell, s2d): cells larger than, equal to and smaller than a feature pixel.
        for (cell, s2d) in [(8, 2), (2, 2), (1, 2), (4, 1), (1, 1)] {
            let (shape, [feat, head, prev]) = small_layer(cell, s2d, 16, 8);
            let LayerShape {
                batch,
                k,
                height,
                width,
                ..
            } = shape;
            let cands = Candidates::new(&feat, &head, &prev, shape).unwrap();
            let target = random(&[batch, 3, height, width], 4);
            let error = (&target - cands.previous())
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap();
            let banded = cands.cell_distances_by_bands(&error).unwrap();
            let whole = cands.cell_distances_on_device(&target).unwrap();
            assert_eq!(banded.len(), batch * k * shape.cells());
            let images = cands.images().unwrap().flatten_all().unwrap();
            let images = images.to_vec1::<f32>().unwrap();
            let target = target.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            let mut naive = vec![0f32; banded.len()];
            let plane = 3 * height * width;
            for (i, v) in images.iter().enumerate() {
                let (bk, p) = (i / plane, i % plane);
                let (y, x) = (p / width % height, p % width);
                let d = v - target[bk / k * plane + p];
                naive[bk * shape.cells() + y / cell * shape.cells_x() + x / cell] += d * d;
            }
            for ((a, b), c) in banded.iter().zip(&whole).zip(&naive) {
                assert!(
                    (a - b).abs() <= 1e-4 * b.max(1.0),
                    "{a} vs {b} ({cell}, {s2d})"
                );
                assert!(
                    (a - c).abs() <= 1e-4 * c.max(1.0),
                    "{a} vs {c} ({cell}, {s2d})"
                );
            }
        }
    }
}
