//! `ddn train`.

use std::path::PathBuf;

use ddn::error::{Error, Result};
use ddn::model::ModelConfig;
use ddn::train::{Hyper, RunOptions};

use super::device::{device, DeviceChoice};

#[derive(Debug, clap::Args)]
pub struct TrainArgs {
    /// Folder of training images (PNG and JPEG, searched recursively).
    #[arg(long)]
    pub data: PathBuf,
    /// The model file to write when training stops.
    #[arg(long)]
    pub out: PathBuf,
    /// Network configuration (JSON, as stored in model files); default: the codec ladder.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Stop at this total step count.
    #[arg(long)]
    pub steps: Option<u64>,
    /// Stop after this many minutes of this run.
    #[arg(long)]
    pub minutes: Option<f64>,
    /// Continue from a checkpoint (its hyper-parameters and configuration win).
    #[arg(long)]
    pub resume: Option<PathBuf>,
    /// Start a fresh run from this model's weights wherever names and shapes match (for
    /// a ladder grown by a few layers).
    #[arg(long, conflicts_with = "resume")]
    pub init: Option<PathBuf>,
    /// Where the network trains.
    #[arg(long, value_enum, default_value_t = DeviceChoice::Cpu)]
    pub device: DeviceChoice,
    #[arg(long, default_value_t = Hyper::default().seed)]
    pub seed: u64,
    #[arg(long, default_value_t = Hyper::default().batch)]
    pub batch: usize,
    /// Side of the random training crops in pixels.
    #[arg(long, default_value_t = Hyper::default().crop)]
    pub crop: usize,
    #[arg(long, default_value_t = Hyper::default().lr)]
    pub lr: f64,
    #[arg(long, default_value_t = Hyper::default().warmup_steps)]
    pub warmup: u64,
    /// Decay the learning rate (cosine, to a tenth) until --steps; with --resume, this
    /// replaces the checkpoint's decay schedule.
    #[arg(long)]
    pub decay: bool,
    /// Probability, per layer and step, that random choices replace the nearest.
    #[arg(long, default_value_t = Hyper::default().chain_dropout)]
    pub chain_dropout: f64,
    /// Let the training walk keep cells as the encoder does, with a trade-off λ drawn
    /// log-uniformly from LO,HI each step (the encoder's λ: ~200 at 1 bpp, ~16000 at
    /// 0.05 bpp); default: never keep. With --resume, this replaces the checkpoint's range.
    #[arg(long, value_delimiter = ',', value_name = "LO,HI")]
    pub keep_lambda: Option<Vec<f64>>,
    /// With --keep-lambda: the share of steps (0 to 1) that never keep, as plain DDN
    /// training does. With --resume, this replaces the checkpoint's share.
    #[arg(long, default_value_t = 0.0, requires = "keep_lambda")]
    pub plain_share: f64,
    /// Let Split-and-Prune act only from this step on.
    #[arg(long, default_value_t = 0)]
    pub split_start: u64,
    /// Train only these parameters (comma-separated names or dot-separated prefixes of
    /// names, as `level4.layer0.head,level4.layer1.head`); the rest are held still. With
    /// --resume, this replaces the checkpoint's selection.
    #[arg(long, value_delimiter = ',', value_name = "NAMES")]
    pub train_only: Option<Vec<String>>,
    /// Before the first step, refit the heads that train by least squares this many times
    /// (each a pass over --refit-batches batches: every node gets the rows that best fit
    /// the cells that chose it); with --steps 0, only that.
    #[arg(long, default_value_t = 0)]
    pub refit: u64,
    #[arg(long, default_value_t = 50)]
    pub refit_batches: u64,
    /// Checkpoint file (default: OUT with .ckpt.safetensors).
    #[arg(long)]
    pub checkpoint: Option<PathBuf>,
    #[arg(long, default_value_t = 100)]
    pub checkpoint_every: u64,
    /// CSV log (default: OUT with .log.csv); appended to on resume.
    #[arg(long)]
    pub log: Option<PathBuf>,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

fn load_config(path: &Option<PathBuf>) -> Result<ModelConfig> {
    let Some(path) = path else {
        return Ok(ModelConfig::default_codec());
    };
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let config: ModelConfig = serde_json::from_str(&text)
        .map_err(|e| Error::InvalidModel(format!("{}: {e}", path.display())))?;
    config.validate()?;
    Ok(config)
}

pub fn run(a: &TrainArgs) -> Result<()> {
    if a.steps.is_none() && a.minutes.is_none() {
        return Err(Error::InvalidArgument("give --steps or --minutes".into()));
    }
    if a.batch == 0 || a.crop == 0 || a.checkpoint_every == 0 {
        return Err(Error::InvalidArgument(
            "--batch, --crop and --checkpoint-every must be positive".into(),
        ));
    }
    let keep_lambda = match a.keep_lambda.as_deref() {
        None => [0.0, 0.0],
        Some(&[lo, hi]) if lo > 0.0 && hi >= lo && hi.is_finite() => [lo, hi],
        Some(_) => {
            return Err(Error::InvalidArgument(
                "--keep-lambda takes LO,HI with 0 < LO <= HI".into(),
            ))
        }
    };
    if !(0.0..=1.0).contains(&a.plain_share) {
        return Err(Error::InvalidArgument(
            "--plain-share takes a share from 0 to 1".into(),
        ));
    }
    let config = load_config(&a.config)?;
    if !a.crop.is_multiple_of(config.granule() as usize) {
        return Err(Error::InvalidArgument(format!(
            "--crop {} must be a multiple of the model's largest cell, {} px",
            a.crop,
            config.granule()
        )));
    }
    let with_suffix = |suffix: &str| {
        let mut s = a.out.clone().into_os_string();
        s.push(suffix);
        PathBuf::from(s)
    };
    let opts = RunOptions {
        data: a.data.clone(),
        out: a.out.clone(),
        config,
        hyper: Hyper {
            seed: a.seed,
            batch: a.batch,
            crop: a.crop,
            lr: a.lr,
            warmup_steps: a.warmup,
            chain_dropout: a.chain_dropout,
            decay_until: if a.decay { a.steps.unwrap_or(0) } else { 0 },
            keep_lambda,
            plain_share: a.plain_share,
            split_start: a.split_start,
            train_only: a.train_only.clone().unwrap_or_default(),
            ..Hyper::default()
        },
        steps: a.steps,
        minutes: a.minutes,
        resume: a.resume.clone(),
        init: a.init.clone(),
        decay_until: if a.decay { a.steps } else { None },
        keep_lambda: a
            .keep_lambda
            .is_some()
            .then_some((keep_lambda, a.plain_share)),
        train_only: a.train_only.clone(),
        refit: (a.refit, a.refit_batches),
        checkpoint: a
            .checkpoint
            .clone()
            .unwrap_or_else(|| with_suffix(".ckpt.safetensors")),
        checkpoint_every: a.checkpoint_every,
        log: a.log.clone().unwrap_or_else(|| with_suffix(".log.csv")),
        device: device(a.device)?,
    };
    let bar = progress_bar(a.quiet, a.steps);
    ddn::train::run(&opts, &mut |step, message| {
        bar.set_position(step);
        bar.set_message(message.to_string());
    })?;
    bar.finish();
    Ok(())
}

fn progress_bar(quiet: bool, steps: Option<u64>) -> indicatif::ProgressBar {
    let bar = match (quiet, steps) {
        (true, _) => indicatif::ProgressBar::hidden(),
        (false, None) => indicatif::ProgressBar::new_spinner(),
        (false, Some(total)) => indicatif::ProgressBar::new(total),
    };
    let style =
        indicatif::ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} {msg}")
            .expect("valid template")
            .progress_chars("=> ");
    bar.set_style(style);
    bar
}
