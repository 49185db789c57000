//! `cargo xtask`: the project's packaging commands (see lib.rs for what `dist` writes).

use anyhow::Result;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use xtask::{DistOptions, Meta, dist, host_target, workspace_root, write_server_json};

#[derive(Parser)]
#[command(name = "cargo xtask", about = "Packaging of smartcar-mcp")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Write the npm packages, the .mcpb bundle, the release archive and server.json for one platform.
    Dist {
        /// Output directory.
        #[arg(long)]
        out: PathBuf,
        /// The built binary [default: target/release/smartcar-mcp, or target/TARGET/release/… with --target].
        #[arg(long)]
        bin: Option<PathBuf>,
        /// The Rust target the binary was built for [default: the host].
        #[arg(long)]
        target: Option<String>,
        /// A file holding `smartcar-mcp tools --json`, for a binary that cannot run on this machine.
        #[arg(long)]
        tools_json: Option<PathBuf>,
    },
    /// Rewrite DIR/server.json, listing every .mcpb bundle in DIR (after gathering all platforms).
    ServerJson {
        /// The directory holding the bundles.
        #[arg(long)]
        out: PathBuf,
    },
}

fn main() -> Result<()> {
    let root = workspace_root();
    match Cli::parse().command {
        Cmd::Dist {
            out,
            bin,
            target,
            tools_json,
        } => {
            let host = host_target()?;
            let target = target.unwrap_or(host.clone());
            let exe = if target.contains("windows") {
                "smartcar-mcp.exe"
            } else {
                "smartcar-mcp"
            };
            let bin = bin.unwrap_or_else(|| {
                let dir = if target == host {
                    root.join("target")
                } else {
                    root.join("target").join(&target)
                };
                dir.join("release").join(exe)
            });
            let written = dist(&DistOptions {
                root,
                bin,
                target,
                out,
                tools_json,
            })?;
            println!("platform {}", written.platform.name);
            for path in [
                &written.npm_main,
                &written.npm_platform,
                &written.mcpb_dir,
                &written.mcpb,
                &written.archive,
                &written.server_json,
            ] {
                println!("wrote {}", path.display());
            }
        }
        Cmd::ServerJson { out } => {
            let meta = Meta::load(&root)?;
            println!("wrote {}", write_server_json(&meta, &out)?.display());
        }
    }
    Ok(())
}
