//! The DDN model: its configuration, its network, and its file.
//!
//! A model file is a safetensors file whose metadata holds the configuration as JSON
//! under [`CONFIG_KEY`], so the file alone describes the network. Its identity in `.ddn`
//! files is the first 8 bytes of the file's SHA-256 (codec-spec.md §3).

pub mod color;
pub mod config;
pub mod conv;
pub mod ddl;
mod gemm;
pub mod network;
pub mod shipped;
mod shuffle;
mod simd;

use std::collections::HashMap;
use std::path::Path;

use candle_core::{Device, Tensor};
use sha2::{Digest, Sha256};

pub use config::{LayerConfig, LevelConfig, ModelConfig};
pub use network::{Chooser, KeepInput, LayerInput, Network, Walk, WalkResult};

use crate::error::{Error, Result};
use crate::schedule::ModelId;

/// Metadata key of the JSON configuration in a model file.
pub const CONFIG_KEY: &str = "ddn.config";

/// Models by id, each loaded once and shared (across threads, too): what decoding many
/// files, made with different models, needs.
#[derive(Default)]
pub struct ModelCache {
    loaded: std::sync::Mutex<HashMap<ModelId, std::sync::Arc<Model>>>,
}

impl ModelCache {
    /// The model of `id`, loaded with `load` the first time it is asked for.
    pub fn get_or_load(
        &self,
        id: ModelId,
        load: impl FnOnce() -> Result<Model>,
    ) -> Result<std::sync::Arc<Model>> {
        let mut loaded = self.loaded.lock().expect("no panic while loading a model");
        if let Some(model) = loaded.get(&id) {
            return Ok(model.clone());
        }
        let model = std::sync::Arc::new(load()?);
        loaded.insert(id, model.clone());
        Ok(model)
    }
}

/// A network with the identity of the file it came from.
#[derive(Debug, Clone)]
pub struct Model {
    pub network: Network,
    pub id: ModelId,
}

/// §3 of codec-spec.md.
pub fn model_id(file_bytes: &[u8]) -> ModelId {
    let digest = Sha256::digest(file_bytes);
    ModelId(digest[..8].try_into().expect("8 bytes"))
}

/// Reads the configuration stored in a model or checkpoint file.
pub fn read_config(bytes: &[u8]) -> Result<ModelConfig> {
    let (_, meta) = safetensors::SafeTensors::read_metadata(bytes)
        .map_err(|e| Error::InvalidModel(e.to_string()))?;
    let json = meta
        .metadata()
        .as_ref()
        .and_then(|m| m.get(CONFIG_KEY))
        .ok_or_else(|| Error::InvalidModel(format!("no {CONFIG_KEY} in the file's metadata")))?;
    let config: ModelConfig =
        serde_json::from_str(json).map_err(|e| Error::InvalidModel(e.to_string()))?;
    config.validate()?;
    Ok(config)
}

impl Model {
    /// Loads a model from the bytes of its file.
    pub fn from_bytes(bytes: &[u8], device: &Device) -> Result<Self> {
        Self::from_bytes_with_id(bytes, model_id(bytes), device)
    }

    /// [`Model::from_bytes`] for a file whose id is known (a built-in model).
    fn from_bytes_with_id(bytes: &[u8], id: ModelId, device: &Device) -> Result<Self> {
        let config = read_config(bytes)?;
        let network = Network::new(&config, 0, device)?;
        let tensors = candle_core::safetensors::load_buffer(bytes, &Device::Cpu)
            .map_err(|e| Error::InvalidModel(e.to_string()))?;
        network.load_tensors(&tensors)?;
        Ok(Model { network, id })
    }

    pub fn load(path: &Path, device: &Device) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        Self::from_bytes(&bytes, device)
    }
}

/// Serialises a network's weights and configuration, plus `extra` tensors and metadata
/// (a training checkpoint adds its optimizer state), as safetensors bytes.
pub fn to_safetensors(
    network: &Network,
    extra: &[(String, Tensor)],
    extra_meta: &[(String, String)],
) -> Result<Vec<u8>> {
    let mut tensors: Vec<(String, Tensor)> = network
        .params()
        .into_iter()
        .map(|p| Ok((p.name, p.var.as_tensor().to_device(&Device::Cpu)?)))
        .collect::<Result<_>>()?;
    tensors.extend(extra.iter().cloned());
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    let mut meta: HashMap<String, String> = extra_meta.iter().cloned().collect();
    meta.insert(
        CONFIG_KEY.into(),
        serde_json::to_string(network.config()).expect("serialisable"),
    );
    safetensors::serialize(tensors, Some(meta)).map_err(|e| Error::InvalidModel(e.to_string()))
}

/// The default model for encoding, built into the binary: the newest of
/// [`shipped::SHIPPED`], which also holds every earlier default for decoding old files.
pub const DEFAULT_MODEL: &[u8] = shipped::SHIPPED[shipped::SHIPPED.len() - 1].bytes;
