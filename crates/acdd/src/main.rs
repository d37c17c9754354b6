//! acdd: the Ligne Directe ACD/IVR daemon.
//!
//! `acdd run` wires the pure cores (dialplan, engine) to the IO edges (SIP,
//! media, store) on a tokio runtime; `acdd check` validates a configuration
//! and its dialplans; `acdd report calls` prints the call records.

mod calls;
mod clock;
mod config;
mod control;
mod daemon;
mod features;
mod legs;
mod queueing;
mod reload;
mod report;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use crate::config::Config;

#[derive(Parser)]
#[command(
    name = "acdd",
    version,
    about = "Ligne Directe: SIP ACD and IVR daemon"
)]
struct Cli {
    /// Log level (overridden by RUST_LOG): error, warn, info, debug, trace.
    #[arg(long, global = true, default_value = "info")]
    log_level: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon (with no --config: the embedded default, a standalone
    /// SIP server on 0.0.0.0:5060 using ./dialplans/default.toml and ./prompts).
    Run {
        #[arg(long)]
        config: Option<PathBuf>,
        /// Start the daemon's wall clock at this instant (RFC 3339), for
        /// demos and tests of opening hours.
        #[arg(long)]
        now: Option<String>,
    },
    /// Validate the configuration and dialplans: exit 0, or print
    /// `file:line:column: message` per error and exit 1.
    Check {
        #[arg(long)]
        config: Option<PathBuf>,
        /// Dialplans to check instead of the configured one.
        dialplans: Vec<PathBuf>,
    },
    /// Print records from the store.
    Report {
        #[command(subcommand)]
        what: ReportWhat,
    },
    /// Benchmarks that print figures.
    Bench {
        #[command(subcommand)]
        what: BenchWhat,
    },
    /// Prompt management.
    Prompts {
        #[command(subcommand)]
        what: PromptsWhat,
    },
}

#[derive(Subcommand)]
enum BenchWhat {
    /// N concurrent outbound hold-music streams to receivers on loopback:
    /// CPU per 1,000 streams, memory per stream, inter-packet gaps.
    Media {
        #[arg(long, default_value_t = 1000)]
        streams: usize,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
    },
}

#[derive(Subcommand)]
enum PromptsWhat {
    /// Render every `say` text of the dialplans with espeak-ng (French voice)
    /// into prompts/fr/tts/, cached by a hash of text and voice.
    Render {
        #[arg(long)]
        config: Option<PathBuf>,
        /// Dialplans to render instead of the configured one.
        dialplans: Vec<PathBuf>,
    },
}

#[derive(Subcommand)]
enum ReportWhat {
    /// The queue journal: every step of the ACD, in order.
    Journal {
        #[arg(long)]
        config: Option<PathBuf>,
        #[arg(long)]
        since: Option<String>,
        #[arg(long, value_enum, default_value = "json")]
        format: Format,
    },
    /// One record per call.
    Calls {
        #[arg(long)]
        config: Option<PathBuf>,
        /// Only calls that arrived at or after this date (YYYY-MM-DD, local
        /// time Europe/Paris) or instant (RFC 3339).
        #[arg(long)]
        since: Option<String>,
        #[arg(long, value_enum, default_value = "json")]
        format: Format,
    },
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Format {
    Json,
    Csv,
}

fn init_logs(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("{level},rsipstack=warn")));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run { config, now } => {
            init_logs(&cli.log_level);
            let cfg = match Config::from_arg(config.as_deref()) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("{e}");
                    return ExitCode::from(2);
                }
            };
            let clock = match now.as_deref().map(clock::parse_instant).transpose() {
                Ok(start) => clock::Clock::new(start),
                Err(e) => {
                    eprintln!("--now: {e}");
                    return ExitCode::from(2);
                }
            };
            match daemon::run(cfg, clock) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("acdd: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Check { config, dialplans } => check(config, dialplans),
        Command::Bench {
            what: BenchWhat::Media { streams, seconds },
        } => {
            let cfg = ld_media::bench::BenchConfig { streams, seconds };
            match ld_media::bench::run(&cfg) {
                Ok(report) => {
                    print!("{report}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("acdd bench media: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Prompts {
            what: PromptsWhat::Render { config, dialplans },
        } => render_prompts(config, dialplans),
        Command::Report {
            what:
                ReportWhat::Journal {
                    config,
                    since,
                    format,
                },
        } => match report::journal(config.as_deref(), since.as_deref(), format) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("acdd report: {e:#}");
                ExitCode::FAILURE
            }
        },
        Command::Report {
            what:
                ReportWhat::Calls {
                    config,
                    since,
                    format,
                },
        } => match report::calls(config.as_deref(), since.as_deref(), format) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("acdd report: {e:#}");
                ExitCode::FAILURE
            }
        },
    }
}

fn render_prompts(config: Option<PathBuf>, dialplans: Vec<PathBuf>) -> ExitCode {
    let cfg = match Config::from_arg(config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let plans = if dialplans.is_empty() {
        vec![cfg.dialplan.path.clone()]
    } else {
        dialplans
    };
    let mut texts = Vec::new();
    for path in &plans {
        match ld_dialplan::load(path, &cfg.prompts.dir) {
            Ok(plan) => texts.extend(plan.say_texts()),
            // Prompts not rendered yet are exactly what this command is for:
            // read the texts from a plan that only lacks them.
            Err(diags) => match std::fs::read_to_string(path)
                .ok()
                .and_then(|t| ld_dialplan::parse(&path.display().to_string(), &t).ok())
            {
                Some(plan) => texts.extend(plan.say_texts()),
                None => {
                    eprintln!("{diags}");
                    return ExitCode::FAILURE;
                }
            },
        }
    }
    texts.sort();
    texts.dedup();
    let dir = cfg.prompts.dir.join(ld_tts::PROMPT_SUBDIR);
    let result = ld_tts::render_all(&texts, ld_tts::DEFAULT_VOICE, &dir, |done, total| {
        // A one-line progress bar on stderr.
        let width = 30;
        let filled = (done * width).checked_div(total).unwrap_or(width);
        eprint!(
            "\r[{}{}] {done}/{total}",
            "#".repeat(filled),
            " ".repeat(width - filled)
        );
    });
    eprintln!();
    match result {
        Ok(paths) => {
            println!("{} prompts in {}", paths.len(), dir.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("acdd prompts render: {e}");
            ExitCode::FAILURE
        }
    }
}

fn check(config: Option<PathBuf>, dialplans: Vec<PathBuf>) -> ExitCode {
    let cfg = match Config::from_arg(config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            println!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let plans = if dialplans.is_empty() {
        vec![cfg.dialplan.path.clone()]
    } else {
        dialplans
    };
    let mut ok = true;
    let queues = cfg.queue_names();
    // Without [queues] the plan's queue names are not checked (a plan may be
    // checked before its queues are configured).
    let known = (!queues.is_empty()).then_some(queues.as_slice());
    for path in &plans {
        match ld_dialplan::load_with(path, &cfg.prompts.dir, known) {
            Ok(_) => {}
            Err(diags) => {
                ok = false;
                println!("{diags}");
            }
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
