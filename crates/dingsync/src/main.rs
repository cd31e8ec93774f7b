//! `dingsync`: the binary. CLI parsing, logging and exit codes live here; the work is in the
//! library crates (see ARCHITECTURE.md).
//!
//! Exit codes: 0 success, 1 the operation failed, 2 bad usage or configuration, 3 `plan` found
//! differences.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand, ValueEnum};

use dingsync::{bench, commands, config, demo, load_cmd, orgs, server, sim_cmd};

#[derive(Debug, Parser)]
#[command(
    name = "dingsync",
    version,
    about = "Keep an OA system's contacts and DingTalk Contacts in two-way sync",
    long_about = "Keep an OA system's contacts (departments, users, role groups, roles) and DingTalk \
Contacts the same, both ways.\n\nNew here? Run `dingsync sim --users 2000` to start a local DingTalk \
simulator, or `dingsync init` to write a documented config file."
)]
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
    /// Validate the configuration (every problem at once), then open the database, fetch a
    /// DingTalk token and read the root department, saying what to fix when something fails.
    Check,
    /// Run the service: callback receiver, OA API, workers, metrics. Stops cleanly on SIGTERM
    /// or Ctrl-C; SIGHUP re-reads the configuration, applies [api] tokens and the deletion
    /// threshold and names what needs a restart.
    Serve,
    /// See both-way sync in one command: a simulated DingTalk, a temporary SQLite directory, the
    /// service, changes on both sides, and a summary. Exits 0 only if both sides converged.
    Demo(demo::DemoArgs),
    /// Full import of DingTalk's organization into the OA directory (resumes if interrupted).
    Import {
        /// Crawl and report what would change, without writing.
        #[arg(long)]
        dry_run: bool,
        /// Only this organization (an `[[orgs]]` name); default: every org, each under its name.
        #[arg(long)]
        org: Option<String>,
    },
    /// Compare both sides and print what reconcile would change on each (exit 0: nothing).
    Plan {
        /// Print the plan as JSON.
        #[arg(long)]
        json: bool,
        /// Only this organization (an `[[orgs]]` name); default: every org, each under its name.
        #[arg(long)]
        org: Option<String>,
    },
    /// Apply the plan; deletions over the threshold need --yes.
    Reconcile {
        /// Confirm held deletions.
        #[arg(long)]
        yes: bool,
        /// Only this organization (an `[[orgs]]` name); default: every org, each under its name.
        #[arg(long)]
        org: Option<String>,
    },
    /// Directory size, last import, inbox/outbox depth, dead letters, held deletions.
    Status {
        /// Only this organization (an `[[orgs]]` name); default: every org, each under its name.
        #[arg(long)]
        org: Option<String>,
    },
    /// Field mapping and scope (`[mapping]`, `[scope]`): `mapping test --user ID` shows one
    /// entity's values before and after the mapping and the scope rules it matches.
    #[command(subcommand)]
    Mapping(dingsync::mapping_cmd::MappingCmd),
    /// List, retry or drop dead letters.
    DeadLetters {
        /// Only this organization (an `[[orgs]]` name); default: every org, each under its name.
        #[arg(long, global = true)]
        org: Option<String>,
        #[command(subcommand)]
        cmd: commands::DeadLetters,
    },
    /// Measure import, events, callbacks, push and the OA API against their bounds.
    Bench(bench::BenchArgs),
    /// First load of the OA side from a CSV or XLSX export, columns mapped in `[load]`:
    /// every problem listed as (row, column, reason); written like OA API writes; a re-run
    /// changes nothing. Exit 1 when the file has problems.
    Load {
        /// The export (`.csv` or `.xlsx`).
        file: PathBuf,
        /// Validate every row and say what would change, without writing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Print a shell completion script, generated from this command line (e.g.
    /// `dingsync completions bash > /etc/bash_completion.d/dingsync`).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), generated from this command line
    /// (`dingsync man > /usr/share/man/man1/dingsync.1`).
    Man,
    /// Manage the admin console's users.
    #[command(subcommand)]
    Console(ConsoleCommand),
}

#[derive(Debug, Subcommand)]
enum ConsoleCommand {
    /// Add a console user (or set an existing one's role and password). There is no default
    /// account; the password is stored as an argon2 hash.
    AddUser {
        /// The sign-in name.
        name: String,
        /// Read the password from the first line of stdin instead of asking for it.
        #[arg(long)]
        password_stdin: bool,
        /// `viewer` sees everything but secrets; `operator` may also approve, retry, drop,
        /// apply and start runs.
        #[arg(long, value_parser = ["viewer", "operator"], default_value = "viewer")]
        role: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The demo narrates on stdout; routine service logs would drown it, so it logs warnings only
    // unless asked for more.
    let quiet = matches!(cli.command, Command::Demo(_)) && cli.verbose == 0;
    init_logging(cli.log_format, cli.verbose, quiet);
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

/// Dispatches one command line. Longer than 80 lines on purpose: one arm per subcommand, each
/// a call into `commands`/`demo`/`sim_cmd`, so the whole CLI surface reads in one place.
async fn run(command: Command, config_path: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    match command {
        Command::Sim(args) => sim_cmd::run(args).await.map(|()| ExitCode::SUCCESS),
        Command::Console(ConsoleCommand::AddUser {
            name,
            password_stdin,
            role,
        }) => {
            let cfg = config::Config::load(config_path.as_deref())?;
            dingsync::admin::users::check_name(&name)?;
            let role = console::Role::from_label(&role)
                .ok_or_else(|| anyhow::anyhow!("--role: use viewer or operator"))?;
            let password = dingsync::admin::users::read_password(password_stdin)?;
            let store = server::open_store(&cfg).await?;
            let now = dingsync::clock::system_clock().now_ms();
            dingsync::admin::users::add_user(&store, &name, role, &password, now).await?;
            println!("console user {name} saved with role {}", role.label());
            Ok(ExitCode::SUCCESS)
        }
        Command::Init { path, force } => {
            if path.exists() && !force {
                anyhow::bail!(
                    "{} already exists; pass --force to overwrite it",
                    path.display()
                );
            }
            std::fs::write(&path, config::DOCUMENTED_CONFIG)?;
            println!(
                "wrote {} — fill in [dingtalk] client_id and client_secret, then run `dingsync check --config {}`",
                path.display(),
                path.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Serve => {
            let cfg = config::Config::load(config_path.as_deref())?;
            cfg.validate()?;
            for warning in cfg.warnings() {
                tracing::warn!("{warning}");
            }
            let app = server::Application::build(&cfg).await?;
            dingsync::reload::install(cfg.clone(), config_path.clone(), app.live())?;
            // Scripts and tests read this line to learn the port when `server.listen` asked for 0.
            println!("dingsync listening on http://{}", app.local_addr());
            if app.is_split() {
                println!(
                    "dingsync internal listener on http://{} (OA API, /metrics, OpenAPI)",
                    app.internal_addr()
                );
            }
            let shutdown = tokio_util::sync::CancellationToken::new();
            let signal = shutdown.clone();
            tokio::spawn(async move {
                wait_for_stop_signal().await;
                tracing::info!("stop signal received; finishing in-flight work");
                signal.cancel();
            });
            app.run_until_stopped(shutdown).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Demo(args) => Ok(if demo::run(args).await? {
            ExitCode::SUCCESS
        } else {
            eprintln!("the demo finished but the two sides differ (see the plan above)");
            ExitCode::FAILURE
        }),
        Command::Import { dry_run, org } => {
            let cfg = config::Config::load(config_path.as_deref())?;
            orgs::for_each(&cfg, org.as_deref(), !dry_run, |c| async move {
                commands::import(&c, dry_run).await
            })
            .await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Plan { json, org } => {
            let cfg = config::Config::load(config_path.as_deref())?;
            let empty = orgs::for_each(&cfg, org.as_deref(), true, |c| async move {
                commands::plan_cmd(&c, json).await
            })
            .await?;
            Ok(if empty.iter().all(|e| *e) {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(3)
            })
        }
        Command::Reconcile { yes, org } => {
            let cfg = config::Config::load(config_path.as_deref())?;
            orgs::for_each(&cfg, org.as_deref(), true, |c| async move {
                commands::reconcile_cmd(&c, yes).await
            })
            .await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Mapping(cmd) => {
            let cfg = config::Config::load(config_path.as_deref())?;
            dingsync::mapping_cmd::run(&cfg, cmd).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Status { org } => {
            let cfg = config::Config::load(config_path.as_deref())?;
            orgs::for_each(&cfg, org.as_deref(), false, |c| async move {
                commands::status(&c).await
            })
            .await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::DeadLetters { org, cmd } => {
            let cfg = config::Config::load(config_path.as_deref())?;
            orgs::for_each(&cfg, org.as_deref(), false, |c| {
                let cmd = cmd.clone();
                async move { commands::dead_letters(&c, cmd).await }
            })
            .await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench(args) => bench::run(args).await.map(|()| ExitCode::SUCCESS),
        Command::Load { file, dry_run } => {
            let cfg = config::Config::load(config_path.as_deref())?;
            let clean = load_cmd::run(&cfg, &file, dry_run).await?;
            Ok(if clean {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "dingsync",
                &mut std::io::stdout(),
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Man => {
            clap_mangen::Man::new(Cli::command()).render(&mut std::io::stdout())?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Check => {
            let cfg = config::Config::load(config_path.as_deref())?;
            cfg.validate()?;
            println!("configuration is valid");
            for warning in cfg.warnings() {
                println!("warning: {warning}");
            }
            // Each org's app and corp (or the one of `[dingtalk]`).
            orgs::for_each(&cfg, None, false, |c| async move {
                commands::check_reachability(&c).await
            })
            .await?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Resolves on SIGTERM (how service managers stop us) or Ctrl-C.
async fn wait_for_stop_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}

/// One clear line, plus the cause chain with `-v`; escaped, since a cause can quote a name or
/// DingTalk's text (see [`dingsync::term`]).
fn report_error(err: &anyhow::Error, verbose: u8) {
    use dingsync::term::escape_unprintable as esc;
    eprintln!("error: {}", esc(&err.to_string()));
    if verbose > 0 {
        for cause in err.chain().skip(1) {
            eprintln!("  caused by: {}", esc(&cause.to_string()));
        }
    } else if let Some(root) = err.chain().skip(1).last() {
        // The root cause tells a refused password from a closed port; the middle of the chain
        // is for -v.
        eprintln!("  cause: {}", esc(&root.to_string()));
        eprintln!("  (run with -v for the whole cause chain)");
    }
}

fn init_logging(format: LogFormat, verbose: u8, quiet: bool) {
    use tracing_subscriber::EnvFilter;
    let default = match (verbose, quiet) {
        (0, true) => "warn",
        (0, false) => "info",
        _ => "debug",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    // Colour codes only for a person at a terminal: in a journal, a file or a pipe they are
    // noise that breaks grep (issue 18).
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
