//! `--device cpu|cuda|auto` and `--model PATH`, shared by the commands that run a model.

use std::path::PathBuf;

use candle_core::Device;

use ddn::bitstream::ModelId;
use ddn::error::{Error, Result};
use ddn::model::{shipped, Model};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum DeviceChoice {
    /// The CPU (every build).
    #[default]
    Cpu,
    /// The first CUDA GPU (builds with `--features cuda`).
    Cuda,
    /// CUDA when this build has it and a GPU is present, else the CPU.
    Auto,
}

pub fn device(choice: DeviceChoice) -> Result<Device> {
    match choice {
        DeviceChoice::Cpu => Ok(Device::Cpu),
        DeviceChoice::Cuda if cfg!(feature = "cuda") => Device::new_cuda(0).map_err(|e| {
            Error::InvalidArgument(format!("no usable CUDA GPU ({})", cuda_failure(&e)))
        }),
        DeviceChoice::Cuda => Err(Error::InvalidArgument(
            "this build has no CUDA support; rebuild with `--features cuda`".into(),
        )),
        DeviceChoice::Auto => Ok(Device::cuda_if_available(0).unwrap_or(Device::Cpu)),
    }
}

/// The CUDA status code in candle's error (`CUDA_ERROR_NO_DEVICE`), else its first line:
/// the whole error carries a backtrace.
fn cuda_failure(err: &candle_core::Error) -> String {
    let text = err.to_string();
    let code = text
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .find(|word| word.starts_with("CUDA_ERROR_"));
    code.map_or_else(
        || text.lines().next().unwrap_or_default().to_string(),
        str::to_string,
    )
}

/// The options every model-running command takes.
#[derive(Debug, Clone, clap::Args)]
pub struct ModelArgs {
    /// A model file (safetensors) instead of the one built into ddn.
    #[arg(long, value_name = "PATH")]
    pub model: Option<PathBuf>,
    /// Where the network runs.
    #[arg(long, value_enum, default_value_t = DeviceChoice::Cpu)]
    pub device: DeviceChoice,
}

impl ModelArgs {
    /// The model to encode with: `--model`, else the newest built-in one.
    pub fn load(&self) -> Result<Model> {
        let device = device(self.device)?;
        match &self.model {
            Some(path) => Model::load(path, &device),
            None => shipped::newest().load(&device),
        }
    }

    /// The model to decode a file made with model `id`: `--model`, else the built-in
    /// model of that id, whichever version of ddn shipped it.
    pub fn load_for(&self, id: ModelId) -> Result<Model> {
        let device = device(self.device)?;
        match &self.model {
            Some(path) => Model::load(path, &device),
            None => shipped::find(id)
                .ok_or(Error::UnknownModel(id))?
                .load(&device),
        }
    }
}
