//! Many files in one command: the inputs (directories walked with `--recursive`), where
//! each output goes, and a driver that works through them on `--jobs` threads with one
//! progress bar, reporting each failure in one line and going on.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use ddn::error::{Error, Result};
use ddn::io::{default_output, is_stdio};

/// The options every many-file command takes.
#[derive(Debug, Clone, clap::Args)]
pub struct BatchArgs {
    /// Walk directories given as inputs, and the directories inside them.
    #[arg(short, long)]
    pub recursive: bool,
    /// Write outputs under this directory, keeping each input's path relative to the
    /// directory it was found in (default: next to each input).
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
    /// Files worked on at once.
    #[arg(short, long, default_value_t = 1, value_name = "N")]
    pub jobs: usize,
}

/// One input file and its path relative to the argument it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Input {
    pub path: PathBuf,
    pub relative: PathBuf,
}

/// The files named by `args`: files as given, directories (with `recursive`) walked for
/// the files that `wanted` accepts, in sorted order.
pub fn expand(args: &[PathBuf], recursive: bool, wanted: fn(&Path) -> bool) -> Result<Vec<Input>> {
    let mut out = Vec::new();
    for arg in args {
        if arg.is_dir() {
            if !recursive {
                return Err(Error::InvalidArgument(format!(
                    "{} is a directory; pass -r/--recursive to take the files in it",
                    arg.display()
                )));
            }
            walk(arg, arg, wanted, &mut out)?;
        } else {
            let name = arg.file_name().map_or_else(|| arg.clone(), PathBuf::from);
            out.push(Input {
                path: arg.clone(),
                relative: name,
            });
        }
    }
    Ok(out)
}

fn walk(root: &Path, dir: &Path, wanted: fn(&Path) -> bool, out: &mut Vec<Input>) -> Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .map(|e| e.map(|e| e.path()).map_err(|e| Error::io(dir, e)))
        .collect::<Result<_>>()?;
    entries.sort();
    for path in entries {
        if path.is_dir() {
            walk(root, &path, wanted, out)?;
        } else if wanted(&path) {
            let relative = path.strip_prefix(root).unwrap_or(&path).to_path_buf();
            out.push(Input { path, relative });
        }
    }
    Ok(())
}

/// Where the output of `input` goes: next to it, or under `out_dir` at its relative path,
/// with `extension`.
pub fn output_for(input: &Input, out_dir: Option<&Path>, extension: &str) -> PathBuf {
    match out_dir {
        Some(dir) => dir.join(&input.relative).with_extension(extension),
        None => input.path.with_extension(extension),
    }
}

/// What a many-file command will do: its input files, and whether they are one file with
/// an output of its own (`-o`, or next to it) rather than a batch.
pub struct Plan {
    files: Vec<Input>,
    single: bool,
}

impl Plan {
    pub fn new(
        inputs: &[PathBuf],
        output: &Option<PathBuf>,
        batch: &BatchArgs,
        wanted: fn(&Path) -> bool,
    ) -> Result<Self> {
        let files = expand(inputs, batch.recursive, wanted)?;
        let single = inputs.len() == 1 && !inputs[0].is_dir() && batch.out_dir.is_none();
        if !single && output.is_some() {
            return Err(Error::InvalidArgument(
                "-o/--output names the output of one input; with several, use --out-dir".into(),
            ));
        }
        Ok(Plan { files, single })
    }

    /// Runs `work(input, output)` on the one file, whose output is `output` or next to
    /// it with `extension` (stdout for stdin); or on every file as a batch ([`run`]).
    pub fn run(
        &self,
        output: &Option<PathBuf>,
        batch: &BatchArgs,
        extension: &str,
        work: impl Fn(&Path, &Path) -> Result<f64> + Sync,
    ) -> Result<()> {
        if self.single {
            let input = &self.files[0].path;
            let output = match output {
                Some(p) => p.clone(),
                None if is_stdio(input) => PathBuf::from("-"),
                None => default_output(input, extension),
            };
            return work(input, &output).map(|_| ());
        }
        let out_dir = batch.out_dir.as_deref();
        run(&self.files, batch.jobs, |input| {
            work(&input.path, &output_for(input, out_dir, extension))
        })
    }
}

/// Runs `work` on every input on `jobs` threads. `work` returns the file's bits per
/// pixel, whose running mean the progress bar shows. Each failure is reported in one
/// line and the others go on; the result says how many failed.
pub fn run(
    inputs: &[Input],
    jobs: usize,
    work: impl Fn(&Input) -> Result<f64> + Sync,
) -> Result<()> {
    let bar = indicatif::ProgressBar::new(inputs.len() as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{pos}/{len} files, {per_sec}, {msg} [{elapsed}]")
            .expect("a valid template"),
    );
    let next = AtomicUsize::new(0);
    let tally = Mutex::new((0usize, 0f64, 0usize)); // files done, sum of bpp, failures
    std::thread::scope(|scope| {
        for _ in 0..jobs.clamp(1, inputs.len().max(1)) {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(input) = inputs.get(i) else { break };
                let outcome = work(input);
                let mut t = tally.lock().expect("no worker panics holding it");
                match outcome {
                    Ok(bpp) => {
                        t.0 += 1;
                        t.1 += bpp;
                        bar.set_message(format!("mean {:.4} bpp", t.1 / t.0 as f64));
                    }
                    Err(e) => {
                        t.2 += 1;
                        let line = format!(
                            "ddn: error: {}: {}",
                            input.path.display(),
                            super::error_line(&e)
                        );
                        bar.suspend(|| eprintln!("{line}"));
                    }
                }
                bar.inc(1);
            });
        }
    });
    bar.finish_and_clear();
    let failed = tally.into_inner().expect("workers are done").2;
    if failed > 0 {
        return Err(Error::SomeFilesFailed {
            failed,
            total: inputs.len(),
        });
    }
    Ok(())
}
