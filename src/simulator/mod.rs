//! A local stand-in of Smartcar's token, Vehicle v3 and Management v3 APIs: the test double
//! (request recording, fault injection) and the offline demo (a seeded fleet that commands change).
//!
//! Routes and shapes follow Smartcar's public API reference (https://smartcar.com/docs/api-reference,
//! the Vehicles v3 and Management v3 pages), not tools.yaml, so the client is tested against the
//! API rather than against itself.
//!
//! Fault matching: a queued [`Fault`] answers the first request it matches, oldest fault first.
//! A fault without `path_contains` matches every Vehicle and Management API request but never a
//! token request, so `Fault::new(500, ..)` is not used up by the client's token fetch. A fault
//! reaches `POST /oauth2/token` only when its `path_contains` is part of `/oauth2/token` and names
//! it (e.g. `"/oauth2/token"`, `"oauth2"`, `"token"`).

mod reply;
mod routes;
mod seed;
mod state;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::watch;

use crate::settings::ListenLimits;

use state::State;

/// Ids of the seeded fleet: ALICE owns the EV (locked, 72 % charged, limit 80 %) and the PHEV
/// (unlocked); BOB owns the ICE pickup, a Smartcar "simulated" vehicle.
pub use seed::{ALICE, BOB, EV, ICE, PHEV};

/// Client credentials printed by `run_standalone`; the simulator accepts any non-empty pair.
pub const DEMO_CLIENT_ID: &str = "client_simulator";
pub const DEMO_CLIENT_SECRET: &str = "simulator-secret";

#[derive(Debug, Clone)]
pub struct SimConfig {
    /// 0 picks a free port.
    pub port: u16,
    pub token_ttl_secs: u64,
    pub error_format: ErrorFormat,
    /// false: a single signal is the bare resource (documented); true: `{data, included}`.
    pub single_signal_wrapped: bool,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            port: 0,
            token_ttl_secs: 3600,
            error_format: ErrorFormat::V3,
            single_signal_wrapped: false,
        }
    }
}

/// The error body format of API routes (token errors are always OAuth-shaped).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorFormat {
    /// `{"errors":[{status, type, code, title, detail, ...}]}`
    V3,
    /// `{type, code, description, statusCode, requestId, resolution:{type}}`
    V2,
}

/// One request as the simulator received it.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedRequest {
    pub method: String,
    /// Still percent-encoded, without the `/v3` or `/management/v3` prefix.
    pub path: String,
    /// "vehicle", "management", "compatibility" or "auth"; "other" for a path outside every base
    /// URL, which is how a client that dropped the `/v3` segment shows up.
    pub api: &'static str,
    /// Percent-decoded pairs in the order sent.
    pub query: Vec<(String, String)>,
    /// Lowercase names; repeated headers are joined with ", ".
    pub headers: BTreeMap<String, String>,
    pub body: String,
}

impl RecordedRequest {
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_str(&self.body).ok()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }

    /// The first value of a query key.
    pub fn query_value(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// A canned answer for the next matching request(s); see the module docs for matching.
#[derive(Debug, Clone, PartialEq)]
pub struct Fault {
    pub method: Option<String>,
    pub path_contains: Option<String>,
    /// How many more requests this fault answers; it is dropped at 0.
    pub times: usize,
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub delay_ms: u64,
    /// Sends the status line and headers, then breaks the connection mid-body: a request that
    /// reached Smartcar whose answer never arrived whole.
    pub cut_off: bool,
}

impl Fault {
    /// Answers the next API request (any method, any path) once.
    pub fn new(status: u16, body: impl Into<String>) -> Self {
        Fault {
            method: None,
            path_contains: None,
            times: 1,
            status,
            headers: Vec::new(),
            body: body.into(),
            delay_ms: 0,
            cut_off: false,
        }
    }

    /// Only requests with this method (any case; "" or "*" for any) whose path contains
    /// `path_contains` (as received, prefix included; "" for any).
    pub fn on(mut self, method: &str, path_contains: &str) -> Self {
        self.method = match method.trim() {
            "" | "*" => None,
            m => Some(m.to_ascii_uppercase()),
        };
        self.path_contains = (!path_contains.is_empty()).then(|| path_contains.to_string());
        self
    }

    pub fn times(mut self, n: usize) -> Self {
        self.times = n;
        self
    }

    pub fn header(mut self, k: &str, v: &str) -> Self {
        self.headers.push((k.to_string(), v.to_string()));
        self
    }

    /// Breaks the connection after the headers (see the field).
    pub fn cut_off(mut self) -> Self {
        self.cut_off = true;
        self
    }

    pub fn delay_ms(mut self, ms: u64) -> Self {
        self.delay_ms = ms;
        self
    }

    /// A Smartcar error in the v3 `errors[]` envelope (https://smartcar.com/docs/api-reference/remove-user shows it).
    pub fn smartcar(status: u16, ty: &str, code: &str, detail: &str) -> Self {
        let body = reply::v3_error_body(status, ty, Some(code), detail);
        Fault::new(status, body.to_string())
    }

    pub(crate) fn matches(&self, method: &str, raw_path: &str, is_token: bool) -> bool {
        if self.times == 0 {
            return false;
        }
        if let Some(m) = &self.method
            && !m.eq_ignore_ascii_case(method)
        {
            return false;
        }
        match (&self.path_contains, is_token) {
            (None, token) => !token,
            (Some(p), false) => raw_path.contains(p.as_str()),
            (Some(p), true) => {
                let lower = p.to_ascii_lowercase();
                raw_path.contains(p.as_str())
                    && (lower.contains("oauth") || lower.contains("token"))
            }
        }
    }
}

pub(crate) struct Inner {
    state: Mutex<State>,
    addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    /// Added to every API answer (not token answers): a car that takes its time.
    pub(crate) latency_ms: std::sync::atomic::AtomicU64,
    /// API requests being answered now, and the most at once, so tests can see concurrency.
    pub(crate) in_flight: std::sync::atomic::AtomicUsize,
    pub(crate) max_in_flight: std::sync::atomic::AtomicUsize,
}

impl Inner {
    /// A poisoned lock only means another handler panicked mid-update; the state is still
    /// usable for a test double, and refusing it would turn one failure into many.
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn api_base(&self) -> String {
        format!("http://{}/v3", self.addr)
    }
}

/// Handle to a running simulator; clones share the same server and state.
#[derive(Clone)]
pub struct Simulator {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Simulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Simulator")
            .field("addr", &self.inner.addr)
            .finish_non_exhaustive()
    }
}

impl Simulator {
    /// Binds 127.0.0.1 only: the simulator accepts any credentials and must never be reachable
    /// from another host.
    pub async fn start(config: SimConfig) -> anyhow::Result<Simulator> {
        let listener =
            tokio::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, config.port)))
                .await
                .map_err(|e| {
                    anyhow::anyhow!("simulator: cannot bind 127.0.0.1:{}: {e}", config.port)
                })?;
        let addr = listener.local_addr()?;
        let (tx, mut rx) = watch::channel(false);
        let inner = Arc::new(Inner {
            state: Mutex::new(State::new(&config)),
            addr,
            shutdown: tx,
            latency_ms: Default::default(),
            in_flight: Default::default(),
            max_in_flight: Default::default(),
        });
        let app = routes::router(inner.clone());
        tokio::spawn(async move {
            let stop = async move {
                let _ = rx.wait_for(|stopped| *stopped).await;
            };
            crate::listen::serve(listener, app, ListenLimits::default(), stop).await;
        });
        Ok(Simulator { inner })
    }

    pub fn addr(&self) -> SocketAddr {
        self.inner.addr
    }

    pub fn auth_url(&self) -> String {
        format!("http://{}", self.inner.addr)
    }

    pub fn api_url(&self) -> String {
        self.inner.api_base()
    }

    pub fn management_url(&self) -> String {
        format!("http://{}/management/v3", self.inner.addr)
    }

    /// From now on, every state change a command makes is pushed to `url` as a signed
    /// `VEHICLE_STATE` webhook (HMAC-SHA256 with `management_token`), the way Smartcar does.
    pub fn deliver_webhooks(&self, url: &str, management_token: &str) {
        self.inner.lock().webhook = Some((url.to_string(), management_token.to_string()));
    }

    /// Every API answer from now on takes at least this long.
    pub fn set_latency_ms(&self, ms: u64) {
        self.inner
            .latency_ms
            .store(ms, std::sync::atomic::Ordering::SeqCst);
    }

    /// The most API requests that were being answered at the same time (see `set_latency_ms`).
    pub fn max_in_flight(&self) -> usize {
        self.inner
            .max_in_flight
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The Compatibility API base (answers without any token, as Smartcar's does).
    pub fn compatibility_url(&self) -> String {
        format!("http://{}/compatibility/v3", self.inner.addr)
    }

    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.inner.lock().requests.clone()
    }

    pub fn token_requests(&self) -> Vec<RecordedRequest> {
        self.inner.lock().token_requests.clone()
    }

    /// Clears the API request log; the token log is kept, so a test can clear between calls
    /// and still count token fetches over the whole session.
    pub fn clear_requests(&self) {
        self.inner.lock().requests.clear();
    }

    pub fn clear_token_requests(&self) {
        self.inner.lock().token_requests.clear();
    }

    /// How many recorded API requests have this method (any case, "" for any) and a path
    /// containing `path_contains`: a per-route request counter.
    pub fn hits(&self, method: &str, path_contains: &str) -> usize {
        self.inner
            .lock()
            .requests
            .iter()
            .filter(|r| method.is_empty() || r.method.eq_ignore_ascii_case(method))
            .filter(|r| r.path.contains(path_contains))
            .count()
    }

    pub fn inject(&self, fault: Fault) {
        self.inner.lock().faults.push(fault);
    }

    /// Drops every queued fault, including the unused rest of a `times(n)` fault, which would
    /// otherwise still answer before any fault injected after it.
    pub fn clear_faults(&self) {
        self.inner.lock().faults.clear();
    }

    /// How many queued faults still have uses left.
    pub fn pending_faults(&self) -> usize {
        self.inner.lock().faults.len()
    }

    /// Applies to tokens issued from now on.
    pub fn set_token_ttl(&self, secs: u64) {
        self.inner.lock().token_ttl_secs = secs;
    }

    pub fn revoke_tokens(&self) {
        self.inner.lock().tokens.clear();
    }

    pub fn set_error_format(&self, f: ErrorFormat) {
        self.inner.lock().error_format = f;
    }

    pub fn set_single_signal_wrapped(&self, wrapped: bool) {
        self.inner.lock().single_signal_wrapped = wrapped;
    }

    /// When on, every command answers SUCCESS and changes no state, so a test can see a command
    /// that did not take effect.
    pub fn ignore_commands(&self, ignore: bool) {
        self.inner.lock().ignore_commands = ignore;
    }

    /// From now on the token endpoint accepts only this client secret (any client id), so a test
    /// can show what a wrong secret looks like.
    pub fn require_client_secret(&self, secret: &str) {
        self.inner.lock().client_secret = Some(secret.to_string());
    }

    /// Whether a vehicle was ever subscribed to a webhook; one that never was answers its signal
    /// list with `200` and no signals.
    pub fn set_never_subscribed(&self, vehicle_id: &str, never: bool) {
        let mut st = self.inner.lock();
        if never {
            st.unsubscribed.insert(vehicle_id.to_string());
        } else {
            st.unsubscribed.remove(vehicle_id);
        }
    }

    /// Every `navigation/set-destination` accepted so far: (vehicle id, latitude, longitude).
    pub fn destinations(&self) -> Vec<(String, f64, f64)> {
        self.inner.lock().destinations.clone()
    }

    /// The current body of a vehicle's signal, `None` when the vehicle or signal is unknown or the
    /// vehicle cannot provide that signal.
    pub fn signal_body(&self, vehicle_id: &str, code: &str) -> Option<serde_json::Value> {
        let st = self.inner.lock();
        st.fleet
            .vehicle(vehicle_id)
            .and_then(|v| v.signals.get(code).cloned())
    }

    /// Every application secret value the Management API serves, so a test can prove none of
    /// them leaks.
    pub fn management_secrets(&self) -> Vec<String> {
        let st = self.inner.lock();
        st.fleet
            .applications
            .iter()
            .flat_map(|a| a.secrets.iter().map(|s| s.value.to_string()))
            .collect()
    }

    pub fn shutdown(&self) {
        let _ = self.inner.shutdown.send(true);
    }
}

/// What `smartcar-mcp simulator` tells its user: where it listens and how to point the server at it.
pub fn banner(sim: &Simulator) -> String {
    let mut b = format!(
        "Smartcar API simulator listening on {}\n  auth (token):   {}/oauth2/token\n  vehicle API:    {}\n  management API: {}\n\n",
        sim.addr(),
        sim.auth_url(),
        sim.api_url(),
        sim.management_url()
    );
    b.push_str("Point smartcar-mcp at it (any non-empty client id and secret are accepted):\n");
    b.push_str(&format!("export SMARTCAR_AUTH_URL={}\n", sim.auth_url()));
    b.push_str(&format!("export SMARTCAR_API_URL={}\n", sim.api_url()));
    b.push_str(&format!(
        "export SMARTCAR_MANAGEMENT_API_URL={}\n",
        sim.management_url()
    ));
    b.push_str(&format!("export SMARTCAR_CLIENT_ID={DEMO_CLIENT_ID}\n"));
    b.push_str(&format!(
        "export SMARTCAR_CLIENT_SECRET={DEMO_CLIENT_SECRET}\n\n"
    ));
    b.push_str("Seeded fleet (user -> connection -> vehicle):\n");
    for line in seed::fleet_summary() {
        b.push_str(&format!("  {line}\n"));
    }
    b.push_str("\nPress ctrl-c to stop.");
    b
}

/// `smartcar-mcp simulator --port N`: starts it, hands the banner to `announce`, serves until ctrl-c.
pub async fn run_standalone(
    port: u16,
    webhook: Option<(String, String)>,
    announce: impl FnOnce(&str),
) -> anyhow::Result<()> {
    let sim = Simulator::start(SimConfig {
        port,
        ..SimConfig::default()
    })
    .await?;
    if let Some((url, token)) = &webhook {
        sim.deliver_webhooks(url, token);
    }
    announce(&banner(&sim));
    tokio::signal::ctrl_c().await?;
    sim.shutdown();
    Ok(())
}
