//! `ddn eval`: rate-distortion of the codec on a folder of images, next to baselines.

pub mod bdrate;
pub mod jpeg;
pub mod msssim;
pub mod plot;
pub mod restoration;
pub mod rvq;

use std::path::{Path, PathBuf};
use std::time::Instant;

use image::RgbImage;
use serde::{Deserialize, Serialize};

use crate::codec::{self, fixed_length_layers, EncodeOptions, Rate};
use crate::error::{Error, Result};
use crate::io::SourceImage;
use crate::metrics::psnr;
use crate::model::Model;

/// One image coded at one setting.
#[derive(Debug, Clone, Serialize)]
pub struct Point {
    pub codec: String,
    pub image: String,
    /// The requested rate (bpp) or quality.
    pub setting: f64,
    pub layers: usize,
    pub bpp: f64,
    pub psnr: f64,
    /// RGB MS-SSIM; absent for images under 176 px on a side.
    pub ms_ssim: Option<f64>,
    pub encode_s: f64,
    pub decode_s: f64,
}

/// Mean over images of one codec at one setting (as CompressAI averages).
#[derive(Debug, Clone, Serialize)]
pub struct MeanPoint {
    pub codec: String,
    pub setting: f64,
    pub images: usize,
    pub bpp: f64,
    pub psnr: f64,
    pub ms_ssim: Option<f64>,
    pub encode_s: f64,
    pub decode_s: f64,
}

/// PNG and JPEG files of a folder (not recursive), sorted, decoded.
pub fn load_images(dir: &Path) -> Result<Vec<(String, RgbImage)>> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| crate::io::is_png_or_jpeg(p))
        .collect();
    paths.sort();
    if paths.is_empty() {
        return Err(Error::InvalidArgument(format!(
            "no PNG or JPEG images in {}",
            dir.display()
        )));
    }
    paths
        .iter()
        .map(|p| {
            let img = crate::io::decode_image(&crate::io::read_input(p)?)?;
            let name = p
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            Ok((name, img.rgb))
        })
        .collect()
}

/// Codes every image at every rate with the DDN codec, in tiles of side `tile`.
pub fn evaluate_ddn(
    model: &Model,
    images: &[(String, RgbImage)],
    rates: &[f64],
    tile: u32,
    progress: &dyn Fn(),
) -> Result<Vec<Point>> {
    let mut out = Vec::new();
    for (name, rgb) in images {
        let source = SourceImage {
            rgb: rgb.clone(),
            grey: false,
            had_alpha: false,
        };
        for &rate in rates {
            let t = Instant::now();
            let bytes = codec::encode(
                model,
                &source,
                EncodeOptions {
                    rate: Rate::Bpp(rate),
                    tile,
                    ..EncodeOptions::default()
                },
            )?;
            let encode_s = t.elapsed().as_secs_f64();
            let t = Instant::now();
            let decoded = codec::decode(model, &bytes, None)?;
            let decode_s = t.elapsed().as_secs_f64();
            out.push(Point {
                codec: "ddn".into(),
                image: name.clone(),
                setting: rate,
                layers: decoded.layers_decoded,
                bpp: bytes.len() as f64 * 8.0 / (rgb.width() as f64 * rgb.height() as f64),
                psnr: psnr(rgb, &decoded.image.to_rgb8()),
                ms_ssim: msssim::ms_ssim(rgb, &decoded.image.to_rgb8()),
                encode_s,
                decode_s,
            });
            progress();
        }
    }
    Ok(out)
}

/// The residual-VQ baseline with the model's schedule, at the same layer counts (and so
/// the same file sizes) as the DDN at each rate, in tiles of side `tile`.
pub fn evaluate_rvq(
    model: &Model,
    baseline: &rvq::ResidualVq,
    images: &[(String, RgbImage)],
    rates: &[f64],
    tile: u32,
) -> Result<Vec<Point>> {
    let tile = codec::tile_size(tile, model.network.config().granule());
    let mut out = Vec::new();
    for (name, rgb) in images {
        for &rate in rates {
            let layers =
                fixed_length_layers(model, rgb.width(), rgb.height(), tile, Rate::Bpp(rate))?;
            let bytes = codec::fixed_length_len(model, rgb.width(), rgb.height(), tile, layers);
            let t = Instant::now();
            let recon = baseline.reconstruct(rgb, layers);
            out.push(Point {
                codec: "residual-vq".into(),
                image: name.clone(),
                setting: rate,
                layers,
                bpp: bytes as f64 * 8.0 / (rgb.width() as f64 * rgb.height() as f64),
                psnr: psnr(rgb, &recon),
                ms_ssim: msssim::ms_ssim(rgb, &recon),
                encode_s: t.elapsed().as_secs_f64(),
                decode_s: 0.0,
            });
        }
    }
    Ok(out)
}

/// Qualities past a sweep's, tried in turn while JPEG's mean rate stays under ddn's
/// highest: smooth photos stay under 1 bpp at quality 85, which left the comparison at
/// the top rates empty.
const JPEG_QUALITIES_TO_COVER: [u8; 4] = [90, 95, 98, 100];

/// The next JPEG quality to add so that the JPEG curve reaches ddn's highest mean rate,
/// given the points so far and the qualities swept; `None` once it does, when nothing
/// was swept (no JPEG wanted), or when no quality is left.
pub fn jpeg_quality_to_cover(points: &[Point], swept: &[u8]) -> Option<u8> {
    let means = means(points);
    let top = |codec: &str| {
        (means.iter())
            .filter(|m| m.codec == codec)
            .map(|m| m.bpp)
            .reduce(f64::max)
    };
    let highest_swept = *swept.iter().max()?;
    if top("jpeg")? >= top("ddn")? {
        return None;
    }
    JPEG_QUALITIES_TO_COVER
        .into_iter()
        .find(|&q| q > highest_swept)
}

/// Codes every image at every JPEG quality.
pub fn evaluate_jpeg(
    images: &[(String, RgbImage)],
    qualities: &[u8],
    progress: &dyn Fn(),
) -> Result<Vec<Point>> {
    let mut out = Vec::new();
    for (name, rgb) in images {
        for &q in qualities {
            let t = Instant::now();
            let bytes = jpeg::encode(rgb, q)?;
            let encode_s = t.elapsed().as_secs_f64();
            let t = Instant::now();
            let decoded = jpeg::decode(&bytes)?;
            out.push(Point {
                codec: "jpeg".into(),
                image: name.clone(),
                setting: q as f64,
                layers: 0,
                bpp: bytes.len() as f64 * 8.0 / (rgb.width() as f64 * rgb.height() as f64),
                psnr: psnr(rgb, &decoded),
                ms_ssim: msssim::ms_ssim(rgb, &decoded),
                encode_s,
                decode_s: t.elapsed().as_secs_f64(),
            });
            progress();
        }
    }
    Ok(out)
}

/// Another codec's mean curve: `(bpp, psnr, ms_ssim)` points.
pub struct AnchorCurve {
    pub name: String,
    pub points: Vec<(f64, f64, Option<f64>)>,
}

/// An anchors file: other codecs' mean curves by name.
#[derive(Debug, Deserialize)]
struct AnchorFile {
    codecs: std::collections::BTreeMap<String, AnchorCodec>,
}

#[derive(Debug, Deserialize)]
struct AnchorCodec {
    points: Vec<AnchorPoint>,
}

#[derive(Debug, Deserialize)]
struct AnchorPoint {
    bpp: f64,
    psnr: f64,
    #[serde(default)]
    ms_ssim: Option<f64>,
}

/// Curves of other codecs from a JSON file shaped
/// `{"codecs": {NAME: {"points": [{"bpp": …, "psnr": …, "ms_ssim": …}]}}}` (other fields
/// are ignored; `ms_ssim` may be missing), in name order.
pub fn load_anchors(path: &Path) -> Result<Vec<AnchorCurve>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let file: AnchorFile = serde_json::from_str(&text)
        .map_err(|e| Error::InvalidArgument(format!("{}: {e}", path.display())))?;
    Ok(file
        .codecs
        .into_iter()
        .map(|(name, codec)| AnchorCurve {
            name,
            points: codec
                .points
                .iter()
                .map(|p| (p.bpp, p.psnr, p.ms_ssim))
                .collect(),
        })
        .collect())
}

/// Every point as CSV, one row each, with a header of the field names.
pub fn points_csv(points: &[Point]) -> Vec<u8> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    for p in points {
        writer
            .serialize(p)
            .expect("a point serialises to a CSV row");
    }
    writer.into_inner().expect("writing to memory cannot fail")
}

/// Means per codec and setting, in first-seen order.
pub fn means(points: &[Point]) -> Vec<MeanPoint> {
    let mut keys: Vec<(String, f64)> = Vec::new();
    for p in points {
        if !keys.iter().any(|(c, s)| *c == p.codec && *s == p.setting) {
            keys.push((p.codec.clone(), p.setting));
        }
    }
    keys.into_iter()
        .map(|(codec, setting)| {
            let group: Vec<&Point> = points
                .iter()
                .filter(|p| p.codec == codec && p.setting == setting)
                .collect();
            let n = group.len() as f64;
            let mean = |f: &dyn Fn(&Point) -> f64| group.iter().map(|p| f(p)).sum::<f64>() / n;
            MeanPoint {
                codec,
                setting,
                images: group.len(),
                bpp: mean(&|p| p.bpp),
                psnr: mean(&|p| p.psnr),
                ms_ssim: group
                    .iter()
                    .map(|p| p.ms_ssim)
                    .sum::<Option<f64>>()
                    .map(|s| s / n),
                encode_s: mean(&|p| p.encode_s),
                decode_s: mean(&|p| p.decode_s),
            }
        })
        .collect()
}

/// A Markdown table of mean points.
pub fn markdown_table(means: &[MeanPoint]) -> String {
    let mut s = String::from(
        "| codec | setting | images | bpp | PSNR (dB) | MS-SSIM | encode (s) | decode (s) |\n|---|---|---|---|---|---|---|---|\n",
    );
    for m in means {
        let ms = m.ms_ssim.map_or("–".to_string(), |v| format!("{v:.4}"));
        s.push_str(&format!(
            "| {} | {} | {} | {:.4} | {:.2} | {} | {:.2} | {:.2} |\n",
            m.codec, m.setting, m.images, m.bpp, m.psnr, ms, m.encode_s, m.decode_s
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(codec: &str, setting: f64, bpp: f64) -> Point {
        Point {
            codec: codec.into(),
            image: "a".into(),
            setting,
            layers: 0,
            bpp,
            psnr: 30.0,
            ms_ssim: None,
            encode_s: 0.0,
            decode_s: 0.0,
        }
    }

    #[test]
    fn the_jpeg_sweep_goes_on_until_it_reaches_ddns_highest_rate() {
        let mut points = vec![point("ddn", 1.0, 0.99), point("jpeg", 85.0, 0.85)];
        assert_eq!(jpeg_quality_to_cover(&points, &[50, 85]), Some(90));
        points.push(point("jpeg", 90.0, 0.95));
        assert_eq!(jpeg_quality_to_cover(&points, &[50, 85, 90]), Some(95));
        points.push(point("jpeg", 95.0, 1.4));
        assert_eq!(jpeg_quality_to_cover(&points, &[50, 85, 90, 95]), None);
        // Past the last quality there is nothing left to try.
        let short = vec![point("ddn", 9.0, 9.0), point("jpeg", 100.0, 5.0)];
        assert_eq!(jpeg_quality_to_cover(&short, &[100]), None);
        // No sweep wanted, or no ddn points: nothing to add.
        assert_eq!(jpeg_quality_to_cover(&points[..1], &[]), None);
        assert_eq!(jpeg_quality_to_cover(&points[1..], &[85]), None);
    }
}
