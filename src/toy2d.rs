//! The DDN paper's 2-D density experiment: K points, no network.
//!
//! Each step draws a batch from a density on `[-1, 1]²`, moves each sample's nearest
//! point (L1) towards it, and — in the Split-and-Prune run — lets the same
//! [`NodeStats`] rule as the network's DDLs copy the busiest point over the rarest. The
//! result is scored by the KL divergence of the points' histogram from the density on a
//! 100×100 grid, next to that of as many real samples.

use std::path::Path;

use image::{Rgb, RgbImage};
use serde::Serialize;

use crate::error::Result;
use crate::rng::Rng;
use crate::train::split_prune::NodeStats;

pub const GRID: usize = 100;
pub const DENSITIES: [&str; 5] = ["spirals", "blurs", "checkerboard", "rings", "qrcode"];

/// A density on the `GRID × GRID` bins of `[-1, 1]²`, normalised, row-major, y down.
pub struct Density {
    pub name: String,
    pub p: Vec<f64>,
    cdf: Vec<f64>,
}

fn bin_centre(i: usize) -> f64 {
    (i as f64 + 0.5) / GRID as f64 * 2.0 - 1.0
}

fn gaussian_sum(points: &[(f64, f64, f64)], x: f64, y: f64) -> f64 {
    points
        .iter()
        .map(|&(px, py, s)| (-((x - px).powi(2) + (y - py).powi(2)) / (2.0 * s * s)).exp())
        .sum()
}

fn spiral_points() -> Vec<(f64, f64, f64)> {
    let mut pts = Vec::new();
    for arm in 0..2 {
        for i in 0..600 {
            let t = i as f64 / 600.0;
            let r = 0.1 + 0.8 * t;
            let a = 3.0 * std::f64::consts::PI * t + arm as f64 * std::f64::consts::PI;
            pts.push((r * a.cos(), r * a.sin(), 0.035));
        }
    }
    pts
}

fn blur_points() -> Vec<(f64, f64, f64)> {
    let mut pts: Vec<_> = (0..8)
        .map(|i| {
            let a = i as f64 * std::f64::consts::TAU / 8.0;
            (0.65 * a.cos(), 0.65 * a.sin(), 0.04 + 0.02 * (i % 3) as f64)
        })
        .collect();
    pts.push((0.0, 0.0, 0.12));
    pts
}

fn density_value(name: &str, x: f64, y: f64, qr: &[bool]) -> Option<f64> {
    Some(match name {
        "spirals" => gaussian_sum(&spiral_points(), x, y),
        "blurs" => gaussian_sum(&blur_points(), x, y),
        "checkerboard" => {
            let cx = ((x + 1.0) * 2.0).floor() as i64;
            let cy = ((y + 1.0) * 2.0).floor() as i64;
            ((cx + cy) % 2 == 0) as u8 as f64
        }
        "rings" => {
            let r = (x * x + y * y).sqrt();
            [0.25, 0.55, 0.85]
                .iter()
                .map(|&c| (-(r - c).powi(2) / (2.0 * 0.03f64.powi(2))).exp())
                .sum()
        }
        "qrcode" => {
            let cx = (((x + 1.0) / 2.0 * 21.0) as usize).min(20);
            let cy = (((y + 1.0) / 2.0 * 21.0) as usize).min(20);
            qr[cy * 21 + cx] as u8 as f64
        }
        _ => return None,
    })
}

impl Density {
    /// One of [`DENSITIES`].
    pub fn named(name: &str) -> Option<Density> {
        let mut rng = Rng::new(21);
        let qr: Vec<bool> = (0..21 * 21).map(|_| rng.uniform() < 0.5).collect();
        let mut p = Vec::with_capacity(GRID * GRID);
        for j in 0..GRID {
            for i in 0..GRID {
                p.push(density_value(name, bin_centre(i), bin_centre(j), &qr)?);
            }
        }
        // As in the reference: a tiny floor so that the KL of points in empty bins is finite.
        let sum: f64 = p.iter().sum();
        p.iter_mut().for_each(|v| *v = *v / sum + 1e-20);
        let sum: f64 = p.iter().sum();
        p.iter_mut().for_each(|v| *v /= sum);
        let mut acc = 0.0;
        let cdf = p
            .iter()
            .map(|v| {
                acc += v;
                acc
            })
            .collect();
        Some(Density {
            name: name.into(),
            p,
            cdf,
        })
    }

    pub fn sample(&self, rng: &mut Rng) -> [f64; 2] {
        let u = rng.uniform() * self.cdf[self.cdf.len() - 1];
        let bin = self.cdf.partition_point(|&c| c < u).min(self.p.len() - 1);
        let cell = 2.0 / GRID as f64;
        let x = -1.0 + (bin % GRID) as f64 * cell + rng.uniform() * cell;
        let y = -1.0 + (bin / GRID) as f64 * cell + rng.uniform() * cell;
        [x, y]
    }

    /// `KL(points' histogram ‖ density)` in nats.
    pub fn kl_of(&self, points: &[[f64; 2]]) -> f64 {
        let hist = histogram(points);
        let n = points.len() as f64;
        hist.iter()
            .zip(&self.p)
            .filter(|(&c, _)| c > 0.0)
            .map(|(&c, &q)| {
                let p = c / n;
                p * (p / q).ln()
            })
            .sum()
    }
}

fn bin_of(v: f64) -> usize {
    (((v + 1.0) / 2.0 * GRID as f64).floor().max(0.0) as usize).min(GRID - 1)
}

fn histogram(points: &[[f64; 2]]) -> Vec<f64> {
    let mut h = vec![0.0; GRID * GRID];
    for p in points {
        h[bin_of(p[1]) * GRID + bin_of(p[0])] += 1.0;
    }
    h
}

/// Settings of one toy run.
#[derive(Debug, Clone, Copy)]
pub struct ToyConfig {
    pub points: usize,
    pub iterations: usize,
    pub batch: usize,
    pub lr: f64,
    pub seed: u64,
}

impl Default for ToyConfig {
    fn default() -> Self {
        ToyConfig {
            points: 2000,
            iterations: 3000,
            batch: 40,
            lr: 0.2,
            seed: 7,
        }
    }
}

fn l1_distances(points: &[[f64; 2]], s: [f64; 2]) -> Vec<f32> {
    points
        .iter()
        .map(|p| ((p[0] - s[0]).abs() + (p[1] - s[1]).abs()) as f32)
        .collect()
}

/// Fits K points to `density`, with or without Split-and-Prune.
pub fn fit(density: &Density, cfg: ToyConfig, split_and_prune: bool) -> Vec<[f64; 2]> {
    let mut rng = Rng::derive(cfg.seed, &[0x70F]);
    let mut points: Vec<[f64; 2]> = (0..cfg.points)
        .map(|_| [rng.range(-1.0, 1.0), rng.range(-1.0, 1.0)])
        .collect();
    let mut stats = NodeStats::new(cfg.points);
    for _ in 0..cfg.iterations {
        let batch: Vec<[f64; 2]> = (0..cfg.batch).map(|_| density.sample(&mut rng)).collect();
        let mut nearest = Vec::with_capacity(batch.len());
        for s in &batch {
            let d = l1_distances(&points, *s);
            if split_and_prune {
                stats.record(&d);
            }
            nearest.push(crate::model::ddl::argmin(&d) as usize);
        }
        if split_and_prune {
            if let Some(s) = stats.decide() {
                points[s.pruned] = points[s.split];
                stats.apply(s);
            }
        }
        for (s, &i) in batch.iter().zip(&nearest) {
            for d in 0..2 {
                points[i][d] += 2.0 * cfg.lr * (s[d] - points[i][d]);
            }
        }
    }
    points
}

/// The outcome for one density.
#[derive(Debug, Clone, Serialize)]
pub struct ToyResult {
    pub density: String,
    pub kl_gd: f64,
    pub kl_sp: f64,
    pub kl_real: f64,
}

/// Runs both fits on `density`, and writes `DIR/<name>.png` when `out` is given.
pub fn run_density(density: &Density, cfg: ToyConfig, out: Option<&Path>) -> Result<ToyResult> {
    let gd = fit(density, cfg, false);
    let sp = fit(density, cfg, true);
    let mut rng = Rng::derive(cfg.seed, &[0x5EA1]);
    let real: Vec<[f64; 2]> = (0..cfg.points).map(|_| density.sample(&mut rng)).collect();
    if let Some(dir) = out {
        std::fs::create_dir_all(dir).map_err(|e| crate::Error::io(dir, e))?;
        let path = dir.join(format!("{}.png", density.name));
        let panels = [
            density.p.clone(),
            histogram(&real),
            histogram(&gd),
            histogram(&sp),
        ];
        let image = image::DynamicImage::ImageRgb8(render_panels(&panels));
        crate::io::save_image(&path, true, &image)?;
    }
    Ok(ToyResult {
        density: density.name.clone(),
        kl_gd: density.kl_of(&gd),
        kl_sp: density.kl_of(&sp),
        kl_real: density.kl_of(&real),
    })
}

/// Ground truth, real samples, gradient descent, Split-and-Prune, side by side.
fn render_panels(panels: &[Vec<f64>]) -> RgbImage {
    let scale = 3;
    let side = GRID * scale;
    let gap = 4;
    let mut img = RgbImage::from_pixel(
        ((side + gap) * panels.len()) as u32,
        side as u32,
        Rgb([255, 255, 255]),
    );
    for (n, panel) in panels.iter().enumerate() {
        let max = panel.iter().cloned().fold(1e-30, f64::max);
        for y in 0..side {
            for x in 0..side {
                let v = (panel[(y / scale) * GRID + x / scale] / max).sqrt();
                img.put_pixel(((side + gap) * n + x) as u32, y as u32, heat(v));
            }
        }
    }
    img
}

fn heat(v: f64) -> Rgb<u8> {
    let v = v.clamp(0.0, 1.0);
    let c = |a: f64, b: f64| (255.0 * (a + (b - a) * v)) as u8;
    Rgb([c(0.08, 0.99), c(0.02, 0.91), c(0.25, 0.15)])
}
