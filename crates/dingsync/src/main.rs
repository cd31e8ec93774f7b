//! `dingsync`: the binary. CLI parsing, logging and exit codes live here; the work is in the
//! library crates (see ARCHITECTURE.md).
//!
//! Exit codes: 0 success, 1 the operation failed, 2 bad usage or configuration.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

mod config;
mod sim_cmd;
#[allow(dead_code)] // wired into `serve` by the lead: see the stream module doc
mod stream;
#[allow(dead_code)] // wired into `serve` next
mod telemetry;

#[derive(Debug, Parser)]
#[command(name = "dingsync", version, about = "Keep an OA system's contacts and DingTalk Contacts in two-way sync",
    long_about = "Keep an OA system's contacts (departments, users, role groups, roles) and DingTalk \
Contacts the same, both ways.\n\nNew here? Run `dingsync sim --users 2000` to start a local DingTalk \
simulator, or `dingsync init` to write a documented config file.")]
struct Cli {
    /// Config file (TOML). Every key can also be set as DINGSYNC_<SECTION>__<KEY>.
    #[arg(long, global = true, env = "DINGSYNC_CONFIG")]
    config: Option<PathBuf>,
    /// Log format: human-readable text or one JSON object per line.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// More detail: -v shows the full cause chain of errors and debug logs.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a local DingTalk simulator (same paths, shapes, error codes and rate limits).
    Sim(sim_cmd::SimArgs),
    /// Write a config file documenting every option with its default.
    Init {
        /// Where to write it.
        #[arg(default_value = "dingsync.toml")]
        path: PathBuf,
        /// Overwrite an existing file.
        #[arg(long)]
        force: bool,
    },
    /// Validate the configuration and report every problem at once.
    Check,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format, cli.verbose);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command, cli.config)) {
        Ok(code) => code,
        Err(err) => {
            report_error(&err, cli.verbose);
            if err.downcast_ref::<config::ConfigErrors>().is_some() {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

async fn run(command: Command, config_path: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    match command {
        Command::Sim(args) => sim_cmd::run(args).await.map(|()| ExitCode::SUCCESS),
        Command::Init { path, force } => {
            if path.exists() && !force {
                anyhow::bail!("{} already exists; pass --force to overwrite it", path.display());
            }
            std::fs::write(&path, config::DOCUMENTED_CONFIG)?;
            println!("wrote {} — fill in [dingtalk] client_id and client_secret, then run `dingsync check --config {}`",
                path.display(), path.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Check => {
            let cfg = config::Config::load(config_path.as_deref())?;
            cfg.validate()?;
            println!("configuration is valid");
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// One clear line, plus the cause chain with `-v`.
fn report_error(err: &anyhow::Error, verbose: u8) {
    eprintln!("error: {err}");
    if verbose > 0 {
        for cause in err.chain().skip(1) {
            eprintln!("  caused by: {cause}");
        }
    } else if err.chain().nth(1).is_some() {
        eprintln!("  (run with -v for the cause chain)");
    }
}

fn init_logging(format: LogFormat, verbose: u8) {
    use tracing_subscriber::EnvFilter;
    let default = if verbose > 0 { "debug" } else { "info" };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
