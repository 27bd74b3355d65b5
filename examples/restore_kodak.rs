//! Measures the guided walk on a folder of images (Kodak): each image is degraded —
//! downsampled ×4 (area), a centred hole of a quarter of its area, or turned grey —
//! restored with the built-in model, and scored against the original.
//!
//!     cargo run --release --example restore_kodak -- ../shared/data/kodak [OUT_DIR] [TASKS]
//!
//! TASKS is a comma-separated subset of `sr4,inpaint,colorize` (default: all).
//!
//! Prints one JSON line per image and task, then the means. With OUT_DIR, the inputs,
//! outputs and originals of the first image are written there as PNG.

use std::path::PathBuf;

use candle_core::Device;
use ddn::eval::restoration::report;
use ddn::guide::restore::{restore, RestoreOptions, Task};
use ddn::model::{Model, DEFAULT_MODEL};
use image::{Rgb, RgbImage};

fn grey(img: &RgbImage) -> RgbImage {
    RgbImage::from_fn(img.width(), img.height(), |x, y| {
        let p = img.get_pixel(x, y);
        let v = ((p[0] as u32 + p[1] as u32 + p[2] as u32) as f32 / 3.0).round() as u8;
        Rgb([v, v, v])
    })
}

fn centred_hole(w: u32, h: u32) -> RgbImage {
    RgbImage::from_fn(w, h, |x, y| {
        let inside = x >= w / 4 && x < 3 * w / 4 && y >= h / 4 && y < 3 * h / 4;
        if inside {
            Rgb([255, 255, 255])
        } else {
            Rgb([0, 0, 0])
        }
    })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(args.next().ok_or("usage: restore_kodak DIR [OUT_DIR]")?);
    let out_dir = args
        .next()
        .map(PathBuf::from)
        .filter(|p| !p.as_os_str().is_empty());
    let only: Option<String> = args.next();
    let model = Model::from_bytes(DEFAULT_MODEL, &Device::Cpu)?;
    let images = ddn::eval::load_images(&dir)?;
    let opts = RestoreOptions {
        seed: 0,
        top: 2,
        tile: ddn::codec::DEFAULT_TILE,
    };
    let mut sums: std::collections::BTreeMap<String, (f64, usize)> = Default::default();
    for (i, (name, original)) in images.iter().enumerate() {
        let (w, h) = original.dimensions();
        let hole = centred_hole(w, h);
        let cases = [
            (
                "sr4",
                ddn::resample::area_downsample(original, 4),
                Task::SuperResolution { scale: 4 },
            ),
            (
                "inpaint",
                original.clone(),
                Task::Inpaint {
                    unknown: hole.clone(),
                },
            ),
            ("colorize", grey(original), Task::Colorize),
        ];
        for (label, input, task) in cases {
            if only
                .as_ref()
                .is_some_and(|o| !o.split(',').any(|t| t == label))
            {
                continue;
            }
            let output = restore(&model, &input, &task, opts)?;
            let r = report(&task, &input, &output, original)?;
            println!("{{\"image\":\"{name}\",\"case\":\"{label}\",\"report\":{r}}}");
            for (key, value) in r.as_object().into_iter().flatten() {
                if let Some(v) = value.as_f64() {
                    let e = sums.entry(format!("{label}.{key}")).or_default();
                    e.0 += v;
                    e.1 += 1;
                }
            }
            if let (0, Some(out)) = (i, &out_dir) {
                std::fs::create_dir_all(out)?;
                input.save(out.join(format!("{name}-{label}-input.png")))?;
                output.save(out.join(format!("{name}-{label}-output.png")))?;
                if label == "inpaint" {
                    hole.save(out.join(format!("{name}-inpaint-mask.png")))?;
                }
            }
        }
    }
    for (key, (sum, n)) in sums {
        println!("mean {key} = {:.3} over {n}", sum / n as f64);
    }
    Ok(())
}
