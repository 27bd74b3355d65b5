//! `ddn toy2d`.

use std::path::PathBuf;

use ddn::error::{Error, Result};
use ddn::toy2d::{run_density, Density, ToyConfig, DENSITIES};

#[derive(Debug, clap::Args)]
pub struct Toy2dOptions {
    /// One density, or all of them (spirals, blurs, checkerboard, rings, qrcode).
    #[arg(long)]
    pub density: Option<String>,
    /// One JSON line per density instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Folder for the PNGs (ground truth, real samples, gradient descent, Split-and-Prune).
    #[arg(long, default_value = "toy2d-out")]
    pub out: PathBuf,
    /// Number of points K.
    #[arg(long, default_value_t = ToyConfig::default().points)]
    pub points: usize,
    #[arg(long, default_value_t = ToyConfig::default().iterations)]
    pub iterations: usize,
    #[arg(long, default_value_t = ToyConfig::default().seed)]
    pub seed: u64,
}

pub fn run(o: &Toy2dOptions) -> Result<()> {
    let names: Vec<&str> = match &o.density {
        Some(n) => vec![n.as_str()],
        None => DENSITIES.to_vec(),
    };
    if o.points < 2 || o.iterations == 0 {
        return Err(Error::InvalidArgument(
            "--points must be at least 2 and --iterations positive".into(),
        ));
    }
    let cfg = ToyConfig {
        points: o.points,
        iterations: o.iterations,
        seed: o.seed,
        ..ToyConfig::default()
    };
    if !o.json {
        println!(
            "{:<14} {:>10} {:>10} {:>10}",
            "density", "KL GD", "KL S&P", "KL real"
        );
    }
    for name in names {
        let density = Density::named(name).ok_or_else(|| {
            Error::InvalidArgument(format!(
                "unknown density {name}; known: {}",
                DENSITIES.join(", ")
            ))
        })?;
        let r = run_density(&density, cfg, Some(&o.out))?;
        if o.json {
            println!("{}", serde_json::to_string(&r).expect("serialisable"));
        } else {
            println!(
                "{:<14} {:>10.3} {:>10.3} {:>10.3}",
                r.density, r.kl_gd, r.kl_sp, r.kl_real
            );
        }
    }
    Ok(())
}
