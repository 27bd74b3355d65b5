//! How well a guided restoration did: the output against the reference, next to the
//! simple baseline of each task (`ddn restore --report`).

use image::{Rgb, RgbImage};

use crate::error::{Error, Result};
use crate::guide::restore::{is_unknown, push_pull_fill, Task};
use crate::metrics::{masked_psnr, psnr};
use crate::model::color::luma;
use crate::resample::area_downsample;

fn mean_chroma(img: &RgbImage) -> f64 {
    let sum: f64 = img
        .pixels()
        .map(|p| (*p.0.iter().max().unwrap() - *p.0.iter().min().unwrap()) as f64)
        .sum();
    sum / (img.width() as f64 * img.height() as f64)
}

/// How well `output` restores `reference` from `input`, next to the simple baseline of
/// each task (bicubic upsampling, a mean-colour fill, the grey image, the noisy image).
pub fn report(
    task: &Task,
    input: &RgbImage,
    output: &RgbImage,
    reference: &RgbImage,
) -> Result<serde_json::Value> {
    if output.dimensions() != reference.dimensions() {
        return Err(Error::InvalidArgument(format!(
            "the reference is {}x{} but the output is {}x{}",
            reference.width(),
            reference.height(),
            output.width(),
            output.height()
        )));
    }
    Ok(match task {
        Task::SuperResolution { scale } => {
            use image::imageops::{resize, FilterType};
            let (w, h) = input.dimensions();
            let down = area_downsample(output, *scale);
            let bicubic = resize(input, w * scale, h * scale, FilterType::CatmullRom);
            serde_json::json!({
                "task": "sr", "scale": scale,
                "psnr_downsampled_vs_input": psnr(&down, input),
                "psnr_vs_reference": psnr(output, reference),
                "bicubic_psnr_vs_reference": psnr(&bicubic, reference),
            })
        }
        Task::Inpaint { unknown } => {
            let hole = |x, y| is_unknown(unknown.get_pixel(x, y));
            let known: Vec<&Rgb<u8>> = input
                .enumerate_pixels()
                .filter(|(x, y, _)| !hole(*x, *y))
                .map(|(_, _, p)| p)
                .collect();
            let mean = |c: usize| {
                (known.iter().map(|p| p[c] as f64).sum::<f64>() / known.len().max(1) as f64).round()
                    as u8
            };
            let fill = Rgb([mean(0), mean(1), mean(2)]);
            let filled = RgbImage::from_fn(input.width(), input.height(), |x, y| {
                if hole(x, y) {
                    fill
                } else {
                    *input.get_pixel(x, y)
                }
            });
            let smooth = push_pull_fill(input, |x, y| !hole(x, y));
            serde_json::json!({
                "task": "inpaint",
                "psnr_known_pixels_vs_input": masked_psnr(output, input, |x, y| !hole(x, y)),
                "psnr_hole_vs_reference": masked_psnr(output, reference, hole),
                "mean_colour_fill_psnr_hole_vs_reference": masked_psnr(&filled, reference, hole),
                "smooth_fill_psnr_hole_vs_reference": masked_psnr(&smooth, reference, hole),
            })
        }
        Task::Colorize => {
            let grey_of = |img: &RgbImage| {
                RgbImage::from_fn(img.width(), img.height(), |x, y| {
                    let v = luma(img.get_pixel(x, y).0.map(|v| v as f32)).round() as u8;
                    Rgb([v, v, v])
                })
            };
            serde_json::json!({
                "task": "colorize",
                "psnr_grey_vs_input": psnr(&grey_of(output), &grey_of(input)),
                "psnr_vs_reference": psnr(output, reference),
                "grey_input_psnr_vs_reference": psnr(input, reference),
                "mean_chroma": mean_chroma(output),
                "reference_mean_chroma": mean_chroma(reference),
            })
        }
        Task::Denoise => serde_json::json!({
            "task": "denoise",
            "psnr_vs_reference": psnr(output, reference),
            "noisy_input_psnr_vs_reference": psnr(input, reference),
        }),
    })
}
