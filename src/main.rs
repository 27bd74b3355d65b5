//! The `ddn` command line: parses arguments and hands them to the library.

use clap::{CommandFactory, Parser};

mod commands;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// An image codec built on Discrete Distribution Networks.
#[derive(Debug, Parser)]
#[command(name = "ddn", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: commands::Command,
}

/// Help and version go to stdout as clap prints them; every other argument error is one
/// `ddn: error:` line with exit status 2, like every other error of `ddn`.
fn exit_on_argument_error(err: clap::Error) -> ! {
    use clap::error::ErrorKind;
    if matches!(
        err.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        err.exit();
    }
    eprintln!("ddn: error: {}", argument_error_line(&err));
    std::process::exit(2);
}

/// clap's message without its `error:` prefix, usage block and tips, on one line.
fn argument_error_line(err: &clap::Error) -> String {
    let text = err.render().to_string();
    let message: Vec<&str> = text
        .lines()
        .map(str::trim)
        .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more information"))
        .filter(|l| !l.is_empty() && !l.starts_with("tip:"))
        .collect();
    let line = message.join(" ");
    let line = line.strip_prefix("error: ").unwrap_or(&line);
    let help = match std::env::args().nth(1) {
        Some(sub) if Cli::command().find_subcommand(&sub).is_some() => format!("ddn {sub} --help"),
        _ => "ddn --help".to_string(),
    };
    format!("{line} (see `{help}`)")
}

/// mimalloc's `purge_delay` option (index 15 in its option enum).
const MI_OPTION_PURGE_DELAY: i32 = 15;
/// mimalloc's `allow_thp` option (index 38 in its option enum).
const MI_OPTION_ALLOW_THP: i32 = 38;

/// Turns transparent huge pages off for this process. With them, a first touch of the
/// allocator's memory faults in (and zeroes) 2 MiB at once, and where the kernel compacts
/// memory to find such a page the fault stalls: a fifth of a decode's time went to the
/// kernel that way, varying from run to run (docs/experiments.md, "Transparent huge pages
/// off"). mimalloc reads its own switch for this before `main`, so the process is told
/// here too, and the allocator stops asking for huge pages.
fn no_transparent_huge_pages() {
    // SAFETY: sets a plain integer option; called before any other thread exists.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_ALLOW_THP, 0) };
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_THP_DISABLE takes integers and changes only this process's paging;
    // a kernel without it returns an error, which leaves things as they were.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}

fn main() {
    // Keep freed memory instead of returning it to the OS: candle allocates a fresh buffer
    // per op, and re-faulting those pages took much of training time.
    // SAFETY: sets a plain integer option; called before any other thread exists.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
    no_transparent_huge_pages();
    // candle runs element-wise ops on a pool of its own whose waits spin; beside the
    // rayon threads of the convs that cost 11 % of an encode on two cores (profiled), and
    // one thread for those memory-bound ops is faster (docs/experiments.md). A user's own
    // setting wins.
    if std::env::var_os("CANDLE_NUM_THREADS").is_none() {
        std::env::set_var("CANDLE_NUM_THREADS", "1");
    }
    let cli = Cli::try_parse().unwrap_or_else(|err| exit_on_argument_error(err));
    if let Err(err) = commands::run(cli.command) {
        eprintln!("ddn: error: {}", commands::error_line(&err));
        std::process::exit(1);
    }
}
