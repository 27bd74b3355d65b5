//! `ddn eval`.

use std::path::PathBuf;

use crate::error::{Error, Result};
use crate::eval::{self, rvq::ResidualVq};
use crate::train::data::Dataset;

use super::device::ModelArgs;

#[derive(Debug, clap::Args)]
pub struct EvalOptions {
    /// Folder of test images (e.g. Kodak).
    #[arg(long)]
    pub data: PathBuf,
    /// Target rates in bpp, comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = [0.125, 0.25, 0.5])]
    pub rates: Vec<f64>,
    /// Also measure the residual-VQ baseline (same schedule, no network), with codebooks
    /// learned on crops from this folder.
    #[arg(long, value_name = "TRAIN_DIR")]
    pub rvq_baseline: Option<PathBuf>,
    /// Folder for rd.json and rd.csv.
    #[arg(long, default_value = "eval-out")]
    pub out: PathBuf,
    #[command(flatten)]
    pub model: ModelArgs,
}

/// Crops and k-means iterations for the baseline's codebooks.
const RVQ_CROPS: usize = 256;
const RVQ_CROP: u32 = 128;
const RVQ_ITERATIONS: usize = 12;

pub fn run(o: &EvalOptions) -> Result<()> {
    if o.rates.iter().any(|r| !(r.is_finite() && *r > 0.0)) {
        return Err(Error::InvalidArgument("--rates must be positive".into()));
    }
    let model = o.model.load()?;
    let images = eval::load_images(&o.data)?;
    let bar = indicatif::ProgressBar::new((images.len() * o.rates.len()) as u64);
    let mut points = eval::evaluate_ddn(&model, &images, &o.rates, &bar)?;
    bar.finish_and_clear();
    if let Some(train) = &o.rvq_baseline {
        let crops = Dataset::load(train, RVQ_CROP as usize)?.crops(1, RVQ_CROPS, RVQ_CROP);
        let baseline = ResidualVq::train(
            &crops,
            &model.network.config().schedule(),
            RVQ_ITERATIONS,
            1,
        );
        points.extend(eval::evaluate_rvq(&model, &baseline, &images, &o.rates)?);
    }
    let means = eval::means(&points);
    print!("{}", eval::markdown_table(&means));
    std::fs::create_dir_all(&o.out).map_err(|e| Error::io(&o.out, e))?;
    let json = serde_json::json!({ "means": means, "points": points });
    crate::io::write_output(
        &o.out.join("rd.json"),
        true,
        serde_json::to_string_pretty(&json)
            .expect("json")
            .as_bytes(),
    )?;
    let mut csv = String::from("codec,image,setting,layers,bpp,psnr,encode_s,decode_s\n");
    for p in &points {
        csv.push_str(&format!(
            "{},{},{},{},{:.6},{:.4},{:.3},{:.3}\n",
            p.codec, p.image, p.setting, p.layers, p.bpp, p.psnr, p.encode_s, p.decode_s
        ));
    }
    crate::io::write_output(&o.out.join("rd.csv"), true, csv.as_bytes())
}
