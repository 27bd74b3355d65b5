//! The no-network baseline of codec-design.md §2: a multi-scale residual vector
//! quantiser with the same layer schedule (scales, cells, K) as a DDN model, and k-means
//! codebooks in place of the network. Each layer adds to every cell the codeword nearest
//! to the cell's residual; between levels the image is upsampled bilinearly, as in the
//! DDN. Same schedule, same bits: the difference in PSNR is what the network earns.

use image::RgbImage;
use rayon::prelude::*;

use crate::bitstream::LayerSpec;
use crate::model::color::{from_model_space, to_model_space};
use crate::rng::Rng;

/// A `[3, h, w]` image in model space.
#[derive(Clone)]
struct Planes {
    h: usize,
    w: usize,
    data: Vec<f32>,
}

impl Planes {
    fn zeros(h: usize, w: usize) -> Self {
        Planes {
            h,
            w,
            data: vec![0.0; 3 * h * w],
        }
    }

    /// Edge-replicated to a multiple of `g` on each side.
    fn from_image(img: &RgbImage, g: usize) -> Self {
        let (w0, h0) = (img.width() as usize, img.height() as usize);
        let (w, h) = (w0.div_ceil(g) * g, h0.div_ceil(g) * g);
        let mut p = Planes::zeros(h, w);
        for c in 0..3 {
            for y in 0..h {
                for x in 0..w {
                    let px = img.get_pixel(x.min(w0 - 1) as u32, y.min(h0 - 1) as u32);
                    p.data[(c * h + y) * w + x] = to_model_space(px[c]);
                }
            }
        }
        p
    }

    fn to_image(&self, width: u32, height: u32) -> RgbImage {
        RgbImage::from_fn(width, height, |x, y| {
            let at = |c: usize| self.data[(c * self.h + y as usize) * self.w + x as usize];
            image::Rgb([0, 1, 2].map(|c| from_model_space(at(c))))
        })
    }

    /// Box-filter downsampling by `f` (area interpolation).
    fn downsample(&self, f: usize) -> Self {
        let (h, w) = (self.h / f, self.w / f);
        let mut out = Planes::zeros(h, w);
        let norm = 1.0 / (f * f) as f32;
        for c in 0..3 {
            for y in 0..h {
                for x in 0..w {
                    let mut s = 0.0;
                    for dy in 0..f {
                        let row = (c * self.h + y * f + dy) * self.w + x * f;
                        s += self.data[row..row + f].iter().sum::<f32>();
                    }
                    out.data[(c * h + y) * w + x] = s * norm;
                }
            }
        }
        out
    }

    /// Bilinear ×2 upsampling with half-pixel centres (align_corners = false).
    fn upsample2(&self) -> Self {
        let (h, w) = (2 * self.h, 2 * self.w);
        let mut out = Planes::zeros(h, w);
        let src = |n: usize, i: usize| {
            let pos = ((i as f32 + 0.5) / 2.0 - 0.5).max(0.0);
            let i0 = (pos.floor() as usize).min(n - 1);
            let i1 = (i0 + 1).min(n - 1);
            (i0, i1, pos - i0 as f32)
        };
        for c in 0..3 {
            for y in 0..h {
                let (y0, y1, fy) = src(self.h, y);
                for x in 0..w {
                    let (x0, x1, fx) = src(self.w, x);
                    let at = |yy: usize, xx: usize| self.data[(c * self.h + yy) * self.w + xx];
                    let top = at(y0, x0) * (1.0 - fx) + at(y0, x1) * fx;
                    let bottom = at(y1, x0) * (1.0 - fx) + at(y1, x1) * fx;
                    out.data[(c * h + y) * w + x] = top * (1.0 - fy) + bottom * fy;
                }
            }
        }
        out
    }

    /// The cell vectors `(c, dy, dx)`-ordered, cells in raster order.
    fn cells(&self, side: usize) -> Vec<Vec<f32>> {
        let (cy, cx) = (self.h / side, self.w / side);
        let mut out = Vec::with_capacity(cy * cx);
        for y in 0..cy {
            for x in 0..cx {
                let mut v = Vec::with_capacity(3 * side * side);
                for c in 0..3 {
                    for dy in 0..side {
                        let row = (c * self.h + y * side + dy) * self.w + x * side;
                        v.extend_from_slice(&self.data[row..row + side]);
                    }
                }
                out.push(v);
            }
        }
        out
    }

    fn add_cell(&mut self, side: usize, cell: usize, v: &[f32]) {
        let cx = self.w / side;
        let (y, x) = (cell / cx, cell % cx);
        let mut i = 0;
        for c in 0..3 {
            for dy in 0..side {
                let row = (c * self.h + y * side + dy) * self.w + x * side;
                for dx in 0..side {
                    self.data[row + dx] += v[i];
                    i += 1;
                }
            }
        }
    }

    fn sub(&self, other: &Planes) -> Planes {
        Planes {
            h: self.h,
            w: self.w,
            data: self
                .data
                .iter()
                .zip(&other.data)
                .map(|(a, b)| a - b)
                .collect(),
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
    targets: Vec<Planes>,
    image: Planes,
    scale: u8,
}

impl Walk {
    fn new(source: &Planes, schedule: &[LayerSpec]) -> Self {
        let first = schedule[0].scale_log2;
        let f = 1usize << first;
        Walk {
            targets: Vec::new(),
            image: Planes::zeros(source.h / f, source.w / f),
            scale: first,
        }
        .with_targets(source, schedule)
    }

    fn with_targets(mut self, source: &Planes, schedule: &[LayerSpec]) -> Self {
        self.targets = schedule
            .iter()
            .map(|l| source.downsample(1 << l.scale_log2))
            .collect();
        self
    }

    /// Moves to layer `l`'s scale and returns its residual cells.
    fn residual_cells(&mut self, l: usize, spec: &LayerSpec) -> Vec<Vec<f32>> {
        while self.scale > spec.scale_log2 {
            self.image = self.image.upsample2();
            self.scale -= 1;
        }
        self.targets[l].sub(&self.image).cells(1 << spec.cell_log2)
    }

    fn apply(&mut self, spec: &LayerSpec, codebook: &[Vec<f32>], cells: &[Vec<f32>]) {
        let side = 1 << spec.cell_log2;
        let chosen: Vec<usize> = cells.par_iter().map(|v| nearest(codebook, v)).collect();
        for (i, &k) in chosen.iter().enumerate() {
            self.image.add_cell(side, i, &codebook[k]);
        }
    }

    fn finish(mut self) -> Planes {
        while self.scale > 0 {
            self.image = self.image.upsample2();
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
            .map(|c| Walk::new(&Planes::from_image(c, g), schedule))
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
        let mut walk = Walk::new(&Planes::from_image(image, g), schedule);
        for (l, spec) in schedule.iter().enumerate() {
            let cells = walk.residual_cells(l, spec);
            walk.apply(spec, &self.codebooks[l], &cells);
        }
        walk.finish().to_image(image.width(), image.height())
    }
}
