//! The command line (clap with `env`): every setting is a flag and a variable, resolved into
//! `Settings`; and the process's logging, shared by the binary and the benches.

use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::secret::Secret;
use crate::settings::*;

/// Sends logs to stderr, filtered by `RUST_LOG` (default `warn`): stdout carries the MCP protocol.
/// Installs logging on stderr in the chosen format; keep the guard until exit.
pub fn init_logging(format: LogFormatArg) -> crate::logging::LogGuard {
    crate::logging::init(match format {
        LogFormatArg::Text => crate::logging::LogFormat::Text,
        LogFormatArg::Json => crate::logging::LogFormat::Json,
    })
}

/// `--log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormatArg {
    /// One readable line an event.
    #[default]
    Text,
    /// One JSON object a line (time, level, target, fields, the MCP request's span), for log
    /// shippers.
    Json,
}

/// Settings read from the environment only: secrets (a flag would show in `ps`), and the log
/// filter. Named here so the configuration table lists them beside the flags.
pub const ENV_ONLY: [(&str, &str); 4] = [
    (
        "SMARTCAR_MCP_HTTP_TOKEN",
        "Bearer token every HTTP client must send (`Authorization: Bearer`); required to bind a non-loopback address; never logged",
    ),
    (
        "SMARTCAR_MCP_CONFIRM_KEY",
        "Key (32 bytes or more) sealing confirmation rounds; give every replica the same one (unset: random per process)",
    ),
    (
        "SMARTCAR_MANAGEMENT_TOKEN",
        "Smartcar's Application Management Token, which signs webhooks; without it the webhook route answers 503; never logged",
    ),
    (
        "RUST_LOG",
        "Log filter (default `warn`; `info` adds a line per Smartcar answer); logs go to stderr, never stdout",
    ),
];

/// The configuration table of docs/configuration.md, made from the clap definitions themselves
/// (as ripgrep makes its man page), so it cannot drift from what the binary accepts: every global
/// flag and `serve`'s, with its variable, default and help, then the environment-only settings.
pub fn configuration_table() -> String {
    use clap::CommandFactory;
    let root = Cli::command();
    let serve = root
        .get_subcommands()
        .find(|c| c.get_name() == "serve")
        .cloned();
    let cell = |s: &str| s.replace('|', "\\|").replace('\n', " ");
    let mut out = String::from("| Flag | Variable | Default | What it does |\n|---|---|---|---|\n");
    let args = root
        .get_arguments()
        .chain(serve.iter().flat_map(|c| c.get_arguments()));
    let mut seen = std::collections::BTreeSet::new();
    for a in args {
        let Some(long) = a.get_long() else { continue };
        if a.is_hide_set() || !seen.insert(long.to_string()) {
            continue;
        }
        let env = a
            .get_env()
            .map(|e| format!("`{}`", e.to_string_lossy()))
            .unwrap_or_default();
        let default: Vec<String> = a
            .get_default_values()
            .iter()
            .map(|v| v.to_string_lossy().into_owned())
            .collect();
        let default = match default.join(",") {
            d if d.is_empty() => String::new(),
            d => format!("`{d}`"),
        };
        let help = a.get_help().map(|h| h.to_string()).unwrap_or_default();
        let flag = if a.get_action().takes_values() {
            format!("`--{long} {}`", a.get_id().as_str().to_uppercase())
        } else {
            format!("`--{long}`")
        };
        out.push_str(&format!(
            "| {flag} | {env} | {} | {} |\n",
            cell(&default),
            cell(&help)
        ));
    }
    for (var, help) in ENV_ONLY {
        out.push_str(&format!(
            "| (environment only) | `{var}` | | {} |\n",
            cell(help)
        ));
    }
    out
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
    },
    /// A short scripted session against the built-in simulator, offline, in seconds.
    Demo,
    /// Print the tool catalogue (no credentials needed).
    Tools {
        /// Print the tools/list JSON instead of the table.
        #[arg(long, conflicts_with = "budget")]
        json: bool,
        /// Print what the model reads of each tool (name, description, input schema), in bytes.
        #[arg(long)]
        budget: bool,
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
    /// Print the audit log of commands and deletions (newest last).
    Audit {
        /// Only entries at or after this time (RFC 3339, e.g. 2026-12-01T00:00:00Z, or a date).
        #[arg(long)]
        since: Option<String>,
        /// Only entries for this vehicle id.
        #[arg(long)]
        vehicle: Option<String>,
        /// Only entries of this OAuth caller (the access token's `sub`).
        #[arg(long)]
        caller: Option<String>,
        /// Print JSON (one array) instead of lines.
        #[arg(long)]
        json: bool,
    },
    /// Print the upstream calls made and saved, per vehicle and tool, from the audit database.
    Usage {
        #[arg(long)]
        json: bool,
    },
    /// Check your Smartcar credentials and setup against Smartcar itself: environment, token,
    /// connections, a few vehicles (billed: asks first), webhooks, management endpoints, clock.
    /// Exits 0 when every check passes, 1 when one fails, 2 on a usage error.
    Doctor {
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
        /// Mask ids (client, vehicles, webhook callbacks) so the report can go into a bug report.
        #[arg(long)]
        redact: bool,
        /// Make the billed calls without asking (the count is still printed on stderr).
        #[arg(long)]
        yes: bool,
        /// How many connected vehicles to read (get_vehicle and one signal each: two billed calls).
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(0..=100))]
        vehicles: u64,
        /// This server's public webhook URL (e.g. https://mcp.example.com/webhooks/smartcar), to
        /// check that a Smartcar webhook delivers to it.
        #[arg(long)]
        webhook_url: Option<String>,
    },
    /// Run the local Smartcar simulator alone and print the base URLs to use.
    Simulator {
        #[arg(long, default_value_t = 0)]
        port: u16,
        /// Push every state change a command makes to this URL as a Smartcar webhook, signed
        /// with SMARTCAR_MANAGEMENT_TOKEN.
        #[arg(long)]
        webhook_url: Option<String>,
    },
}

/// Options that shape serving; accepted before or after any subcommand.
#[derive(Debug, Clone, Args)]
pub struct Options {
    /// How log lines on stderr are written: text, or json (one object a line) for log shippers.
    #[arg(
        long,
        env = "SMARTCAR_MCP_LOG_FORMAT",
        global = true,
        value_enum,
        default_value = "text"
    )]
    pub log_format: LogFormatArg,
    /// Smartcar M2M (client-credentials) client id; it starts with `client_`.
    #[arg(
        long,
        env = "SMARTCAR_CLIENT_ID",
        global = true,
        hide_env_values = true
    )]
    pub client_id: Option<String>,
    /// Smartcar M2M client secret; never shown in --help, logs or results.
    #[arg(
        long,
        env = "SMARTCAR_CLIENT_SECRET",
        global = true,
        hide_env_values = true
    )]
    pub client_secret: Option<String>,
    /// Vehicle API base URL (its `/v3` path is kept).
    #[arg(
        long,
        env = "SMARTCAR_API_URL",
        global = true,
        default_value = DEFAULT_API_URL
    )]
    pub api_url: String,
    /// Token endpoint host (`/oauth2/token`).
    #[arg(
        long,
        env = "SMARTCAR_AUTH_URL",
        global = true,
        default_value = DEFAULT_AUTH_URL
    )]
    pub auth_url: String,
    /// Management API base URL.
    #[arg(
        long,
        env = "SMARTCAR_MANAGEMENT_API_URL",
        global = true,
        default_value = DEFAULT_MANAGEMENT_API_URL
    )]
    pub management_api_url: String,
    /// Compatibility API base URL; called without credentials.
    #[arg(
        long,
        env = "SMARTCAR_COMPATIBILITY_API_URL",
        global = true,
        default_value = DEFAULT_COMPATIBILITY_API_URL
    )]
    pub compatibility_api_url: String,
    /// TCP and TLS connect timeout, in milliseconds.
    #[arg(
        long,
        env = "SMARTCAR_CONNECT_TIMEOUT_MS",
        global = true,
        default_value_t = DEFAULT_CONNECT_TIMEOUT_MS
    )]
    pub connect_timeout_ms: u64,
    /// Timeout of one read (GET), in milliseconds.
    #[arg(
        long,
        env = "SMARTCAR_READ_TIMEOUT_MS",
        global = true,
        default_value_t = DEFAULT_READ_TIMEOUT_MS
    )]
    pub read_timeout_ms: u64,
    /// Timeout of one command, in milliseconds (Smartcar's SDK default).
    #[arg(
        long,
        env = "SMARTCAR_COMMAND_TIMEOUT_MS",
        global = true,
        default_value_t = DEFAULT_COMMAND_TIMEOUT_MS
    )]
    pub command_timeout_ms: u64,
    /// Total time a read may spend retrying, in milliseconds.
    #[arg(
        long,
        env = "SMARTCAR_RETRY_BUDGET_MS",
        global = true,
        default_value_t = DEFAULT_RETRY_BUDGET_MS
    )]
    pub retry_budget_ms: u64,
    /// Longest `Retry-After` honoured before giving up, in seconds.
    #[arg(
        long,
        env = "SMARTCAR_MAX_RETRY_AFTER_S",
        global = true,
        default_value_t = DEFAULT_MAX_RETRY_AFTER_S
    )]
    pub max_retry_after_s: u64,
    /// Results larger than this are cut at a whole item and say so.
    #[arg(
        long,
        env = "SMARTCAR_MAX_RESULT_BYTES",
        global = true,
        default_value_t = DEFAULT_MAX_RESULT_BYTES
    )]
    pub max_result_bytes: usize,
    /// Comma-separated toolsets: connections, signals, commands, schedules, management, webhooks, all
    /// (default: all but schedules and webhooks).
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
    /// How long a confirmation question stays valid, in seconds.
    #[arg(
        long,
        env = "SMARTCAR_CONFIRM_TTL_S",
        global = true,
        default_value_t = DEFAULT_CONFIRM_TTL_S
    )]
    pub confirm_ttl_s: u64,
    /// Most Streamable HTTP sessions open at once (clients of the `initialize` handshake);
    /// beyond it `initialize` gets 503 with Retry-After. 2026-07-28 clients need no session.
    #[arg(
        long,
        env = "SMARTCAR_MAX_SESSIONS",
        global = true,
        default_value_t = DEFAULT_MAX_SESSIONS as u64,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub max_sessions: u64,
    /// Seconds a Streamable HTTP session may stay unused before it ends; a session with a
    /// request in flight is never ended.
    #[arg(
        long,
        env = "SMARTCAR_SESSION_IDLE_S",
        global = true,
        default_value_t = DEFAULT_SESSION_IDLE_S,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub session_idle_s: u64,
    /// Seconds an HTTP client has to send a request's head (request line and headers), from the
    /// connection's opening or the first byte of a later request; then the connection is closed.
    #[arg(
        long,
        env = "SMARTCAR_MCP_HEADER_TIMEOUT_S",
        global = true,
        default_value_t = DEFAULT_HEADER_TIMEOUT_S,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub header_timeout_s: u64,
    /// Seconds an HTTP request's body has to arrive whole, from its head; then 408 and close.
    #[arg(
        long,
        env = "SMARTCAR_MCP_BODY_TIMEOUT_S",
        global = true,
        default_value_t = DEFAULT_BODY_TIMEOUT_S,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub body_timeout_s: u64,
    /// Seconds a kept-alive HTTP connection may wait with no request in flight before it is
    /// closed; an open SSE stream is a request in flight.
    #[arg(
        long,
        env = "SMARTCAR_MCP_IDLE_TIMEOUT_S",
        global = true,
        default_value_t = DEFAULT_IDLE_TIMEOUT_S,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub idle_timeout_s: u64,
    /// HTTP connections open at once (MCP and webhook listeners each); the next one gets 503
    /// with Retry-After and is closed.
    #[arg(
        long,
        env = "SMARTCAR_MCP_MAX_CONNECTIONS",
        global = true,
        default_value_t = DEFAULT_MAX_CONNECTIONS as u64,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub max_connections: u64,
    /// Validate and return the request each call would send, sending nothing.
    #[arg(long, env = "SMARTCAR_DRY_RUN", global = true)]
    pub dry_run: bool,
    /// Upstream calls in flight per vehicle; more wait their turn (see --vehicle-wait-ms).
    #[arg(
        long,
        env = "SMARTCAR_MAX_CONCURRENT_PER_VEHICLE",
        global = true,
        default_value_t = DEFAULT_MAX_CONCURRENT_PER_VEHICLE as u64,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub max_concurrent_per_vehicle: u64,
    /// How long a call waits for its vehicle's turn before a retriable error.
    #[arg(
        long,
        env = "SMARTCAR_VEHICLE_WAIT_MS",
        global = true,
        default_value_t = DEFAULT_VEHICLE_WAIT_MS
    )]
    pub vehicle_wait_ms: u64,
    /// Reuse a read's answer for this many seconds (0: off); a command drops its vehicle's reads.
    #[arg(long, env = "SMARTCAR_CACHE_TTL_S", global = true, default_value_t = 0)]
    pub cache_ttl_s: u64,
    /// Refuse calls locally once a vehicle has cost this many upstream calls today (UTC).
    #[arg(long, env = "SMARTCAR_MAX_CALLS_PER_VEHICLE_PER_DAY", global = true)]
    pub max_calls_per_vehicle_per_day: Option<u64>,
    /// The audit log (SQLite file) of commands and deletions, `off` for none; default in the
    /// platform's data directory.
    #[arg(long, env = "SMARTCAR_AUDIT_DB", global = true)]
    pub audit_db: Option<String>,
    /// Where the state that outlives a call lives: `sqlite:PATH` (the default, as --audit-db),
    /// `off`, or `postgres://…` (a libpq URL; TLS by rustls with `sslmode=require|verify-full`),
    /// shared by replicas behind a load balancer. Wins over --audit-db.
    #[arg(long, env = "SMARTCAR_MCP_STORE", global = true)]
    pub store: Option<String>,
    /// This replica's name in a PostgreSQL store (its audit rows and its liveness lock); default
    /// the hostname and the process id. Each live replica needs its own.
    #[arg(long, env = "SMARTCAR_MCP_REPLICA_ID", global = true)]
    pub replica_id: Option<String>,
    /// Answer get_signal/get_signals from webhook-pushed state at most this many seconds old (0: off).
    #[arg(
        long,
        env = "SMARTCAR_PUSHED_MAX_AGE_S",
        global = true,
        default_value_t = 0
    )]
    pub pushed_max_age_s: u64,
    /// Receive Smartcar's webhooks on this address (HOST:PORT) while serving stdio; `serve
    /// --http` receives them at /webhooks/smartcar.
    #[arg(long, env = "SMARTCAR_WEBHOOK_ADDR", global = true)]
    pub webhook_addr: Option<String>,
    /// Extra Host header values accepted by /mcp and the webhook receiver (loopback names always
    /// are); add the public name Smartcar and your clients use, e.g. mcp.example.com.
    #[arg(
        long,
        env = "SMARTCAR_ALLOWED_HOSTS",
        global = true,
        value_delimiter = ','
    )]
    pub allowed_hosts: Vec<String>,
    /// Seconds after start, and after each SIGHUP, in which Smartcar's webhook VERIFY is answered
    /// (0: never); click Verify in Smartcar's dashboard within it.
    #[arg(
        long,
        env = "SMARTCAR_MCP_WEBHOOK_VERIFY_WINDOW_S",
        global = true,
        default_value_t = DEFAULT_WEBHOOK_VERIFY_WINDOW_S
    )]
    pub webhook_verify_window_s: u64,
    /// Location in results: `exact`, `coarse` (latitude and longitude rounded to 0.01 degree) or
    /// `off` (location signals refused and removed).
    #[arg(long, env = "SMARTCAR_LOCATION", global = true, value_enum, default_value_t = LocationMode::Exact)]
    pub location: LocationMode,
    /// After a successful command, read its confirming signal once (a billed call) and report
    /// `verified: true|false` with the value read.
    #[arg(long, env = "SMARTCAR_VERIFY_COMMANDS", global = true)]
    pub verify_commands: bool,
    /// How long after a command `--verify-commands` waits before reading.
    #[arg(long, env = "SMARTCAR_VERIFY_DELAY_MS", global = true, default_value_t = DEFAULT_VERIFY_DELAY_MS)]
    pub verify_delay_ms: u64,
    /// Serve against the built-in simulator (overrides the URLs and credentials).
    #[arg(long, env = "SMARTCAR_SIMULATOR", global = true)]
    pub simulator: bool,
    /// Serve HTTP as an OAuth 2.1 resource server: the authorization server (issuer URL) whose
    /// JWT access tokens are accepted; each caller reaches only its own Smartcar users. Exclusive
    /// with SMARTCAR_MCP_HTTP_TOKEN.
    #[arg(long, env = "SMARTCAR_MCP_OAUTH_ISSUER", global = true)]
    pub oauth_issuer: Option<String>,
    /// This endpoint's canonical URL (e.g. https://mcp.example.com/mcp): the audience every token
    /// must carry; required with --oauth-issuer.
    #[arg(long, env = "SMARTCAR_MCP_OAUTH_RESOURCE", global = true)]
    pub oauth_resource: Option<String>,
    /// The issuer's JWKS URL, instead of the `jwks_uri` discovered from its metadata.
    #[arg(long, env = "SMARTCAR_MCP_OAUTH_JWKS_URL", global = true)]
    pub oauth_jwks_url: Option<String>,
    /// The access-token claim holding the caller's Smartcar user ids (a string or an array).
    #[arg(long, env = "SMARTCAR_MCP_OAUTH_USER_CLAIM", global = true, default_value = crate::settings::DEFAULT_OAUTH_USER_CLAIM)]
    pub oauth_user_claim: String,
    /// A JSON file mapping callers (issuer + subject) to Smartcar user ids, beside the claim;
    /// reloaded on SIGHUP.
    #[arg(long, env = "SMARTCAR_MCP_TENANTS", global = true)]
    pub tenants: Option<String>,
}

impl Options {
    /// The audit file these options name: `off` (or empty) for none, else the path, else the
    /// platform default.
    pub fn audit_path(&self) -> Option<std::path::PathBuf> {
        match self.store_location() {
            Ok(Location::Sqlite(p)) => return Some(p),
            Ok(Location::Off) => return None,
            // A shared store keeps no SQLite file; a bad --store is reported by `store_location`.
            Ok(Location::Postgres(_)) | Err(_) if self.store.is_some() => return None,
            _ => {}
        }
        match self.audit_db.as_deref().map(str::trim) {
            Some("off" | "OFF" | "none" | "") => None,
            Some(p) => Some(p.into()),
            None => default_audit_db(),
        }
    }

    /// Where `--store` (else `--audit-db`) puts the state.
    pub fn store_location(&self) -> Result<Location, String> {
        let Some(s) = self.store.as_deref().map(str::trim) else {
            return Ok(match self.audit_db.as_deref().map(str::trim) {
                Some("off" | "OFF" | "none" | "") => Location::Off,
                Some(p) => Location::Sqlite(p.into()),
                None => default_audit_db().map_or(Location::Off, Location::Sqlite),
            });
        };
        if matches!(s, "off" | "OFF" | "none") {
            return Ok(Location::Off);
        }
        if let Some(path) = s.strip_prefix("sqlite:") {
            let path = path.trim_start_matches("//");
            if path.is_empty() {
                return Err("--store sqlite:PATH needs a path".into());
            }
            return Ok(Location::Sqlite(path.into()));
        }
        if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            return Ok(Location::Postgres(Secret::new(s)));
        }
        let scheme = s.split_once(':').map_or("(none)", |(scheme, _)| scheme);
        Err(format!(
            "--store takes sqlite:PATH, off or postgres://…; the scheme {scheme:?} is none of them"
        ))
    }

    /// Resource-server settings, when `--oauth-issuer` is given (its partner flags are checked
    /// when serving starts, with the reason named).
    pub fn oauth_settings(&self) -> Option<crate::settings::OAuthSettings> {
        fn given(v: &Option<String>) -> Option<&str> {
            v.as_deref().map(str::trim).filter(|s| !s.is_empty())
        }
        Some(crate::settings::OAuthSettings {
            issuer: given(&self.oauth_issuer)?.to_string(),
            resource: given(&self.oauth_resource).unwrap_or_default().to_string(),
            jwks_url: given(&self.oauth_jwks_url).map(str::to_string),
            user_claim: self.oauth_user_claim.trim().to_string(),
            tenants: given(&self.tenants).map(Into::into),
        })
    }

    /// The settings these options ask for. The two secrets of HTTP serving are read from the
    /// environment only: a flag would show them in `ps`.
    pub fn settings(&self) -> Settings {
        let nonempty = |v: &Option<String>| v.as_ref().filter(|s| !s.trim().is_empty()).cloned();
        let env_secret = |name: &str| {
            std::env::var(name)
                .ok()
                .filter(|t| !t.is_empty())
                .map(Secret::new)
        };
        Settings {
            upstream: UpstreamSettings {
                client_id: nonempty(&self.client_id),
                client_secret: nonempty(&self.client_secret).map(Secret::new),
                api_url: self.api_url.clone(),
                auth_url: self.auth_url.clone(),
                management_api_url: self.management_api_url.clone(),
                compatibility_api_url: self.compatibility_api_url.clone(),
                connect_timeout: Duration::from_millis(self.connect_timeout_ms),
                read_timeout: Duration::from_millis(self.read_timeout_ms),
                command_timeout: Duration::from_millis(self.command_timeout_ms),
                retry_budget: Duration::from_millis(self.retry_budget_ms),
                max_retry_after: Duration::from_secs(self.max_retry_after_s),
            },
            serving: ServingSettings {
                max_result_bytes: self.max_result_bytes,
                confirm: self.confirm,
                confirm_ttl: Duration::from_secs(self.confirm_ttl_s),
                dry_run: self.dry_run,
                http_token: env_secret(ENV_ONLY[0].0),
                confirm_key: env_secret(ENV_ONLY[1].0),
                max_concurrent_per_vehicle: self.max_concurrent_per_vehicle as usize,
                vehicle_wait: Duration::from_millis(self.vehicle_wait_ms),
                cache_ttl: Duration::from_secs(self.cache_ttl_s),
                max_calls_per_vehicle_per_day: self.max_calls_per_vehicle_per_day,
                audit_db: self.audit_path(),
                postgres: match self.store_location() {
                    Ok(Location::Postgres(url)) => Some(url),
                    _ => None,
                },
                replica_id: self
                    .replica_id
                    .clone()
                    .filter(|r| !r.trim().is_empty())
                    .unwrap_or_else(crate::settings::default_replica_id),
                management_token: env_secret(ENV_ONLY[2].0),
                pushed_max_age: Duration::from_secs(self.pushed_max_age_s),
                webhook_addr: self.webhook_addr.clone().filter(|a| !a.trim().is_empty()),
                webhook_verify_window: Duration::from_secs(self.webhook_verify_window_s),
                location: self.location,
                verify_commands: self.verify_commands,
                verify_delay: Duration::from_millis(self.verify_delay_ms),
                max_sessions: usize::try_from(self.max_sessions).unwrap_or(usize::MAX),
                session_idle: Duration::from_secs(self.session_idle_s),
                listen: ListenLimits {
                    header_timeout: Duration::from_secs(self.header_timeout_s),
                    body_timeout: Duration::from_secs(self.body_timeout_s),
                    idle_timeout: Duration::from_secs(self.idle_timeout_s),
                    max_connections: usize::try_from(self.max_connections).unwrap_or(usize::MAX),
                },
                oauth: self.oauth_settings(),
            },
        }
    }
}
