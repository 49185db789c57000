//! The resolved settings, split by who reads them: the Smartcar client (`UpstreamSettings`) and
//! the call pipeline and MCP serving (`ServingSettings`).
//!
//! `Default` reads no environment and no command line: in-process tests and benches get the same
//! values whatever `SMARTCAR_*` variables the developer's shell holds. The command line's
//! defaults (`cli.rs`) are these constants.

use std::time::Duration;

use crate::secret::Secret;

pub const DEFAULT_API_URL: &str = "https://vehicle.api.smartcar.com/v3";
pub const DEFAULT_AUTH_URL: &str = "https://iam.smartcar.com";
pub const DEFAULT_MANAGEMENT_API_URL: &str = "https://management.api.smartcar.com/v3";
pub const DEFAULT_CONNECT_TIMEOUT_MS: u64 = 10_000;
pub const DEFAULT_READ_TIMEOUT_MS: u64 = 30_000;
pub const DEFAULT_COMMAND_TIMEOUT_MS: u64 = 310_000;
pub const DEFAULT_RETRY_BUDGET_MS: u64 = 20_000;
pub const DEFAULT_MAX_RETRY_AFTER_S: u64 = 10;
pub const DEFAULT_MAX_RESULT_BYTES: usize = 100_000;
pub const DEFAULT_CONFIRM_TTL_S: u64 = 120;
pub const DEFAULT_MAX_SESSIONS: usize = 1_000;
pub const DEFAULT_SESSION_IDLE_S: u64 = 300;

/// Whether a human must confirm the tools tools.yaml marks `confirm: true`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ConfirmMode {
    Required,
    Off,
}

/// What the Smartcar client needs: where Smartcar is, who we are, how long to wait.
#[derive(Debug, Clone)]
pub struct UpstreamSettings {
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
    /// Most Streamable HTTP sessions (pre-2026-07-28 clients) open at once; beyond it 503.
    pub max_sessions: usize,
    /// A session unused this long ends and frees its slot.
    pub session_idle: Duration,
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
            max_sessions: DEFAULT_MAX_SESSIONS,
            session_idle: Duration::from_secs(DEFAULT_SESSION_IDLE_S),
        }
    }
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
