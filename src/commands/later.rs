//! Subcommands whose work is still being built: `restore`, `sample`. Their
//! options are final; each says clearly that it is not available yet.

use std::path::PathBuf;

use crate::error::{Error, Result};

use super::device::ModelArgs;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Task {
    /// Super-resolution by --scale.
    Sr,
    /// Fill the pixels that --mask marks white.
    Inpaint,
    /// Colour a greyscale image.
    Colorize,
    /// Remove noise.
    Denoise,
}

#[derive(Debug, clap::Args)]
pub struct RestoreOptions {
    /// The degraded image.
    pub input: PathBuf,
    /// The restored image to write.
    #[arg(short, long)]
    pub output: PathBuf,
    #[arg(long, value_enum)]
    pub task: Task,
    /// Upscaling factor for `sr`: 4 or 8.
    #[arg(long, default_value_t = 4)]
    pub scale: u32,
    /// Mask for `inpaint`: white marks the unknown pixels.
    #[arg(long)]
    pub mask: Option<PathBuf>,
    /// Seed of the top-2 random choice.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Pick the best candidate (1) or at random among the best two (2).
    #[arg(long, default_value_t = 2)]
    pub top: u8,
    #[arg(short, long)]
    pub force: bool,
    #[command(flatten)]
    pub model: ModelArgs,
}

#[derive(Debug, clap::Args)]
pub struct SampleOptions {
    /// Number of samples.
    #[arg(short, default_value_t = 16)]
    pub n: usize,
    /// Size of each sample, WxH.
    #[arg(long, default_value = "128x128")]
    pub size: String,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// The grid image to write.
    #[arg(short, long)]
    pub output: PathBuf,
    #[arg(short, long)]
    pub force: bool,
    #[command(flatten)]
    pub model: ModelArgs,
}

fn not_yet(what: &str) -> Result<()> {
    Err(Error::InvalidArgument(format!(
        "`ddn {what}` is not available in this version yet"
    )))
}

pub fn restore(_: &RestoreOptions) -> Result<()> {
    not_yet("restore")
}

pub fn sample(_: &SampleOptions) -> Result<()> {
    not_yet("sample")
}
