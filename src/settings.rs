//! The resolved settings, split by who reads them: the Smartcar client (`UpstreamSettings`) and
//! the call pipeline and MCP serving (`ServingSettings`).
//!
//! `Default` reads no environment and no command line: in-process tests and benches get the same
//! values whatever `SMARTCAR_*` variables the developer's shell holds. The command line's
//! defaults (`cli.rs`) are these constants.

use std::path::PathBuf;
use std::time::Duration;

use crate::secret::Secret;

pub const DEFAULT_API_URL: &str = "https://vehicle.api.smartcar.com/v3";
pub const DEFAULT_AUTH_URL: &str = "https://iam.smartcar.com";
pub const DEFAULT_MANAGEMENT_API_URL: &str = "https://management.api.smartcar.com/v3";
pub const DEFAULT_COMPATIBILITY_API_URL: &str = "https://compatibility.api.smartcar.com/v3";
pub const DEFAULT_CONNECT_TIMEOUT_MS: u64 = 10_000;
pub const DEFAULT_READ_TIMEOUT_MS: u64 = 30_000;
pub const DEFAULT_COMMAND_TIMEOUT_MS: u64 = 310_000;
pub const DEFAULT_RETRY_BUDGET_MS: u64 = 20_000;
pub const DEFAULT_MAX_RETRY_AFTER_S: u64 = 10;
pub const DEFAULT_MAX_RESULT_BYTES: usize = 100_000;
pub const DEFAULT_CONFIRM_TTL_S: u64 = 120;
pub const DEFAULT_MAX_CONCURRENT_PER_VEHICLE: usize = 2;
pub const DEFAULT_VEHICLE_WAIT_MS: u64 = 30_000;
pub const DEFAULT_VERIFY_DELAY_MS: u64 = 2_000;
pub const DEFAULT_MAX_SESSIONS: usize = 1_000;
pub const DEFAULT_SESSION_IDLE_S: u64 = 300;
pub const DEFAULT_WEBHOOK_VERIFY_WINDOW_S: u64 = 600;
pub const DEFAULT_HEADER_TIMEOUT_S: u64 = 10;
pub const DEFAULT_BODY_TIMEOUT_S: u64 = 30;
pub const DEFAULT_IDLE_TIMEOUT_S: u64 = 120;
pub const DEFAULT_MAX_CONNECTIONS: usize = 4096;

/// Whether a human must confirm the tools tools.yaml marks `confirm: true`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ConfirmMode {
    Required,
    Off,
}

/// How much of a vehicle's location results may carry (`--location`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LocationMode {
    /// Coordinates as Smartcar reports them.
    #[default]
    Exact,
    /// Every latitude and longitude rounded to 0.01 degree (about 1 km).
    Coarse,
    /// Location signals refused and removed; no coordinates in any result.
    Off,
}

impl LocationMode {
    pub fn as_str(self) -> &'static str {
        match self {
            LocationMode::Exact => "exact",
            LocationMode::Coarse => "coarse",
            LocationMode::Off => "off",
        }
    }
}

/// What the Smartcar client needs: where Smartcar is, who we are, how long to wait.
#[derive(Debug, Clone)]
pub struct UpstreamSettings {
    pub client_id: Option<String>,
    pub client_secret: Option<Secret>,
    pub api_url: String,
    pub auth_url: String,
    pub management_api_url: String,
    /// Smartcar's Compatibility API (`SMARTCAR_COMPATIBILITY_API_URL`), called without credentials.
    pub compatibility_api_url: String,
    pub connect_timeout: Duration,
    pub read_timeout: Duration,
    pub command_timeout: Duration,
    pub retry_budget: Duration,
    pub max_retry_after: Duration,
}

/// What the call pipeline and the MCP transports need.
#[derive(Debug, Clone)]
pub struct ServingSettings {
    pub max_result_bytes: usize,
    pub confirm: ConfirmMode,
    pub confirm_ttl: Duration,
    pub dry_run: bool,
    /// Bearer token HTTP clients must present (`SMARTCAR_MCP_HTTP_TOKEN`); required off loopback.
    pub http_token: Option<Secret>,
    /// Key sealing confirmation rounds (`SMARTCAR_MCP_CONFIRM_KEY`), shared by replicas behind a
    /// load balancer; unset, each process makes a random one.
    pub confirm_key: Option<Secret>,
    /// Upstream calls in flight per vehicle; more wait their turn, at most `vehicle_wait`.
    pub max_concurrent_per_vehicle: usize,
    pub vehicle_wait: Duration,
    /// How long a read's answer is reused; zero turns the cache off.
    pub cache_ttl: Duration,
    /// Upstream calls a vehicle may cost per UTC day; beyond it calls are refused locally.
    pub max_calls_per_vehicle_per_day: Option<u64>,
    /// The audit log of commands and deletions (SQLite); `None` keeps none.
    pub audit_db: Option<PathBuf>,
    /// A PostgreSQL store shared by replicas (`--store postgres://…`), in place of `audit_db`;
    /// the URL may carry a password.
    pub postgres: Option<Secret>,
    /// This process's name in a shared store (`--replica-id`): its audit rows and its lock.
    pub replica_id: String,
    /// Smartcar's Application Management Token (`SMARTCAR_MANAGEMENT_TOKEN`), which signs
    /// webhooks; without it the webhook route answers 503.
    pub management_token: Option<Secret>,
    /// Reads are answered from pushed state the vehicle recorded at most this long ago; zero: off.
    pub pushed_max_age: Duration,
    /// For stdio serving: where to listen for webhooks (`--webhook-addr`).
    pub webhook_addr: Option<String>,
    /// How long after start (and after each SIGHUP) Smartcar's VERIFY is answered; zero: never.
    pub webhook_verify_window: Duration,
    /// What results may say of where a vehicle is (`--location`).
    pub location: LocationMode,
    /// After a successful command, read its confirming signal once (a billed call) and report it.
    pub verify_commands: bool,
    /// How long after the command that read waits.
    pub verify_delay: Duration,
    /// Most Streamable HTTP sessions (pre-2026-07-28 clients) open at once; beyond it 503.
    pub max_sessions: usize,
    /// A session unused this long ends and frees its slot.
    pub session_idle: Duration,
    /// Timeouts and the connection cap of every HTTP listener (`listen`).
    pub listen: ListenLimits,
    /// HTTP serving as an OAuth 2.1 resource server for many drivers (`--oauth-issuer`).
    pub oauth: Option<OAuthSettings>,
}

/// Where inbound access tokens come from and whom they may name (`oauth`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthSettings {
    /// The authorization server's issuer identifier, compared exactly with each token's `iss`.
    pub issuer: String,
    /// This endpoint's canonical URL: the metadata's `resource` and the `aud` tokens must carry.
    pub resource: String,
    /// The JWKS, when not discovered from the issuer's metadata.
    pub jwks_url: Option<String>,
    /// The claim holding the caller's Smartcar user ids (a string or an array).
    pub user_claim: String,
    /// A JSON table of issuer + subject -> Smartcar user ids, reloaded on SIGHUP.
    pub tenants: Option<PathBuf>,
}

/// The claim an access token names its Smartcar user ids in, unless `--oauth-user-claim` says.
pub const DEFAULT_OAUTH_USER_CLAIM: &str = "smartcar_user_id";

/// What one HTTP listener allows a connection before closing it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenLimits {
    /// A request head (request line and headers) must arrive within this, counted from the
    /// connection's opening or from the first byte of a later request.
    pub header_timeout: Duration,
    /// A request body must arrive whole within this, counted from its head; else 408.
    pub body_timeout: Duration,
    /// A kept-alive connection with no request in flight is closed after this long. An SSE
    /// stream is a request in flight.
    pub idle_timeout: Duration,
    /// Connections open at once; the next one is answered 503 and closed.
    pub max_connections: usize,
}

impl Default for ListenLimits {
    fn default() -> Self {
        ListenLimits {
            header_timeout: Duration::from_secs(DEFAULT_HEADER_TIMEOUT_S),
            body_timeout: Duration::from_secs(DEFAULT_BODY_TIMEOUT_S),
            idle_timeout: Duration::from_secs(DEFAULT_IDLE_TIMEOUT_S),
            max_connections: DEFAULT_MAX_CONNECTIONS,
        }
    }
}

/// The settings the server runs with.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    pub upstream: UpstreamSettings,
    pub serving: ServingSettings,
}

impl Default for UpstreamSettings {
    fn default() -> Self {
        UpstreamSettings {
            client_id: None,
            client_secret: None,
            api_url: DEFAULT_API_URL.into(),
            auth_url: DEFAULT_AUTH_URL.into(),
            management_api_url: DEFAULT_MANAGEMENT_API_URL.into(),
            compatibility_api_url: DEFAULT_COMPATIBILITY_API_URL.into(),
            connect_timeout: Duration::from_millis(DEFAULT_CONNECT_TIMEOUT_MS),
            read_timeout: Duration::from_millis(DEFAULT_READ_TIMEOUT_MS),
            command_timeout: Duration::from_millis(DEFAULT_COMMAND_TIMEOUT_MS),
            retry_budget: Duration::from_millis(DEFAULT_RETRY_BUDGET_MS),
            max_retry_after: Duration::from_secs(DEFAULT_MAX_RETRY_AFTER_S),
        }
    }
}

impl Default for ServingSettings {
    fn default() -> Self {
        ServingSettings {
            max_result_bytes: DEFAULT_MAX_RESULT_BYTES,
            confirm: ConfirmMode::Required,
            confirm_ttl: Duration::from_secs(DEFAULT_CONFIRM_TTL_S),
            dry_run: false,
            http_token: None,
            confirm_key: None,
            max_concurrent_per_vehicle: DEFAULT_MAX_CONCURRENT_PER_VEHICLE,
            vehicle_wait: Duration::from_millis(DEFAULT_VEHICLE_WAIT_MS),
            cache_ttl: Duration::ZERO,
            max_calls_per_vehicle_per_day: None,
            audit_db: None,
            postgres: None,
            replica_id: default_replica_id(),
            management_token: None,
            pushed_max_age: Duration::ZERO,
            webhook_addr: None,
            webhook_verify_window: Duration::from_secs(DEFAULT_WEBHOOK_VERIFY_WINDOW_S),
            location: LocationMode::Exact,
            verify_commands: false,
            verify_delay: Duration::from_millis(DEFAULT_VERIFY_DELAY_MS),
            max_sessions: DEFAULT_MAX_SESSIONS,
            session_idle: Duration::from_secs(DEFAULT_SESSION_IDLE_S),
            listen: ListenLimits::default(),
            oauth: None,
        }
    }
}

/// Where the audit log lives when no `--audit-db` is given: the platform's data directory
/// (`~/.local/share/smartcar-mcp/audit.sqlite3` on Linux).
/// Where the state that outlives a call lives, as `--store` names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    Off,
    Sqlite(PathBuf),
    /// A libpq URL; it may hold a password, so it never prints (a `Secret`).
    Postgres(Secret),
}

/// This host's name and this process's id: unique among live replicas on any number of hosts.
pub fn default_replica_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "host".into());
    format!("{host}-{}", std::process::id())
}

pub fn default_audit_db() -> Option<PathBuf> {
    dirs::data_dir().map(|d| d.join("smartcar-mcp").join("audit.sqlite3"))
}

impl Settings {
    /// Default settings talking to the given base URLs.
    pub fn for_urls(auth_url: &str, api_url: &str, management_api_url: &str) -> Self {
        let mut s = Settings::default();
        s.upstream.auth_url = auth_url.into();
        s.upstream.api_url = api_url.into();
        s.upstream.management_api_url = management_api_url.into();
        s
    }
}
