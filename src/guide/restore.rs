//! `ddn restore` and `ddn sample`: guided and random walks over whole images, tile by
//! tile.

use candle_core::Tensor;
use image::{Rgb, RgbImage};

use super::{Condition, GuidedChooser, RandomChooser, View};
use crate::bitstream::geometry::tiles;
use crate::bitstream::Tile;
use crate::codec::tiles::{for_each_batch, full_resolution, paste_batch, tile_batch};
use crate::error::{Error, Result};
use crate::model::color::{luma, LUMA_WEIGHTS};
use crate::model::{Chooser, Model, Network, Walk};
use crate::resample::FloatImage;
use crate::rng::Rng;

/// A restoration task.
#[derive(Debug, Clone)]
pub enum Task {
    /// The input is the image downsampled by this factor.
    SuperResolution { scale: u32 },
    /// `unknown` marks (white) the pixels to fill; it has the input's size.
    Inpaint { unknown: RgbImage },
    /// The input is greyscale.
    Colorize,
    /// The input carries noise.
    Denoise,
}

/// Tile side of the guided walks. Smaller than the codec's: a guided walk's scorer builds
/// every candidate image of a tile (K times its pixels), where coding needs only distances.
pub const GUIDE_TILE: u32 = 256;

#[derive(Debug, Clone, Copy)]
pub struct RestoreOptions {
    pub seed: u64,
    /// Pick the best candidate (1) or one of the best `top` at random.
    pub top: usize,
    pub tile: u32,
}

/// Shifts `rgb` so that its BT.601 luma is `target` (in 0..=255), moving only the
/// channels that are not stuck at 0 or 255, so the luma is met exactly despite clipping.
fn with_luma(mut rgb: [f32; 3], target: f32) -> [f32; 3] {
    for _ in 0..3 {
        let gap = target - luma(rgb);
        let free: Vec<usize> = (0..3)
            .filter(|&c| {
                if gap > 0.0 {
                    rgb[c] < 255.0
                } else {
                    rgb[c] > 0.0
                }
            })
            .collect();
        if gap.abs() < 1e-3 || free.is_empty() {
            break;
        }
        let step = gap / free.iter().map(|&c| LUMA_WEIGHTS[c]).sum::<f32>();
        for c in free {
            rgb[c] = (rgb[c] + step).clamp(0.0, 255.0);
        }
    }
    rgb
}

/// White (bright) mask pixels mark what inpainting must fill.
pub(crate) fn is_unknown(p: &Rgb<u8>) -> bool {
    p[0] as u32 + p[1] as u32 + p[2] as u32 >= 3 * 128
}

/// The tile of the degraded input that matches output tile `t` at `scale`.
fn input_tile(t: &Tile, scale: u32) -> Tile {
    Tile {
        x: t.x / scale,
        y: t.y / scale,
        width: t.width / scale,
        height: t.height / scale,
        padded_width: t.padded_width / scale,
        padded_height: t.padded_height / scale,
    }
}

fn output_size(input: &RgbImage, task: &Task) -> Result<(u32, u32)> {
    let (w, h) = input.dimensions();
    match task {
        Task::SuperResolution { scale } if matches!(scale, 2 | 4 | 8) => {
            let (ow, oh) = (w as u64 * *scale as u64, h as u64 * *scale as u64);
            crate::bitstream::validate_image_size(ow, oh)?;
            Ok((ow as u32, oh as u32))
        }
        Task::SuperResolution { scale } => Err(Error::InvalidArgument(format!(
            "super-resolution by {scale}: the scale must be 2, 4 or 8"
        ))),
        Task::Inpaint { unknown } if unknown.dimensions() != (w, h) => {
            Err(Error::InvalidArgument(format!(
                "the mask is {}x{} but the image is {w}x{h}",
                unknown.width(),
                unknown.height()
            )))
        }
        _ => Ok((w, h)),
    }
}

/// How strongly each task prefers small steps (see [`GuidedChooser::smoothness`]).
/// A low-resolution or noisy input says nothing of fine detail, and without the prior the
/// walk fills it with whatever texture matches best, below bicubic upsampling
/// (docs/experiments.md, "Guided walk"). Colorization keeps the
/// tie-break only: a prior on step size would pull every colour back to grey.
fn smoothness(task: &Task) -> f32 {
    match task {
        Task::SuperResolution { .. } | Task::Denoise => 0.2,
        Task::Inpaint { .. } | Task::Colorize => super::TIE_BREAK,
    }
}

/// Weight of guessed pixels (the smooth fill of a hole) next to known ones.
const FILL_WEIGHT: f32 = 0.1;

/// What every tile's condition is cut from: the image to match, per-pixel weights
/// (`None`: all 1), and the view.
struct Guide {
    target: RgbImage,
    /// Weights 0..=1 stored as grey 0..=255.
    weight: Option<RgbImage>,
    view: View,
}

fn guide_for(input: &RgbImage, task: &Task) -> Guide {
    match task {
        Task::Inpaint { unknown } => Guide {
            // The hole is matched weakly to a smooth fill of the known pixels, so it
            // continues its surroundings instead of staying at the walk's first guess.
            target: push_pull_fill(input, |x, y| !is_unknown(unknown.get_pixel(x, y))),
            weight: Some(RgbImage::from_fn(input.width(), input.height(), |x, y| {
                let w = if is_unknown(unknown.get_pixel(x, y)) {
                    FILL_WEIGHT
                } else {
                    1.0
                };
                let v = (w * 255.0).round() as u8;
                Rgb([v, v, v])
            })),
            view: View::Colour,
        },
        Task::Colorize => Guide {
            target: input.clone(),
            weight: None,
            view: View::Grey,
        },
        Task::SuperResolution { .. } | Task::Denoise => Guide {
            target: input.clone(),
            weight: None,
            view: View::Colour,
        },
    }
}

/// Relaxation sweeps per pyramid level of the fill.
const FILL_SWEEPS: usize = 24;

/// Fills the pixels where `known` is false from the known ones with a membrane (harmonic)
/// interpolation, solved coarse to fine: each level averages the known pixels of the one
/// below; unknown pixels start from the coarser solution and relax towards the mean of
/// their four neighbours. Large holes blend all of their border smoothly instead of
/// extending whichever colour is nearest.
pub(crate) fn push_pull_fill(img: &RgbImage, known: impl Fn(u32, u32) -> bool) -> RgbImage {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let mut colour = vec![[0f32; 3]; w * h];
    let mut weight = vec![0f32; w * h];
    for (x, y, p) in img.enumerate_pixels() {
        let i = y as usize * w + x as usize;
        if known(x, y) {
            colour[i] = p.0.map(|v| v as f32);
            weight[i] = 1.0;
        }
    }
    let filled = fill_level(&colour, &weight, w, h);
    RgbImage::from_fn(w as u32, h as u32, |x, y| {
        Rgb(filled[y as usize * w + x as usize].map(|v| v.round().clamp(0.0, 255.0) as u8))
    })
}

fn fill_level(colour: &[[f32; 3]], weight: &[f32], w: usize, h: usize) -> Vec<[f32; 3]> {
    if weight.iter().all(|&v| v >= 1.0) || (w == 1 && h == 1) {
        return colour.to_vec();
    }
    let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
    let mut c2 = vec![[0f32; 3]; cw * ch];
    let mut w2 = vec![0f32; cw * ch];
    for y in 0..h {
        for x in 0..w {
            let (i, j) = (y * w + x, (y / 2) * cw + x / 2);
            for c in 0..3 {
                c2[j][c] += weight[i] * colour[i][c];
            }
            w2[j] += weight[i];
        }
    }
    for j in 0..cw * ch {
        if w2[j] > 0.0 {
            c2[j] = c2[j].map(|v| v / w2[j]);
        }
        w2[j] = w2[j].min(1.0);
    }
    let coarse = FloatImage {
        width: cw,
        height: ch,
        pixels: fill_level(&c2, &w2, cw, ch),
    };
    let mut out: Vec<[f32; 3]> = (0..w * h)
        .map(|i| {
            let up = coarse.upsampled_at(2, i % w, i / w);
            let a = weight[i];
            [0, 1, 2].map(|c| a * colour[i][c] + (1.0 - a) * up[c])
        })
        .collect();
    relax(&mut out, colour, weight, w, h);
    out
}

/// Gauss-Seidel sweeps of the membrane equation over the not wholly known pixels.
fn relax(out: &mut [[f32; 3]], colour: &[[f32; 3]], weight: &[f32], w: usize, h: usize) {
    for _ in 0..FILL_SWEEPS {
        for y in 0..h {
            for x in 0..w {
                let i = y * w + x;
                let a = weight[i];
                if a >= 1.0 {
                    continue;
                }
                let n = [
                    out[y * w + x.saturating_sub(1)],
                    out[y * w + (x + 1).min(w - 1)],
                    out[y.saturating_sub(1) * w + x],
                    out[(y + 1).min(h - 1) * w + x],
                ];
                out[i] = [0, 1, 2].map(|c| {
                    let mean = n.iter().map(|p| p[c]).sum::<f32>() / 4.0;
                    a * colour[i][c] + (1.0 - a) * mean
                });
            }
        }
    }
}

/// The conditions of one output tile.
fn conditions(guide: &Guide, t: &Tile, scale: u32, network: &Network) -> Result<Vec<Condition>> {
    let device = network.device();
    let region = input_tile(t, scale);
    let known = match &guide.weight {
        // Model space maps 0 → -0.5 and 255 → 0.5; shift to 0..1 and keep one channel.
        Some(w) => Some((tile_batch(w, &[region], device)?.narrow(1, 0, 1)? + 0.5)?),
        None => None,
    };
    Ok(vec![Condition {
        target: tile_batch(&guide.target, &[region], device)?,
        known,
        view: guide.view,
        weight: 1.0,
    }])
}

/// The layers a guided walk for `task` takes: all of them, except that super-resolution
/// stops at the first layer whose cells fit inside one input pixel. There the input pins
/// only each cell's mean, which back-projection sets anyway, and the choice would be
/// guessed detail: with model v3's 4-pixel cells at ×4, walking them fell from ahead of
/// bicubic to level with it (docs/experiments.md, "Guided super-resolution with model v3").
fn guided_layers(network: &Network, task: &Task) -> usize {
    let schedule = network.config().schedule();
    match task {
        Task::SuperResolution { scale } => schedule
            .iter()
            .position(|layer| layer.cell_pixels() <= *scale)
            .unwrap_or(schedule.len())
            .max(1),
        _ => schedule.len(),
    }
}

/// One tile walked alone, its last image at the tile's full padded size.
fn walk_tile(
    network: &Network,
    t: &Tile,
    layers: usize,
    chooser: &mut dyn Chooser,
) -> Result<Tensor> {
    let (h, w) = (t.padded_height as usize, t.padded_width as usize);
    let walk = network.walk(1, h, w, layers, Walk::Choose(chooser))?;
    full_resolution(walk.images.last().expect("a layer"), h, w)
}

/// Restores `input` with a guided walk; the output is `scale` times larger for
/// super-resolution and the input's size otherwise.
pub fn restore(
    model: &Model,
    input: &RgbImage,
    task: &Task,
    opts: RestoreOptions,
) -> Result<RgbImage> {
    let (w, h) = output_size(input, task)?;
    let network = &model.network;
    let scale = match task {
        Task::SuperResolution { scale } => *scale,
        _ => 1,
    };
    // Output tiles pad to a multiple of the scale too, so input tiles have whole pixels.
    let g = network.config().granule().max(scale);
    let tile = crate::codec::tile_size(opts.tile, g);
    let guide = guide_for(input, task);
    let mut out = RgbImage::new(w, h);
    let tiles = tiles(w, h, tile, g);
    let all: Vec<usize> = (0..tiles.len()).collect();
    let layers = guided_layers(network, task);
    // One tile a walk: each tile's chooser has its own conditions and random stream.
    for_each_batch(
        &tiles,
        &all,
        |_, _| 1,
        |batch| {
            let (i, t) = (batch.indices[0], &batch.tiles[0]);
            let mut chooser = GuidedChooser {
                conditions: conditions(&guide, t, scale, network)?,
                top: opts.top,
                rng: Rng::derive(opts.seed, &[0x6A1D, i as u64]),
                smoothness: smoothness(task),
            };
            let image = walk_tile(network, t, layers, &mut chooser)?;
            paste_batch(&mut out, 0, &batch.tiles, &image)
        },
    )?;
    project(&mut out, input, task);
    Ok(out)
}

/// Makes the output agree with what is known: inpainting keeps the known pixels,
/// colorization keeps the input's grey (BT.601 luma) and changes only colour,
/// super-resolution downsamples back to the input.
fn project(out: &mut RgbImage, input: &RgbImage, task: &Task) {
    match task {
        Task::Inpaint { unknown } => {
            for (x, y, p) in out.enumerate_pixels_mut() {
                if !is_unknown(unknown.get_pixel(x, y)) {
                    *p = *input.get_pixel(x, y);
                }
            }
        }
        Task::Colorize => {
            for (x, y, p) in out.enumerate_pixels_mut() {
                let q = input.get_pixel(x, y);
                let target = luma(q.0.map(|v| v as f32));
                p.0 = with_luma(p.0.map(|v| v as f32), target).map(|v| v.round() as u8);
            }
        }
        Task::SuperResolution { scale } => super::back_projection::back_project(out, input, *scale),
        Task::Denoise => {}
    }
}

/// `n` random walks of `width × height` each.
pub fn sample(
    model: &Model,
    n: usize,
    width: u32,
    height: u32,
    seed: u64,
) -> Result<Vec<RgbImage>> {
    crate::bitstream::validate_image_size(width as u64, height as u64)?;
    let g = model.network.config().granule();
    let t = tiles(width, height, width.max(height).div_ceil(g) * g, g)[0];
    (0..n)
        .map(|i| {
            let mut chooser = RandomChooser {
                rng: Rng::derive(seed, &[0x5A3F, i as u64]),
            };
            let layers = model.network.config().layer_count();
            let image = walk_tile(&model.network, &t, layers, &mut chooser)?;
            let mut out = RgbImage::new(width, height);
            paste_batch(&mut out, 0, &[t], &image)?;
            Ok(out)
        })
        .collect()
}

/// Lays images of equal size out in a near-square grid with 4-px gaps.
pub fn grid(images: &[RgbImage]) -> RgbImage {
    let (w, h) = images[0].dimensions();
    let cols = (images.len() as f64).sqrt().ceil() as u32;
    let rows = (images.len() as u32).div_ceil(cols);
    let gap = 4;
    let mut out = RgbImage::from_pixel(
        cols * (w + gap) - gap,
        rows * (h + gap) - gap,
        Rgb([255, 255, 255]),
    );
    for (i, img) in images.iter().enumerate() {
        let (c, r) = (i as u32 % cols, i as u32 / cols);
        image::imageops::replace(
            &mut out,
            img,
            (c * (w + gap)) as i64,
            (r * (h + gap)) as i64,
        );
    }
    out
}
