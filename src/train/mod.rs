//! `ddn train`: learns a DDN from a folder of images.
//!
//! One step: a seeded batch of random crops, a walk that keeps the nearest candidate of
//! every cell (chain dropout sometimes keeps random ones), the mean over layers of the
//! chosen candidates' MSE, an Adam step, then Split-and-Prune on every DDL.

pub mod checkpoint;
pub mod chooser;
pub mod data;
pub mod optim;
pub mod refit;
pub mod split_prune;

use std::path::PathBuf;
use std::time::Instant;

use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::{to_safetensors, ModelConfig, Network, Walk};
use chooser::{KeepRule, TrainChooser};
use data::Dataset;
use optim::{copy_rows, Adam, AdamConfig};
use split_prune::NodeStats;

/// Hyper-parameters, stored in checkpoints so that a resumed run keeps them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hyper {
    pub seed: u64,
    pub batch: usize,
    pub crop: usize,
    pub lr: f64,
    pub warmup_steps: u64,
    pub chain_dropout: f64,
    pub clip_norm: f64,
    /// When nonzero, the learning rate follows a cosine from `lr` down to `lr / 10` between
    /// the end of warm-up and this step.
    #[serde(default)]
    pub decay_until: u64,
    /// Range of the per-step keep trade-off λ (log-uniform; see [`chooser::KeepRule`]);
    /// `[0, 0]`: the training walk never keeps.
    #[serde(default)]
    pub keep_lambda: [f64; 2],
    /// Share of steps that never keep whatever `keep_lambda` says (plain nearest-candidate
    /// steps, which the finest layers need at high rates).
    #[serde(default)]
    pub plain_share: f64,
    /// Split-and-Prune acts only from this step on (a run started from trained weights
    /// first lets its fresh counters see enough cells).
    #[serde(default)]
    pub split_start: u64,
    /// When not empty, only these parameters train (each entry a parameter's name or a
    /// dot-separated prefix of names, as `level4.layer0.head` or `level4`); the rest are
    /// held still, and Split-and-Prune edits only heads that train.
    #[serde(default)]
    pub train_only: Vec<String>,
}

impl Default for Hyper {
    fn default() -> Self {
        Hyper {
            seed: 1,
            batch: 16,
            crop: 64,
            lr: 5e-4,
            warmup_steps: 200,
            chain_dropout: 0.05,
            clip_norm: 1.0,
            decay_until: 0,
            keep_lambda: [0.0, 0.0],
            plain_share: 0.0,
            split_start: 0,
            train_only: Vec::new(),
        }
    }
}

impl Hyper {
    /// Whether the parameter `name` trains under `train_only`.
    pub fn trains(&self, name: &str) -> bool {
        self.train_only.is_empty() || self.train_only.iter().any(|p| is_named(p, name))
    }

    /// Linear warm-up, then constant or a cosine decay to a tenth.
    pub fn lr_at(&self, step: u64) -> f64 {
        if step < self.warmup_steps {
            return self.lr * (step + 1) as f64 / self.warmup_steps as f64;
        }
        if self.decay_until <= self.warmup_steps {
            return self.lr;
        }
        let span = (self.decay_until - self.warmup_steps) as f64;
        let t = ((step - self.warmup_steps) as f64 / span).min(1.0);
        let floor = self.lr / 10.0;
        floor + (self.lr - floor) * 0.5 * (1.0 + (std::f64::consts::PI * t).cos())
    }
}

/// Whether `prefix` is the parameter name `name` or a dot-separated prefix of it
/// (`level4.layer1` names `level4.layer1.head`, not `level4.layer10.head`).
fn is_named(prefix: &str, name: &str) -> bool {
    name.strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
}

/// What one step measured.
#[derive(Debug, Clone)]
pub struct StepReport {
    pub step: u64,
    pub loss: f64,
    /// PSNR of the last layer's chosen image against its target (8-bit scale).
    pub psnr: f64,
    pub grad_norm: f64,
    pub splits: usize,
    /// Picks of each node of each layer in this step.
    pub picks: Vec<Vec<u64>>,
    /// Seconds spent walking (forward and choices), in the backward pass, and updating
    /// (Adam, Split-and-Prune).
    pub seconds: [f64; 3],
}

/// A training run in memory.
pub struct Trainer {
    pub network: Network,
    pub adam: Adam,
    pub stats: Vec<NodeStats>,
    pub hyper: Hyper,
    /// Steps completed.
    pub step: u64,
    /// Training seconds before this process (from the checkpoint).
    pub seconds_before: f64,
}

impl Trainer {
    pub fn new(config: &ModelConfig, hyper: Hyper, device: &Device) -> Result<Self> {
        let network = Network::new(config, hyper.seed, device)?;
        let vars = network.params().into_iter().map(|p| p.var).collect();
        let adam = Adam::new(
            vars,
            AdamConfig {
                clip_norm: hyper.clip_norm,
                ..AdamConfig::default()
            },
        )?;
        let stats = config
            .schedule()
            .iter()
            .map(|s| NodeStats::new(s.k as usize))
            .collect();
        let train_only = hyper.train_only.clone();
        let mut trainer = Trainer {
            network,
            adam,
            stats,
            hyper,
            step: 0,
            seconds_before: 0.0,
        };
        trainer.train_only(train_only)?;
        Ok(trainer)
    }

    /// Trains only the parameters `names` selects (all of them when empty; see
    /// [`Hyper::train_only`]) and holds the rest still.
    pub fn train_only(&mut self, names: Vec<String>) -> Result<()> {
        let params = self.network.params();
        if let Some(p) = names
            .iter()
            .find(|p| !params.iter().any(|q| is_named(p, &q.name)))
        {
            return Err(Error::InvalidArgument(format!(
                "no parameter of this model is named {p} or under it"
            )));
        }
        self.hyper.train_only = names;
        self.adam.frozen = params.iter().map(|p| !self.hyper.trains(&p.name)).collect();
        Ok(())
    }

    /// Restores a run from a checkpoint.
    pub fn resume(path: &std::path::Path, device: &Device) -> Result<Self> {
        let r = checkpoint::load(path)?;
        let mut trainer = Trainer::new(&r.config, r.hyper, device)?;
        trainer.network.load_tensors(&r.tensors)?;
        for (i, p) in trainer.network.params().iter().enumerate() {
            for (prefix, store) in [("adam.m.", &trainer.adam.m), ("adam.v.", &trainer.adam.v)] {
                let name = format!("{prefix}{}", p.name);
                let t = r
                    .tensors
                    .get(&name)
                    .ok_or_else(|| Error::InvalidModel(format!("checkpoint lacks {name}")))?;
                store[i].set(&t.to_device(device)?)?;
            }
        }
        trainer.adam.t = r.adam_t;
        trainer.stats = r.stats;
        trainer.step = r.step;
        trainer.seconds_before = r.seconds;
        Ok(trainer)
    }

    /// One optimizer step on `batch` (`[B,3,S,S]`, model space).
    pub fn train_step(&mut self, batch: &Tensor) -> Result<StepReport> {
        let started = Instant::now();
        let (b, _, h, w) = batch.dims4()?;
        let layers = self.network.config().layer_count();
        let targets = self.network.layer_targets(batch, layers)?;
        let mut chooser = TrainChooser {
            targets: &targets,
            stats: &mut self.stats,
            picks: Vec::new(),
            seed: self.hyper.seed,
            step: self.step,
            chain_dropout: self.hyper.chain_dropout,
            keep: KeepRule::for_step(
                self.hyper.seed,
                self.step,
                self.hyper.keep_lambda,
                self.hyper.plain_share,
                self.network
                    .config()
                    .schedule()
                    .iter()
                    .map(|s| s.scale_log2)
                    .collect(),
            ),
        };
        let walk = self
            .network
            .training_walk(b, h, w, layers, Walk::Choose(&mut chooser))?;
        let picks = std::mem::take(&mut chooser.picks);
        let losses = walk
            .images
            .iter()
            .zip(&targets)
            .map(|(img, tgt)| crate::model::ddl::mse(img, tgt))
            .collect::<Result<Vec<_>>>()?;
        let loss = (Tensor::stack(&losses, 0)?.mean_all())?;
        let last_mse = losses.last().expect("a layer").to_scalar::<f32>()? as f64;
        let loss_value = loss.to_scalar::<f32>()? as f64;
        let walked = Instant::now();
        let grads = loss.backward()?;
        // A GPU runs the backward pass asynchronously: wait for it, so that its time is
        // not counted as the update's.
        self.network.device().synchronize()?;
        let backward = Instant::now();
        let grad_norm = self.adam.step(&grads, self.hyper.lr_at(self.step))?;
        let splits = if self.step >= self.hyper.split_start {
            self.split_and_prune()?
        } else {
            0
        };
        self.step += 1;
        let since = |a: Instant, b: Instant| b.duration_since(a).as_secs_f64();
        Ok(StepReport {
            step: self.step,
            loss: loss_value,
            psnr: -10.0 * last_mse.max(1e-12).log10(),
            grad_norm,
            splits,
            picks,
            seconds: [
                since(started, walked),
                since(walked, backward),
                since(backward, Instant::now()),
            ],
        })
    }

    /// At most one split per DDL: the split node's head rows and Adam moments are copied
    /// into the pruned node's slot.
    pub fn split_and_prune(&mut self) -> Result<usize> {
        let mut splits = 0;
        for (stats, head) in self.stats.iter_mut().zip(self.network.heads()) {
            let i = self.adam.position(&head).expect("head is optimised");
            if self.adam.frozen[i] {
                continue;
            }
            let Some(s) = stats.decide() else { continue };
            for var in [&head, &self.adam.m[i], &self.adam.v[i]] {
                copy_rows(var, 3, s.split, s.pruned)?;
            }
            stats.apply(s);
            splits += 1;
        }
        Ok(splits)
    }

    /// Writes a checkpoint of this run after `seconds` of training in this process.
    pub fn save_checkpoint(&self, path: &std::path::Path, seconds: f64) -> Result<()> {
        checkpoint::save(
            path,
            &self.network,
            checkpoint::Progress {
                adam: &self.adam,
                stats: &self.stats,
                step: self.step,
                seconds: self.seconds_before + seconds,
                hyper: &self.hyper,
            },
        )
    }

    /// The trained model file's bytes: weights and configuration only.
    pub fn model_bytes(&self) -> Result<Vec<u8>> {
        to_safetensors(&self.network, &[], &[])
    }
}

/// Options of a training run from the command line.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub data: PathBuf,
    pub out: PathBuf,
    pub config: ModelConfig,
    pub hyper: Hyper,
    /// Stop after this many steps in total.
    pub steps: Option<u64>,
    /// Stop after this many minutes of this invocation.
    pub minutes: Option<f64>,
    pub resume: Option<PathBuf>,
    /// A fresh run starts from this model's weights where names and shapes match.
    pub init: Option<PathBuf>,
    /// On resume, replace the checkpoint's decay end (`--decay` with a new `--steps`).
    pub decay_until: Option<u64>,
    /// On resume, replace the checkpoint's keep trade-off range and plain share
    /// (`--keep-lambda`, `--plain-share`).
    pub keep_lambda: Option<([f64; 2], f64)>,
    /// On resume, replace the checkpoint's selection of parameters that train
    /// (`--train-only`).
    pub train_only: Option<Vec<String>>,
    /// Least-squares passes over the heads that train before the first step
    /// ([`refit::refit_pass`]), and batches per pass.
    pub refit: (u64, u64),
    pub checkpoint: PathBuf,
    pub checkpoint_every: u64,
    pub log: PathBuf,
    /// Where the network trains.
    pub device: Device,
}

/// Node-usage entropy in bits of a layer's picks.
pub fn entropy_bits(picks: &[u64]) -> f64 {
    let total: u64 = picks.iter().sum();
    if total == 0 {
        return 0.0;
    }
    picks
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = c as f64 / total as f64;
            -p * p.log2()
        })
        .sum()
}

/// Accumulated picks over a logging window, per layer.
struct Window {
    picks: Vec<Vec<u64>>,
    loss: f64,
    psnr: f64,
    steps: u64,
    images: u64,
    seconds: [f64; 3],
    started: Instant,
}

impl Window {
    fn new() -> Self {
        Window {
            picks: Vec::new(),
            loss: 0.0,
            psnr: 0.0,
            steps: 0,
            images: 0,
            seconds: [0.0; 3],
            started: Instant::now(),
        }
    }

    fn add(&mut self, report: &StepReport, batch: usize) {
        if self.picks.len() < report.picks.len() {
            self.picks.resize(report.picks.len(), Vec::new());
        }
        for (acc, p) in self.picks.iter_mut().zip(&report.picks) {
            acc.resize(p.len(), 0);
            acc.iter_mut().zip(p).for_each(|(a, b)| *a += b);
        }
        self.steps += 1;
        self.images += batch as u64;
        self.loss += report.loss;
        self.psnr += report.psnr;
        for (acc, s) in self.seconds.iter_mut().zip(report.seconds) {
            *acc += s;
        }
    }

    /// Mean entropy per level (bits), in level order.
    fn level_entropy(&self, config: &ModelConfig) -> Vec<f64> {
        let mut layer = 0;
        config
            .levels
            .iter()
            .map(|level| {
                let n = level.layers.len();
                let mean = (layer..layer + n)
                    .map(|l| self.picks.get(l).map_or(0.0, |p| entropy_bits(p)))
                    .sum::<f64>()
                    / n as f64;
                layer += n;
                mean
            })
            .collect()
    }

    fn dead_nodes(&self) -> usize {
        self.picks
            .iter()
            .map(|p| p.iter().filter(|&&c| c == 0).count())
            .sum()
    }
}

/// Runs `ddn train`. `progress` hears the step reached at the start and at every log
/// line, with that line's summary.
pub fn run(opts: &RunOptions, progress: &mut dyn FnMut(u64, &str)) -> Result<()> {
    let device = &opts.device;
    // TF32 GEMMs on a GPU (10-bit mantissas, f32 sums), as deep-learning frameworks train
    // by default. Only this process's training is affected: coding never runs in it.
    #[cfg(feature = "cuda")]
    if device.is_cuda() {
        candle_core::cuda::set_gemm_reduced_precision_f32(true);
    }
    let mut trainer = match &opts.resume {
        Some(path) => Trainer::resume(path, device)?,
        None => Trainer::new(&opts.config, opts.hyper.clone(), device)?,
    };
    if let Some(path) = &opts.init {
        warm_start(&trainer.network, path)?;
    }
    if let (Some(_), Some(until)) = (&opts.resume, opts.decay_until) {
        trainer.hyper.decay_until = until;
    }
    if let (Some(_), Some((range, plain_share))) = (&opts.resume, opts.keep_lambda) {
        trainer.hyper.keep_lambda = range;
        trainer.hyper.plain_share = plain_share;
    }
    if let (Some(_), Some(names)) = (&opts.resume, &opts.train_only) {
        trainer.train_only(names.clone())?;
    }
    let hyper = trainer.hyper.clone();
    let dataset = Dataset::load(&opts.data, hyper.crop)?;
    refit_heads(&trainer, &dataset, opts.refit)?;
    let started = Instant::now();
    let total = opts.steps.unwrap_or(u64::MAX);
    progress(trainer.step, "");
    let mut log = open_log(&opts.log, trainer.step == 0, &trainer.network)?;
    let mut window = Window::new();
    let log_every = 25;
    while trainer.step < total {
        if let Some(m) = opts.minutes {
            if started.elapsed().as_secs_f64() >= m * 60.0 {
                break;
            }
        }
        let batch = dataset.batch(hyper.seed, trainer.step, hyper.batch, hyper.crop, device)?;
        let report = trainer.train_step(&batch)?;
        if !report.loss.is_finite() {
            return Err(Error::InvalidArgument(format!(
                "training diverged at step {}",
                report.step
            )));
        }
        window.add(&report, hyper.batch);
        if trainer.step % log_every == 0 || trainer.step == total {
            let line = log_line(
                &report,
                &window,
                trainer.network.config(),
                trainer.seconds_before + started.elapsed().as_secs_f64(),
                hyper.lr_at(trainer.step),
            );
            write_log_row(&mut log, &opts.log, &line.row)?;
            progress(trainer.step, &line.human);
            window = Window::new();
        }
        if trainer.step % opts.checkpoint_every == 0 {
            trainer.save_checkpoint(&opts.checkpoint, started.elapsed().as_secs_f64())?;
        }
    }
    trainer.save_checkpoint(&opts.checkpoint, started.elapsed().as_secs_f64())?;
    crate::io::write_output(&opts.out, true, &trainer.model_bytes()?)?;
    eprintln!(
        "trained to step {} in {:.1} min ({:.1} min in all); model {} (checkpoint {})",
        trainer.step,
        started.elapsed().as_secs_f64() / 60.0,
        (trainer.seconds_before + started.elapsed().as_secs_f64()) / 60.0,
        opts.out.display(),
        opts.checkpoint.display()
    );
    Ok(())
}

/// `passes` least-squares refits of every head that trains and whose cells hold whole
/// feature pixels, each over the same `batches` batches, drawn apart from the training
/// steps'.
fn refit_heads(trainer: &Trainer, dataset: &Dataset, (passes, batches): (u64, u64)) -> Result<()> {
    if passes == 0 {
        return Ok(());
    }
    let mut layers = Vec::new();
    let mut index = 0;
    for (i, level) in trainer.network.config().levels.iter().enumerate() {
        for (j, layer) in level.layers.iter().enumerate() {
            let whole_pixels = layer.cell_log2 >= level.s2d_log2;
            if whole_pixels && trainer.hyper.trains(&format!("level{i}.layer{j}.head")) {
                layers.push(index);
            }
            index += 1;
        }
    }
    if layers.is_empty() {
        return Err(Error::InvalidArgument(
            "--refit: no head that trains has cells of whole feature pixels".into(),
        ));
    }
    // The same crops every pass (so each pass's error is comparable with the last's), from
    // steps far past any run's.
    let first = 1 << 40;
    let h = &trainer.hyper;
    for pass in 0..passes {
        let started = Instant::now();
        let fits = refit::refit_pass(&trainer.network, dataset, h, (first, batches), &layers)?;
        let summary: Vec<String> = fits
            .iter()
            .map(|f| {
                let psnr = -10.0 * f.mse.max(1e-12).log10();
                format!("layer {} {psnr:.3} dB {} nodes", f.layer, f.nodes_used)
            })
            .collect();
        eprintln!(
            "refit pass {}/{passes} ({:.0} s), before it: {}",
            pass + 1,
            started.elapsed().as_secs_f64(),
            summary.join(", ")
        );
    }
    Ok(())
}

/// Starts from another model's weights wherever names and shapes match (a ladder grown by
/// a few layers keeps everything it had learnt).
fn warm_start(network: &Network, path: &std::path::Path) -> Result<()> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let tensors = candle_core::safetensors::load_buffer(&bytes, &Device::Cpu)
        .map_err(|e| Error::InvalidModel(format!("{}: {e}", path.display())))?;
    let (copied, total) = network.load_matching(&tensors)?;
    if copied == 0 {
        return Err(Error::InvalidModel(format!(
            "{}: no tensor matches this configuration",
            path.display()
        )));
    }
    eprintln!(
        "warm start: {copied} of {total} tensors from {}",
        path.display()
    );
    Ok(())
}

/// The CSV training log: fresh with a header, or appended to on resume.
fn open_log(
    path: &std::path::Path,
    fresh: bool,
    network: &Network,
) -> Result<csv::Writer<std::fs::File>> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(!fresh)
        .write(true)
        .truncate(fresh)
        .open(path)
        .map_err(|e| Error::io(path, e))?;
    let mut log = csv::Writer::from_writer(file);
    if fresh {
        let levels = (0..network.config().levels.len()).map(|i| format!("entropy_level{i}"));
        let header: Vec<String> = ["step", "elapsed_s", "images_per_s", "loss", "psnr", "lr"]
            .into_iter()
            .chain(["grad_norm", "splits"])
            .map(String::from)
            .chain(levels)
            .chain(["dead_nodes", "walk_s", "backward_s", "update_s"].map(String::from))
            .collect();
        write_log_row(&mut log, path, &header)?;
    }
    Ok(log)
}

fn write_log_row(
    log: &mut csv::Writer<std::fs::File>,
    path: &std::path::Path,
    row: &[String],
) -> Result<()> {
    log.write_record(row)
        .and_then(|()| Ok(log.flush()?))
        .map_err(|e| Error::io(path, std::io::Error::other(e)))
}

struct LogLine {
    row: Vec<String>,
    human: String,
}

fn log_line(r: &StepReport, w: &Window, config: &ModelConfig, seconds: f64, lr: f64) -> LogLine {
    let ips = w.images as f64 / w.started.elapsed().as_secs_f64().max(1e-9);
    let entropy = w.level_entropy(config);
    let dead = w.dead_nodes();
    let steps = w.steps.max(1) as f64;
    let (loss, psnr) = (w.loss / steps, w.psnr / steps);
    let ent: Vec<String> = entropy.iter().map(|e| format!("{e:.3}")).collect();
    let mut row = vec![
        r.step.to_string(),
        format!("{seconds:.1}"),
        format!("{ips:.2}"),
        format!("{loss:.6}"),
        format!("{psnr:.3}"),
        format!("{lr:.6}"),
        format!("{:.4}", r.grad_norm),
        r.splits.to_string(),
    ];
    row.extend(ent.iter().cloned());
    row.push(dead.to_string());
    row.extend(w.seconds.iter().map(|s| format!("{:.3}", s / steps)));
    LogLine {
        row,
        human: format!(
            "{ips:.1} img/s loss {loss:.5} psnr {psnr:.2} dB H/level [{}] dead {dead}",
            ent.join(" ")
        ),
    }
}
