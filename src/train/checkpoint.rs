//! Training checkpoints: weights, Adam moments, Split-and-Prune counters and the step, in
//! one safetensors file written atomically, so that `--resume` continues exactly.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};

use super::optim::Adam;
use super::split_prune::NodeStats;
use super::Hyper;
use crate::error::{Error, Result};
use crate::model::{read_config, to_safetensors, ModelConfig, Network};

const TRAIN_KEY: &str = "ddn.train";

#[derive(Debug, Clone, Serialize, Deserialize)]
struct TrainMeta {
    step: u64,
    /// Training seconds summed over every run that led here.
    #[serde(default)]
    seconds: f64,
    adam_t: u64,
    hyper: Hyper,
    stats: Vec<NodeStats>,
}

/// Everything a checkpoint restores.
pub struct Restored {
    pub config: ModelConfig,
    pub step: u64,
    pub seconds: f64,
    pub adam_t: u64,
    pub hyper: Hyper,
    pub stats: Vec<NodeStats>,
    pub tensors: HashMap<String, Tensor>,
}

/// What a checkpoint records besides the network.
pub struct Progress<'a> {
    pub adam: &'a Adam,
    pub stats: &'a [NodeStats],
    pub step: u64,
    pub seconds: f64,
    pub hyper: &'a Hyper,
}

pub fn save(path: &Path, network: &Network, progress: Progress) -> Result<()> {
    let Progress {
        adam,
        stats,
        step,
        seconds,
        hyper,
    } = progress;
    let mut extra = Vec::new();
    for (p, (m, v)) in network.params().iter().zip(adam.m.iter().zip(&adam.v)) {
        extra.push((
            format!("adam.m.{}", p.name),
            m.as_tensor().to_device(&Device::Cpu)?,
        ));
        extra.push((
            format!("adam.v.{}", p.name),
            v.as_tensor().to_device(&Device::Cpu)?,
        ));
    }
    let meta = TrainMeta {
        step,
        seconds,
        adam_t: adam.t,
        hyper: hyper.clone(),
        stats: stats.to_vec(),
    };
    let json = serde_json::to_string(&meta).expect("serialisable");
    let bytes = to_safetensors(network, &extra, &[(TRAIN_KEY.into(), json)])?;
    crate::io::write_output(path, true, &bytes)
}

pub fn load(path: &Path) -> Result<Restored> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let config = read_config(&bytes)?;
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes)
        .map_err(|e| Error::InvalidModel(e.to_string()))?;
    let json = meta
        .metadata()
        .as_ref()
        .and_then(|m| m.get(TRAIN_KEY))
        .ok_or_else(|| {
            Error::InvalidModel(format!("{} is not a training checkpoint", path.display()))
        })?;
    let meta: TrainMeta =
        serde_json::from_str(json).map_err(|e| Error::InvalidModel(e.to_string()))?;
    let tensors = candle_core::safetensors::load_buffer(&bytes, &Device::Cpu)
        .map_err(|e| Error::InvalidModel(e.to_string()))?;
    Ok(Restored {
        config,
        step: meta.step,
        seconds: meta.seconds,
        adam_t: meta.adam_t,
        hyper: meta.hyper,
        stats: meta.stats,
        tensors,
    })
}
