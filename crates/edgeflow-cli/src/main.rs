//! The `edgeflow` command line: train a model from a config file, evaluate it, predict with it,
//! inspect a model file.

mod commands;
mod config;
mod dataset;
mod progress;
mod report;
mod samples;
mod series;
mod text;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

// Training allocates and frees the same large activation buffers every step; mimalloc keeps
// them instead of returning pages to the OS and faulting them back in.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Train, evaluate and run neural networks on the CPU.
#[derive(Debug, Parser)]
#[command(name = "edgeflow", version, about)]
struct Cli {
    /// Worker threads for the kernels (default: EDGEFLOW_NUM_THREADS, else all cores).
    #[arg(long, global = true, value_parser = at_least_one)]
    threads: Option<usize>,
    /// More log output (-v info, -vv debug); RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Train the model described by a TOML config file.
    Train(commands::train::TrainArgs),
    /// Loss, accuracy and confusion matrix (or MSE and MAE) of a model on a test split.
    Evaluate(commands::evaluate::EvaluateArgs),
    /// Classify images, texts or time series, or forecast time series, with a model.
    Predict(commands::predict::PredictArgs),
    /// Show what a model file holds.
    Inspect(commands::inspect::InspectArgs),
}

/// Parses a count that must be at least 1 (epochs, batch size, threads, ...), so that 0 is a
/// usage error (exit code 2) like any other malformed flag.
pub fn at_least_one(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

/// Peak resident memory of this process in MiB, where the OS reports it.
pub fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

/// Bad input data or a bad model file that no library error type describes: a missing data
/// folder, data that does not fit the model, an image that cannot be classified. Exits with 3.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadInput(pub String);

/// A flag whose value cannot work, found before any work starts (an output path in a folder
/// that does not exist, say). Exits with 2, like the usage errors clap reports.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Usage(pub String);

/// The process exit code of a failed command:
///
/// - 1: the run failed, including a config file that cannot be read or parsed, or names an
///   unknown layer, optimizer, loss or metric;
/// - 2: bad usage of the command line: clap exits with it before any command runs, and a
///   command with a flag value that cannot work (an output path in a missing folder);
/// - 3: bad input data or model file: a missing or malformed data folder, an image that cannot
///   be read or has the wrong size, data that does not fit the model, a model file that is
///   missing, unreadable or not an edgeflow model.
fn exit_code(err: &anyhow::Error) -> u8 {
    if err.chain().any(|e| e.is::<Usage>()) {
        return 2;
    }
    let is_input = err.chain().any(|e| {
        e.is::<BadInput>()
            || e.is::<edgeflow_data::DataError>()
            || matches!(
                e.downcast_ref::<edgeflow_nn::NnError>(),
                Some(edgeflow_nn::NnError::ModelFile { .. } | edgeflow_nn::NnError::Io { .. })
            )
    });
    if is_input {
        3
    } else {
        1
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose);
    if let Some(n) = cli.threads {
        edgeflow_tensor::threading::set_num_threads(n);
    }
    let threads = edgeflow_tensor::threading::num_threads();
    let result = match &cli.command {
        Command::Train(a) => commands::train::run(a, threads),
        Command::Evaluate(a) => commands::evaluate::run(a),
        Command::Predict(a) => commands::predict::run(a),
        Command::Inspect(a) => commands::inspect::run(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(exit_code(&e))
        }
    }
}
