//! The `ddn` command line: parses arguments and hands them to the library.

use clap::Parser;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// An image codec built on Discrete Distribution Networks.
#[derive(Debug, Parser)]
#[command(name = "ddn", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: ddn::commands::Command,
}

/// mimalloc's `purge_delay` option (index 15 in its option enum).
const MI_OPTION_PURGE_DELAY: i32 = 15;

fn main() {
    // Keep freed memory instead of returning it to the OS: candle allocates a fresh buffer
    // per op, and re-faulting those pages cost a fifth of training time.
    // SAFETY: sets a plain integer option; called before any other thread exists.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
    let cli = Cli::parse();
    if let Err(err) = ddn::commands::run(cli.command) {
        eprintln!("ddn: error: {}", ddn::error::one_line(&err));
        std::process::exit(1);
    }
}
