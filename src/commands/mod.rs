//! The subcommands of the `ddn` binary. `src/main.rs` parses the
//! command line into these option structs and calls [`run`].

use clap::Subcommand;

use ddn::error::{Error, Result};

pub mod batch;
pub mod codec;
pub mod device;
pub mod eval;
pub mod guide;
pub mod info;
pub mod toy2d;
pub mod train;

/// Every subcommand of `ddn`.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Compress images into .ddn files (one, several, or directories with -r).
    Compress(codec::CompressOptions),
    /// Decompress .ddn files into images (PNG unless the output's extension says otherwise).
    Decompress(codec::DecompressOptions),
    /// Show every header field of a .ddn file.
    Info(info::InfoOptions),
    /// Train a DDN model on a folder of images.
    Train(train::TrainArgs),
    /// Measure rate-distortion (bpp, PSNR, MS-SSIM) on a folder of images, against JPEG.
    Eval(eval::EvalOptions),
    /// Restore an image zero-shot with a guided walk: super-resolution, inpainting,
    /// colorization, denoising.
    Restore(guide::RestoreOptions),
    /// Sample new images by random walks through the tree.
    Sample(guide::SampleOptions),
    /// The paper's 2-D density experiment: gradient descent alone against Split-and-Prune.
    Toy2d(toy2d::Toy2dOptions),
}

/// A library error as one line, with the flag that fixes it where there is one.
pub fn error_line(err: &Error) -> String {
    let hint = match err {
        Error::OutputExists(_) => "; pass -f/--force to overwrite it",
        Error::ModelMismatch { .. } => "; pass the right one with --model",
        Error::UnknownModel(_) => "; give that model's file with --model",
        _ => "",
    };
    format!("{}{hint}", ddn::error::one_line(err))
}

/// Runs one subcommand.
pub fn run(command: Command) -> Result<()> {
    match command {
        Command::Compress(o) => codec::compress(&o),
        Command::Decompress(o) => codec::decompress(&o),
        Command::Info(o) => info::run(&o),
        Command::Train(o) => train::run(&o),
        Command::Eval(o) => eval::run(&o),
        Command::Restore(o) => guide::restore(&o),
        Command::Sample(o) => guide::sample(&o),
        Command::Toy2d(o) => toy2d::run(&o),
    }
}
