//! Command line and environment settings (clap with `env`): every setting is a flag and a variable.

use std::fmt;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Sends logs to stderr, filtered by `RUST_LOG` (default `warn`): stdout carries the MCP protocol.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
}

/// A value that must never be printed: Debug and Display show a placeholder.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[derive(Debug, Parser)]
#[command(
    name = "smartcar-mcp",
    version,
    about = "MCP server for Smartcar's v3 vehicle APIs. With no subcommand it serves MCP over stdio."
)]
pub struct Cli {
    #[command(flatten)]
    pub opts: Options,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve MCP over stdio (the default), or over Streamable HTTP with --http.
    Serve {
        /// Serve Streamable HTTP on this address (e.g. 127.0.0.1:8765) instead of stdio.
        #[arg(long, env = "SMARTCAR_HTTP_ADDR")]
        http: Option<String>,
        /// Extra Host header values to accept (loopback names are always accepted).
        #[arg(long, env = "SMARTCAR_ALLOWED_HOSTS", value_delimiter = ',')]
        allowed_hosts: Vec<String>,
    },
    /// A short scripted session against the built-in simulator, offline, in seconds.
    Demo,
    /// Print the tool catalogue (no credentials needed).
    Tools {
        /// Print the tools/list JSON instead of the table.
        #[arg(long)]
        json: bool,
    },
    /// Print the signal codes with descriptions and aliases (no credentials needed).
    Signals {
        /// Only this group, e.g. `charge` or `tractionbattery`.
        group: Option<String>,
    },
    /// Call one tool from the shell and print its result; exits 1 on a tool error.
    Call {
        /// Tool name, e.g. get_signal.
        tool: String,
        /// Arguments as a JSON object.
        #[arg(default_value = "{}")]
        args: String,
    },
    /// Run the local Smartcar simulator alone and print the base URLs to use.
    Simulator {
        #[arg(long, default_value_t = 0)]
        port: u16,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ConfirmMode {
    Required,
    Off,
}

/// Options that shape serving; accepted before or after any subcommand.
#[derive(Debug, Clone, Args)]
pub struct Options {
    #[arg(
        long,
        env = "SMARTCAR_CLIENT_ID",
        global = true,
        hide_env_values = true
    )]
    pub client_id: Option<String>,
    /// Never shown in --help or logs.
    #[arg(
        long,
        env = "SMARTCAR_CLIENT_SECRET",
        global = true,
        hide_env_values = true
    )]
    pub client_secret: Option<String>,
    #[arg(
        long,
        env = "SMARTCAR_API_URL",
        global = true,
        default_value = "https://vehicle.api.smartcar.com/v3"
    )]
    pub api_url: String,
    #[arg(
        long,
        env = "SMARTCAR_AUTH_URL",
        global = true,
        default_value = "https://iam.smartcar.com"
    )]
    pub auth_url: String,
    #[arg(
        long,
        env = "SMARTCAR_MANAGEMENT_API_URL",
        global = true,
        default_value = "https://management.api.smartcar.com/v3"
    )]
    pub management_api_url: String,
    #[arg(
        long,
        env = "SMARTCAR_CONNECT_TIMEOUT_MS",
        global = true,
        default_value_t = 10_000
    )]
    pub connect_timeout_ms: u64,
    #[arg(
        long,
        env = "SMARTCAR_READ_TIMEOUT_MS",
        global = true,
        default_value_t = 30_000
    )]
    pub read_timeout_ms: u64,
    #[arg(
        long,
        env = "SMARTCAR_COMMAND_TIMEOUT_MS",
        global = true,
        default_value_t = 310_000
    )]
    pub command_timeout_ms: u64,
    #[arg(
        long,
        env = "SMARTCAR_RETRY_BUDGET_MS",
        global = true,
        default_value_t = 20_000
    )]
    pub retry_budget_ms: u64,
    #[arg(
        long,
        env = "SMARTCAR_MAX_RETRY_AFTER_S",
        global = true,
        default_value_t = 10
    )]
    pub max_retry_after_s: u64,
    #[arg(
        long,
        env = "SMARTCAR_MAX_RESULT_BYTES",
        global = true,
        default_value_t = 100_000
    )]
    pub max_result_bytes: usize,
    /// Comma-separated toolsets: connections, signals, commands, management, all.
    #[arg(long, env = "SMARTCAR_TOOLSETS", global = true, value_delimiter = ',')]
    pub toolsets: Vec<String>,
    /// Comma-separated tool names, added to the toolsets (alone: only these tools).
    #[arg(long, env = "SMARTCAR_TOOLS", global = true, value_delimiter = ',')]
    pub tools: Vec<String>,
    /// Comma-separated tool names never served (wins over everything else).
    #[arg(
        long,
        env = "SMARTCAR_EXCLUDE_TOOLS",
        global = true,
        value_delimiter = ','
    )]
    pub exclude_tools: Vec<String>,
    /// Serve only tools annotated read-only (wins over everything else).
    #[arg(long, env = "SMARTCAR_READ_ONLY", global = true)]
    pub read_only: bool,
    /// Whether a human must confirm unlocks and deletions.
    #[arg(long, env = "SMARTCAR_CONFIRM", global = true, value_enum, default_value_t = ConfirmMode::Required)]
    pub confirm: ConfirmMode,
    #[arg(
        long,
        env = "SMARTCAR_CONFIRM_TTL_S",
        global = true,
        default_value_t = 120
    )]
    pub confirm_ttl_s: u64,
    /// Validate and return the request each call would send, sending nothing.
    #[arg(long, env = "SMARTCAR_DRY_RUN", global = true)]
    pub dry_run: bool,
    /// Serve against the built-in simulator (overrides the URLs and credentials).
    #[arg(long, env = "SMARTCAR_SIMULATOR", global = true)]
    pub simulator: bool,
}

/// The settings the server runs with, resolved from `Options`.
#[derive(Debug, Clone)]
pub struct Settings {
    pub client_id: Option<String>,
    pub client_secret: Option<Secret>,
    pub api_url: String,
    pub auth_url: String,
    pub management_api_url: String,
    pub connect_timeout: Duration,
    pub read_timeout: Duration,
    pub command_timeout: Duration,
    pub retry_budget: Duration,
    pub max_retry_after: Duration,
    pub max_result_bytes: usize,
    pub confirm: ConfirmMode,
    pub confirm_ttl: Duration,
    pub dry_run: bool,
    /// Bearer token HTTP clients must present (`SMARTCAR_MCP_HTTP_TOKEN`); required off loopback.
    pub http_token: Option<Secret>,
    /// Key sealing confirmation rounds (`SMARTCAR_MCP_CONFIRM_KEY`), shared by replicas behind a
    /// load balancer; unset, each process makes a random one.
    pub confirm_key: Option<Secret>,
}

impl Settings {
    /// Settings for a server talking to the given base URLs, everything else at its default.
    pub fn for_urls(auth_url: &str, api_url: &str, management_api_url: &str) -> Self {
        let cli = Cli::parse_from(["smartcar-mcp"]);
        let mut s = Settings::from_options(&cli.opts);
        s.auth_url = auth_url.into();
        s.api_url = api_url.into();
        s.management_api_url = management_api_url.into();
        s
    }

    pub fn from_options(o: &Options) -> Self {
        let nonempty = |v: &Option<String>| v.as_ref().filter(|s| !s.trim().is_empty()).cloned();
        Settings {
            client_id: nonempty(&o.client_id),
            client_secret: nonempty(&o.client_secret).map(Secret),
            api_url: o.api_url.clone(),
            auth_url: o.auth_url.clone(),
            management_api_url: o.management_api_url.clone(),
            connect_timeout: Duration::from_millis(o.connect_timeout_ms),
            read_timeout: Duration::from_millis(o.read_timeout_ms),
            command_timeout: Duration::from_millis(o.command_timeout_ms),
            retry_budget: Duration::from_millis(o.retry_budget_ms),
            max_retry_after: Duration::from_secs(o.max_retry_after_s),
            max_result_bytes: o.max_result_bytes,
            confirm: o.confirm,
            confirm_ttl: Duration::from_secs(o.confirm_ttl_s),
            dry_run: o.dry_run,
            // Read from the environment only: a flag would show the token in `ps`.
            http_token: std::env::var("SMARTCAR_MCP_HTTP_TOKEN")
                .ok()
                .filter(|t| !t.is_empty())
                .map(Secret),
            confirm_key: std::env::var("SMARTCAR_MCP_CONFIRM_KEY")
                .ok()
                .filter(|k| !k.is_empty())
                .map(Secret),
        }
    }
}
