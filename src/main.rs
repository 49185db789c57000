//! The `smartcar-mcp` binary: parses the command line, sends logs to stderr, runs one subcommand.

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

use smartcar_mcp::cli::{self, Cli, Command};
use smartcar_mcp::{demo, run, simulator};

async fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    let o = &cli.opts;
    let stdout = || std::io::stdout().lock();
    match &cli.command {
        Some(Command::Tools { json, budget }) => run::tools(&mut stdout(), o, *json, *budget)?,
        Some(Command::Signals { group }) => run::signals(&mut stdout(), group.as_deref())?,
        Some(Command::Call { tool, args }) => return run::call(&mut stdout(), o, tool, args).await,
        Some(Command::Demo) => return demo::run().await,
        Some(Command::Audit {
            since,
            vehicle,
            caller,
            json,
        }) => {
            let only = smartcar_mcp::store::RowFilter {
                since: since.as_deref(),
                vehicle: vehicle.as_deref(),
                principal: caller.as_deref(),
            };
            run::audit(&mut stdout(), o, &only, *json).await?
        }
        Some(Command::Usage { json }) => run::usage(&mut stdout(), o, *json).await?,
        Some(Command::Doctor {
            json,
            redact,
            yes,
            vehicles,
            webhook_url,
        }) => {
            let opts = smartcar_mcp::doctor::DoctorOptions {
                json: *json,
                redact: *redact,
                vehicles: usize::try_from(*vehicles).unwrap_or(usize::MAX),
                webhook_url: webhook_url.clone(),
                allowed_hosts: o.allowed_hosts.clone(),
            };
            return run::doctor(&mut stdout(), o, &opts, *yes).await;
        }
        Some(Command::Simulator { port, webhook_url }) => {
            let webhook = match webhook_url {
                Some(url) => {
                    let token = std::env::var("SMARTCAR_MANAGEMENT_TOKEN").map_err(|_| {
                        anyhow::anyhow!(
                            "--webhook-url needs SMARTCAR_MANAGEMENT_TOKEN to sign the webhooks"
                        )
                    })?;
                    Some((url.clone(), token))
                }
                None => None,
            };
            simulator::run_standalone(*port, webhook, |banner| {
                // The banner is this subcommand's output; stdout is not an MCP channel here.
                let mut out = stdout();
                let _ = writeln!(out, "{banner}");
                let _ = out.flush();
            })
            .await?
        }
        Some(Command::Serve { http }) => run::serve(o, http.as_deref()).await?,
        None => run::serve(o, None).await?,
    }
    Ok(ExitCode::SUCCESS)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Kept to the end: dropping it writes out the log lines still queued.
    let _log = cli::init_logging(cli.opts.log_format);
    // Serving stdio, one thread does the work: on 2 cores it measured faster and leaner than the
    // multi-threaded scheduler (benches/e2e.rs); HTTP serving keeps every core.
    let stdio = matches!(cli.command, None | Some(Command::Serve { http: None, .. }));
    let mut builder = if stdio {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    };
    let runtime = match builder.enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("smartcar-mcp: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(dispatch(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("smartcar-mcp: {e:#}");
            ExitCode::from(2)
        }
    }
}
