//! `ddn eval`.

use std::path::PathBuf;

use ddn::error::{Error, Result};
use ddn::eval::{self, bdrate, jpeg, plot::Curve, rvq::ResidualVq, MeanPoint};
use ddn::train::data::Dataset;

use super::device::ModelArgs;

#[derive(Debug, clap::Args)]
pub struct EvalOptions {
    /// Folder of test images (e.g. Kodak).
    #[arg(long)]
    pub data: PathBuf,
    /// Target rates in bpp, comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = [0.05, 0.1, 0.125, 0.25, 0.5, 0.75])]
    pub rates: Vec<f64>,
    /// JPEG qualities to sweep, comma-separated; qualities 90, 95, 98 and 100 follow while
    /// the sweep stays under ddn's highest mean rate, so every ddn rate has a comparison.
    #[arg(long, value_delimiter = ',', default_values_t = [2u8, 5, 8, 10, 15, 20, 30, 40, 50, 60, 75, 85])]
    pub jpeg_qualities: Vec<u8>,
    /// Skip the JPEG sweep (the anchors still give a JPEG curve).
    #[arg(long)]
    pub no_jpeg: bool,
    /// Other codecs' mean curves to draw alongside (JSON:
    /// `{"codecs": {NAME: {"points": [{"bpp": …, "psnr": …, "ms_ssim": …}]}}}`).
    #[arg(long)]
    pub anchors: Option<PathBuf>,
    /// Also measure the residual-VQ baseline (same schedule, no network), with codebooks
    /// learned on crops from this folder.
    #[arg(long, value_name = "TRAIN_DIR")]
    pub rvq_baseline: Option<PathBuf>,
    /// Folder for rd.json, rd.csv and the plots.
    #[arg(long, default_value = "eval-out")]
    pub out: PathBuf,
    /// Tile side in pixels for the DDN's files, as `ddn compress --tile`.
    #[arg(long, default_value_t = ddn::codec::DEFAULT_TILE)]
    pub tile: u32,
    #[command(flatten)]
    pub model: ModelArgs,
}

/// Crops and k-means iterations for the baseline's codebooks.
const RVQ_CROPS: usize = 256;
const RVQ_CROP: u32 = 128;
const RVQ_ITERATIONS: usize = 12;

fn curve_of(
    means: &[MeanPoint],
    codec: &str,
    value: impl Fn(&MeanPoint) -> Option<f64>,
) -> Vec<(f64, f64)> {
    means
        .iter()
        .filter(|m| m.codec == codec)
        .filter_map(|m| Some((m.bpp, value(m)?)))
        .collect()
}

/// BD-rate, BD-PSNR and PSNR gaps at the DDN's rates, against one anchor curve.
fn comparison(name: &str, anchor: &[(f64, f64)], ddn: &[(f64, f64)]) -> String {
    let pct = |v: Option<f64>| {
        v.map_or("n/a (curves do not overlap)".into(), |v| {
            format!("{v:+.1} %")
        })
    };
    let db = |v: Option<f64>| v.map_or("n/a".into(), |v| format!("{v:+.2} dB"));
    let mut s = format!(
        "ddn against {name}: BD-rate {}, BD-PSNR {}\n",
        pct(bdrate::bd_rate(anchor, ddn)),
        db(bdrate::bd_psnr(anchor, ddn))
    );
    for &(bpp, psnr) in ddn {
        let gap = bdrate::psnr_at(anchor, bpp).map(|a| psnr - a);
        s.push_str(&format!(
            "  at {bpp:.4} bpp: ddn {psnr:.2} dB, {name} {}\n",
            db(gap)
        ));
    }
    s
}

pub fn run(o: &EvalOptions) -> Result<()> {
    if o.rates.iter().any(|r| !(r.is_finite() && *r > 0.0)) {
        return Err(Error::InvalidArgument("--rates must be positive".into()));
    }
    let jpeg_qualities: &[u8] = if o.no_jpeg { &[] } else { &o.jpeg_qualities };
    if jpeg_qualities.iter().any(|&q| !(1..=100).contains(&q)) {
        return Err(Error::InvalidArgument(
            "--jpeg-qualities must be in 1..=100".into(),
        ));
    }
    let anchors = o.anchors.as_deref().map(eval::load_anchors).transpose()?;
    let model = o.model.load()?;
    let images = eval::load_images(&o.data)?;
    let bar =
        indicatif::ProgressBar::new((images.len() * (o.rates.len() + jpeg_qualities.len())) as u64);
    let step = || bar.inc(1);
    let mut points = eval::evaluate_ddn(&model, &images, &o.rates, o.tile, &step)?;
    points.extend(eval::evaluate_jpeg(&images, jpeg_qualities, &step)?);
    let mut swept = jpeg_qualities.to_vec();
    while let Some(q) = eval::jpeg_quality_to_cover(&points, &swept) {
        bar.inc_length(images.len() as u64);
        points.extend(eval::evaluate_jpeg(&images, &[q], &step)?);
        swept.push(q);
    }
    bar.finish_and_clear();
    if let Some(train) = &o.rvq_baseline {
        let crops = Dataset::load(train, RVQ_CROP as usize)?.crops(1, RVQ_CROPS, RVQ_CROP);
        let baseline = ResidualVq::train(
            &crops,
            &model.network.config().schedule(),
            RVQ_ITERATIONS,
            1,
        );
        points.extend(eval::evaluate_rvq(
            &model, &baseline, &images, &o.rates, o.tile,
        )?);
    }
    let means = eval::means(&points);
    let ddn = curve_of(&means, "ddn", |m| Some(m.psnr));
    let mut report = eval::markdown_table(&means);
    report.push_str(&format!("\nJPEG encoder: {}\n", jpeg::ENCODER));
    let jpeg_curve = curve_of(&means, "jpeg", |m| Some(m.psnr));
    if !jpeg_curve.is_empty() {
        report.push_str(&comparison("jpeg (measured)", &jpeg_curve, &ddn));
    }
    let mut psnr_curves = vec![Curve {
        name: "ddn".into(),
        points: ddn.clone(),
    }];
    let mut ssim_curves = vec![Curve {
        name: "ddn".into(),
        points: curve_of(&means, "ddn", |m| m.ms_ssim),
    }];
    for codec in ["jpeg", "residual-vq"] {
        let name = if codec == "jpeg" {
            "jpeg (jpeg-encoder)".to_string()
        } else {
            codec.to_string()
        };
        psnr_curves.push(Curve {
            name: name.clone(),
            points: curve_of(&means, codec, |m| Some(m.psnr)),
        });
        ssim_curves.push(Curve {
            name,
            points: curve_of(&means, codec, |m| m.ms_ssim),
        });
    }
    for anchor in anchors.iter().flatten() {
        let (name, pts) = (&anchor.name, &anchor.points);
        let psnr: Vec<(f64, f64)> = pts.iter().map(|p| (p.0, p.1)).collect();
        if name == "jpeg" {
            report.push_str(&comparison("jpeg (anchor file)", &psnr, &ddn));
        }
        psnr_curves.push(Curve {
            name: format!("{name} (anchor)"),
            points: psnr,
        });
        ssim_curves.push(Curve {
            name: format!("{name} (anchor)"),
            points: pts.iter().filter_map(|p| Some((p.0, p.2?))).collect(),
        });
    }
    print!("{report}");
    std::fs::create_dir_all(&o.out).map_err(|e| Error::io(&o.out, e))?;
    let max_bpp = o.rates.iter().cloned().fold(0.5, f64::max) * 1.25;
    psnr_curves.retain(|c| !c.points.is_empty());
    ssim_curves.retain(|c| !c.points.is_empty());
    eval::plot::write_plot(&o.out, "rd-psnr", "PSNR (dB)", &psnr_curves, max_bpp)?;
    eval::plot::write_plot(&o.out, "rd-msssim", "MS-SSIM", &ssim_curves, max_bpp)?;
    let json = serde_json::json!({ "jpeg_encoder": jpeg::ENCODER, "model_id": model.id.to_string(), "means": means, "points": points });
    ddn::io::write_output(
        &o.out.join("rd.json"),
        true,
        serde_json::to_string_pretty(&json)
            .expect("json")
            .as_bytes(),
    )?;
    ddn::io::write_output(&o.out.join("report.md"), true, report.as_bytes())?;
    ddn::io::write_output(&o.out.join("rd.csv"), true, &eval::points_csv(&points))
}
