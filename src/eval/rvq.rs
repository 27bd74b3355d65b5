//! The no-network baseline: a multi-scale residual vector
//! quantiser with the same layer schedule (scales, cells, K) as a DDN model, and k-means
//! codebooks in place of the network. Each layer adds to every cell the codeword nearest
//! to the cell's residual; between levels the image is upsampled bilinearly, as in the
//! DDN. Same schedule, same bits: the difference in PSNR is what the network earns.

use image::RgbImage;
use rayon::prelude::*;

use crate::bitstream::LayerSpec;
use crate::model::color::{from_model_space, to_model_space};
use crate::resample::FloatImage;
use crate::rng::Rng;

/// An image in model space, edge-replicated to a multiple of `g` on each side.
fn padded(img: &RgbImage, g: usize) -> FloatImage {
    let (w0, h0) = (img.width() as usize, img.height() as usize);
    let (w, h) = (w0.div_ceil(g) * g, h0.div_ceil(g) * g);
    let pixels = (0..w * h)
        .map(|i| {
            let (x, y) = ((i % w).min(w0 - 1), (i / w).min(h0 - 1));
            img.get_pixel(x as u32, y as u32).0.map(to_model_space)
        })
        .collect();
    FloatImage {
        width: w,
        height: h,
        pixels,
    }
}

/// The top-left `width × height` of a model-space image, as 8-bit RGB.
fn cropped(img: &FloatImage, width: u32, height: u32) -> RgbImage {
    RgbImage::from_fn(width, height, |x, y| {
        image::Rgb(img.at(x as usize, y as usize).map(from_model_space))
    })
}

/// The samples of each `side × side` cell, `(c, dy, dx)`-ordered, cells in raster order.
fn cells(img: &FloatImage, side: usize) -> Vec<Vec<f32>> {
    let (cy, cx) = (img.height / side, img.width / side);
    let mut out = Vec::with_capacity(cy * cx);
    for y in 0..cy {
        for x in 0..cx {
            let mut v = Vec::with_capacity(3 * side * side);
            for c in 0..3 {
                for dy in 0..side {
                    v.extend((0..side).map(|dx| img.at(x * side + dx, y * side + dy)[c]));
                }
            }
            out.push(v);
        }
    }
    out
}

/// Adds `v` (ordered as [`cells`] gives it) to cell `cell`.
fn add_cell(img: &mut FloatImage, side: usize, cell: usize, v: &[f32]) {
    let cx = img.width / side;
    let (y, x) = (cell / cx, cell % cx);
    let mut i = 0;
    for c in 0..3 {
        for dy in 0..side {
            for dx in 0..side {
                img.at_mut(x * side + dx, y * side + dy)[c] += v[i];
                i += 1;
            }
        }
    }
}

fn sq_dist(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

fn nearest(codebook: &[Vec<f32>], v: &[f32]) -> usize {
    let mut best = (0, f32::INFINITY);
    for (i, c) in codebook.iter().enumerate() {
        let d = sq_dist(c, v);
        if d < best.1 {
            best = (i, d);
        }
    }
    best.0
}

/// Lloyd's k-means from `k` distinct random samples.
fn kmeans(data: &[Vec<f32>], k: usize, iterations: usize, rng: &mut Rng) -> Vec<Vec<f32>> {
    let mut centres: Vec<Vec<f32>> = (0..k)
        .map(|_| data[rng.below(data.len() as u64) as usize].clone())
        .collect();
    for _ in 0..iterations {
        let assign: Vec<usize> = data.par_iter().map(|v| nearest(&centres, v)).collect();
        let dim = data[0].len();
        let mut sums = vec![vec![0f64; dim]; k];
        let mut counts = vec![0usize; k];
        for (v, &a) in data.iter().zip(&assign) {
            counts[a] += 1;
            sums[a].iter_mut().zip(v).for_each(|(s, &x)| *s += x as f64);
        }
        for (i, centre) in centres.iter_mut().enumerate() {
            if counts[i] == 0 {
                // An empty centre restarts at a random sample.
                *centre = data[rng.below(data.len() as u64) as usize].clone();
            } else {
                *centre = sums[i]
                    .iter()
                    .map(|s| (s / counts[i] as f64) as f32)
                    .collect();
            }
        }
    }
    centres
}

/// The trained baseline.
pub struct ResidualVq {
    schedule: Vec<LayerSpec>,
    codebooks: Vec<Vec<Vec<f32>>>,
}

/// Reconstructions of a batch of images after each layer, level by level.
struct Walk {
    targets: Vec<FloatImage>,
    image: FloatImage,
    scale: u8,
}

impl Walk {
    fn new(source: &FloatImage, schedule: &[LayerSpec]) -> Self {
        let first = schedule[0].scale_log2;
        let f = 1usize << first;
        Walk {
            targets: Vec::new(),
            image: FloatImage::zeros(source.width / f, source.height / f),
            scale: first,
        }
        .with_targets(source, schedule)
    }

    fn with_targets(mut self, source: &FloatImage, schedule: &[LayerSpec]) -> Self {
        self.targets = schedule
            .iter()
            .map(|l| source.area_downsample(1 << l.scale_log2))
            .collect();
        self
    }

    /// Moves to layer `l`'s scale and returns its residual cells.
    fn residual_cells(&mut self, l: usize, spec: &LayerSpec) -> Vec<Vec<f32>> {
        while self.scale > spec.scale_log2 {
            self.image = self.image.upsample(2);
            self.scale -= 1;
        }
        cells(&self.targets[l].minus(&self.image), 1 << spec.cell_log2)
    }

    fn apply(&mut self, spec: &LayerSpec, codebook: &[Vec<f32>], cells: &[Vec<f32>]) {
        let side = 1 << spec.cell_log2;
        let chosen: Vec<usize> = cells.par_iter().map(|v| nearest(codebook, v)).collect();
        for (i, &k) in chosen.iter().enumerate() {
            add_cell(&mut self.image, side, i, &codebook[k]);
        }
    }

    fn finish(mut self) -> FloatImage {
        while self.scale > 0 {
            self.image = self.image.upsample(2);
            self.scale -= 1;
        }
        self.image
    }
}

fn granule(schedule: &[LayerSpec]) -> usize {
    crate::bitstream::header::granule(schedule) as usize
}

impl ResidualVq {
    /// Learns one codebook per layer, in order, from `crops` (each a multiple of the
    /// schedule's granule on both sides).
    pub fn train(crops: &[RgbImage], schedule: &[LayerSpec], iterations: usize, seed: u64) -> Self {
        let g = granule(schedule);
        let mut rng = Rng::derive(seed, &[0x5E0]);
        let mut walks: Vec<Walk> = crops
            .iter()
            .map(|c| Walk::new(&padded(c, g), schedule))
            .collect();
        let mut codebooks = Vec::new();
        for (l, spec) in schedule.iter().enumerate() {
            let per_walk: Vec<Vec<Vec<f32>>> = walks
                .iter_mut()
                .map(|w| w.residual_cells(l, spec))
                .collect();
            let all: Vec<Vec<f32>> = per_walk.iter().flatten().cloned().collect();
            let codebook = kmeans(&all, spec.k as usize, iterations, &mut rng);
            for (w, cells) in walks.iter_mut().zip(&per_walk) {
                w.apply(spec, &codebook, cells);
            }
            codebooks.push(codebook);
        }
        ResidualVq {
            schedule: schedule.to_vec(),
            codebooks,
        }
    }

    /// The image after the first `layers` layers.
    pub fn reconstruct(&self, image: &RgbImage, layers: usize) -> RgbImage {
        let g = granule(&self.schedule);
        let schedule = &self.schedule[..layers];
        let mut walk = Walk::new(&padded(image, g), schedule);
        for (l, spec) in schedule.iter().enumerate() {
            let cells = walk.residual_cells(l, spec);
            walk.apply(spec, &self.codebooks[l], &cells);
        }
        cropped(&walk.finish(), image.width(), image.height())
    }
}
