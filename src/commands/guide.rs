//! `ddn restore` and `ddn sample`: guided and random walks.

use std::path::{Path, PathBuf};

use ddn::error::{Error, Result};
use ddn::guide;
use ddn::io::check_output;

use super::device::ModelArgs;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Task {
    /// Super-resolution by --scale.
    Sr,
    /// Fill the pixels that --mask marks white.
    Inpaint,
    /// Colour a greyscale image, keeping its BT.601 luma (0.299 R + 0.587 G + 0.114 B,
    /// the grey of JPEG and most tools), so that it converts back to the same grey.
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
    /// Upscaling factor for `sr`: 2, 4 or 8.
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
    /// The undegraded image: print one JSON line measuring the restoration against it.
    #[arg(long)]
    pub reference: Option<PathBuf>,
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

fn parse_size(s: &str) -> Result<(u32, u32)> {
    let bad = || Error::InvalidArgument(format!("--size {s}: expected WxH, e.g. 128x128"));
    let (w, h) = s.split_once(['x', 'X']).ok_or_else(bad)?;
    Ok((
        w.trim().parse().map_err(|_| bad())?,
        h.trim().parse().map_err(|_| bad())?,
    ))
}

fn read_rgb(path: &std::path::Path) -> Result<image::RgbImage> {
    Ok(ddn::io::decode_image(&ddn::io::read_input(path)?)?.rgb)
}

pub fn restore(o: &RestoreOptions) -> Result<()> {
    let inputs: Vec<&Path> = [Some(&o.input), o.mask.as_ref(), o.reference.as_ref()]
        .into_iter()
        .flatten()
        .map(PathBuf::as_path)
        .collect();
    check_output(&inputs, &o.output, o.force)?;
    let task = match o.task {
        Task::Sr => guide::restore::Task::SuperResolution { scale: o.scale },
        Task::Inpaint => {
            let mask = o.mask.as_ref().ok_or_else(|| {
                Error::InvalidArgument("--task inpaint needs --mask MASK.png".into())
            })?;
            guide::restore::Task::Inpaint {
                unknown: read_rgb(mask)?,
            }
        }
        Task::Colorize => guide::restore::Task::Colorize,
        Task::Denoise => guide::restore::Task::Denoise,
    };
    if !(1..=2).contains(&o.top) {
        return Err(Error::InvalidArgument("--top must be 1 or 2".into()));
    }
    let input = read_rgb(&o.input)?;
    let model = o.model.load()?;
    let opts = guide::restore::RestoreOptions {
        seed: o.seed,
        top: o.top as usize,
        tile: guide::restore::GUIDE_TILE,
    };
    let out = guide::restore::restore(&model, &input, &task, opts)?;
    if let Some(path) = &o.reference {
        let report = ddn::eval::restoration::report(&task, &input, &out, &read_rgb(path)?)?;
        println!("{report}");
    }
    ddn::io::save_image(&o.output, o.force, &image::DynamicImage::ImageRgb8(out))
}

pub fn sample(o: &SampleOptions) -> Result<()> {
    check_output(&[], &o.output, o.force)?;
    let (w, h) = parse_size(&o.size)?;
    if o.n == 0 || o.n > 256 || w > 1024 || h > 1024 {
        return Err(Error::InvalidArgument(
            "-n must be 1..=256 and --size at most 1024x1024".into(),
        ));
    }
    let model = o.model.load()?;
    let samples = guide::restore::sample(&model, o.n, w, h, o.seed)?;
    let grid = guide::restore::grid(&samples);
    ddn::io::save_image(&o.output, o.force, &image::DynamicImage::ImageRgb8(grid))
}
