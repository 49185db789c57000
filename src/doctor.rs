//! `smartcar-mcp doctor`: proves a user's own credentials and setup against Smartcar itself, one
//! check at a time, each failure saying what to fix, without an MCP client and with no secret
//! printed.
//!
//! It makes its own requests (one per check, never retried) rather than going through the tool
//! pipeline: a retry would hide the failure the user came to see, and the count of billed calls
//! it announces must be the count it makes.

use std::collections::HashMap;
use std::io::Write;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use crate::settings::{DEFAULT_API_URL, DEFAULT_AUTH_URL, DEFAULT_MANAGEMENT_API_URL, Settings};
use crate::upstream::auth::{SystemClock, TokenManager};
use crate::upstream::error::{describe_transport, request_id};
use crate::upstream::{AuthError, UpstreamError};

/// What the command line asked of `doctor`.
#[derive(Debug, Clone, Default)]
pub struct DoctorOptions {
    pub json: bool,
    pub redact: bool,
    /// How many connected vehicles get `get_vehicle` and one signal read.
    pub vehicles: usize,
    /// The public URL Smartcar should deliver this server's webhooks to.
    pub webhook_url: Option<String>,
    /// Host names this server answers to (`--allowed-hosts`), to recognise its receiver.
    pub allowed_hosts: Vec<String>,
}

/// Read by every powertrain (the compatibility matrix has it for EVs, PHEVs and ICE alike), so
/// the one billed read per vehicle rarely fails for a reason other than the setup.
const CHEAP_SIGNAL: &str = "odometer-traveleddistance";
/// The path this server's receiver listens on (`mcp::webhook::WEBHOOK_PATH`, repeated here so
/// `doctor` stays below the MCP layer).
const RECEIVER_PATH: &str = "/webhooks/smartcar";
/// Beyond this, token lifetimes and webhook times read wrongly.
const MAX_SKEW: Duration = Duration::from_secs(60);
const CONNECT_URL: &str = "https://smartcar.com/docs/connect/what-is-connect";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    Warn,
    Fail,
    Skip,
}

impl Status {
    fn word(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Fail => "FAIL",
            Status::Skip => "skip",
        }
    }
}

/// One line of the report.
#[derive(Debug, Clone)]
pub struct Check {
    pub name: &'static str,
    pub status: Status,
    pub summary: String,
    /// What the user should change; every failure has one.
    pub fix: Option<String>,
    pub details: Map<String, Value>,
}

impl Check {
    fn new(name: &'static str, status: Status, summary: impl Into<String>) -> Self {
        Check {
            name,
            status,
            summary: summary.into(),
            fix: None,
            details: Map::new(),
        }
    }

    fn fix(mut self, fix: impl Into<String>) -> Self {
        self.fix = Some(fix.into());
        self
    }

    fn detail(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.details.insert(key.to_string(), value.into());
        self
    }
}

/// Every check, in the order run.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub checks: Vec<Check>,
    /// Billed calls actually made.
    pub billed_calls: usize,
}

impl Report {
    pub fn failed(&self) -> usize {
        self.checks
            .iter()
            .filter(|c| c.status == Status::Fail)
            .count()
    }

    pub fn to_json(&self) -> Value {
        json!({
            "version": env!("CARGO_PKG_VERSION"),
            "ok": self.failed() == 0,
            "failed": self.failed(),
            "billed_calls": self.billed_calls,
            "checks": self.checks.iter().map(|c| json!({
                "name": c.name,
                "status": c.status.word().to_ascii_lowercase(),
                "summary": c.summary,
                "fix": c.fix,
                "details": c.details,
            })).collect::<Vec<_>>(),
        })
    }

    pub fn write_text(&self, out: &mut impl Write) -> std::io::Result<()> {
        for c in &self.checks {
            writeln!(out, "{:<5} {:<12} {}", c.status.word(), c.name, c.summary)?;
            if let Some(fix) = &c.fix {
                writeln!(out, "{:<18} fix: {fix}", "")?;
            }
        }
        match self.failed() {
            0 => writeln!(
                out,
                "All checks passed ({} billed call(s) made).",
                self.billed_calls
            ),
            n => writeln!(
                out,
                "{n} check(s) failed ({} billed call(s) made).",
                self.billed_calls
            ),
        }
    }
}

/// Stable stand-ins for ids, so a redacted report still shows which lines name the same thing.
#[derive(Default)]
struct Masks {
    on: bool,
    seen: HashMap<String, String>,
    counts: HashMap<&'static str, usize>,
}

impl Masks {
    fn id(&mut self, kind: &'static str, id: &str) -> String {
        if !self.on {
            return id.to_string();
        }
        if let Some(m) = self.seen.get(id) {
            return m.clone();
        }
        let n = self.counts.entry(kind).or_default();
        *n += 1;
        let m = format!("<{kind} {n}>");
        self.seen.insert(id.to_string(), m.clone());
        m
    }
}

/// One answer from Smartcar, as much as the checks need.
struct Answer {
    body: Value,
}

struct Doctor<'a> {
    settings: &'a Settings,
    http: reqwest::Client,
    token: Option<String>,
    masks: Masks,
    /// The first `Date` header an API answer carried, and when it arrived.
    date: Option<(String, DateTime<Utc>)>,
}

impl Doctor<'_> {
    async fn get(&mut self, url: &str, user: Option<&str>) -> Result<Answer, UpstreamError> {
        let mut rb = self
            .http
            .get(url)
            .timeout(self.settings.upstream.read_timeout)
            .header(reqwest::header::ACCEPT, "application/json");
        if let Some(t) = &self.token {
            rb = rb.bearer_auth(t);
        }
        if let Some(u) = user {
            rb = rb.header("sc-user-id", u);
        }
        let resp = rb
            .send()
            .await
            .map_err(|e| UpstreamError::transport(describe_transport(&e)))?;
        let status = resp.status().as_u16();
        let rid = request_id(&resp);
        let date = resp
            .headers()
            .get(reqwest::header::DATE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        if let Some(d) = &date
            && self.date.is_none()
        {
            self.date = Some((d.clone(), Utc::now()));
        }
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|s| s.trim().parse::<u64>().ok());
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| UpstreamError::transport(describe_transport(&e)))?;
        if !(200..300).contains(&status) {
            return Err(UpstreamError::parse(
                status,
                &bytes,
                rid.as_deref(),
                retry_after,
            ));
        }
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Ok(Answer { body })
    }
}

/// The fix for a failed request to `base` (named by its variable): a wrong URL reads as a 404
/// on a path every account has, or no answer at all; otherwise Smartcar's own hint.
fn fix_for(e: &UpstreamError, var: &str, default: &str) -> String {
    match e.status {
        0 => format!(
            "Smartcar could not be reached ({}): check {var} (default {default}) and the network.",
            e.detail.as_deref().unwrap_or("no answer")
        ),
        401 => "Smartcar refused the access token: check that SMARTCAR_CLIENT_ID and SMARTCAR_CLIENT_SECRET belong to the same application.".into(),
        404 if e.code.as_deref() != Some("SIGNAL_NOT_FOUND") => format!(
            "Nothing answers at this path: check {var} (default {default}); Smartcar's v3 paths end in /v3."
        ),
        _ => e.hint(),
    }
}

/// What Smartcar answered, for the summary line.
fn answered(e: &UpstreamError) -> String {
    let mut s = if e.status == 0 {
        "no answer".to_string()
    } else {
        format!("HTTP {}", e.status)
    };
    if let Some(t) = &e.error_type {
        s.push_str(&format!(" {t}"));
    }
    if let Some(c) = &e.code {
        s.push_str(&format!("/{c}"));
    }
    if let Some(id) = &e.request_id {
        s.push_str(&format!(" (request id {id})"));
    }
    s
}

fn is_url(s: &str) -> bool {
    reqwest::Url::parse(s).is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.has_host())
}

fn is_loopback(s: &str) -> bool {
    reqwest::Url::parse(s).is_ok_and(|u| {
        matches!(
            u.host_str(),
            Some("127.0.0.1" | "localhost" | "[::1]" | "::1")
        )
    })
}

fn environment(s: &Settings, o: &DoctorOptions, masks: &mut Masks) -> Check {
    let up = &s.upstream;
    let mut missing = Vec::new();
    if up.client_id.is_none() {
        missing.push("SMARTCAR_CLIENT_ID");
    }
    if up.client_secret.is_none() {
        missing.push("SMARTCAR_CLIENT_SECRET");
    }
    if !missing.is_empty() {
        return Check::new(
            "environment",
            Status::Fail,
            format!("{} not set", missing.join(" and ")),
        )
        .fix(format!(
            "Set {} to your application's credentials (Smartcar Dashboard, Configuration: API Credentials; a secret is shown once when created).",
            missing.join(" and ")
        ));
    }
    let urls = [
        ("SMARTCAR_AUTH_URL", &up.auth_url),
        ("SMARTCAR_API_URL", &up.api_url),
        ("SMARTCAR_MANAGEMENT_API_URL", &up.management_api_url),
    ];
    if let Some((var, url)) = urls.iter().find(|(_, u)| !is_url(u)) {
        return Check::new(
            "environment",
            Status::Fail,
            format!("{var} is not a URL: {url:?}"),
        )
        .fix(format!(
            "Set {var} to an http(s) URL, or unset it for Smartcar's."
        ));
    }
    let client = masks.id("client", up.client_id.as_deref().unwrap_or(""));
    let mut c = Check::new(
        "environment",
        Status::Ok,
        format!("client id {client} and a client secret are set"),
    )
    .detail("client_id", client)
    .detail("client_secret", "set");
    for (var, url) in urls {
        c = c.detail(var, url.as_str());
    }
    if let Some((var, url)) = urls
        .iter()
        .find(|(_, u)| u.starts_with("http://") && !is_loopback(u))
    {
        return Check {
            status: Status::Fail,
            summary: format!("{var} is plain http off this machine: {url}"),
            ..c
        }
        .fix(format!(
            "Use https for {var}: the access token would cross the network in clear."
        ));
    }
    if s.serving.management_token.is_none() && o.webhook_url.is_some() {
        return Check {
            status: Status::Warn,
            summary: format!("{}; SMARTCAR_MANAGEMENT_TOKEN is not set", c.summary),
            ..c
        }
        .fix("Set SMARTCAR_MANAGEMENT_TOKEN (Dashboard, Webhooks: Application Management Token) or the receiver refuses every webhook.");
    }
    c
}

/// Runs every check; `confirm` hears how many billed calls come next and says whether to make
/// them (the caller answers yes itself under `--yes`, after printing the count).
pub async fn check(
    settings: &Settings,
    o: &DoctorOptions,
    mut confirm: impl FnMut(&str) -> bool,
) -> Report {
    let mut report = Report::default();
    let mut masks = Masks {
        on: o.redact,
        ..Masks::default()
    };
    let env = environment(settings, o, &mut masks);
    let env_failed = env.status == Status::Fail;
    report.checks.push(env);
    if env_failed {
        report.checks.push(Check::new(
            "token",
            Status::Skip,
            "not tried: fix the environment first",
        ));
        return report;
    }
    let up = &settings.upstream;
    let http = match reqwest::Client::builder()
        .connect_timeout(up.connect_timeout)
        .user_agent(concat!("smartcar-mcp-doctor/", env!("CARGO_PKG_VERSION")))
        .build()
    {
        Ok(h) => h,
        Err(e) => {
            report.checks.push(
                Check::new("token", Status::Fail, format!("no HTTP client: {e}"))
                    .fix("Report this as a bug in smartcar-mcp."),
            );
            return report;
        }
    };
    let mut d = Doctor {
        settings,
        http: http.clone(),
        token: None,
        masks,
        date: None,
    };

    // Token.
    let tokens = TokenManager::new(
        http,
        &up.auth_url,
        up.client_id.clone(),
        up.client_secret.clone(),
        std::sync::Arc::new(SystemClock),
    );
    let started = Instant::now();
    match tokens.fetch_uncached().await {
        Ok((token, life)) => {
            let took = started.elapsed().as_millis() as u64;
            let expires = Utc::now() + chrono::Duration::seconds(life.as_secs() as i64);
            let at = expires.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
            d.token = Some(token.expose().to_string());
            report.checks.push(
                Check::new(
                    "token",
                    Status::Ok,
                    format!(
                        "fetched in {took} ms; expires in {} s (at {at})",
                        life.as_secs()
                    ),
                )
                .detail("took_ms", took)
                .detail("expires_in_s", life.as_secs())
                .detail("expires_at", at),
            );
        }
        Err(e) => {
            let fix = match &e {
                AuthError::Rejected(u) if matches!(u.status, 400 | 401 | 403) => {
                    "Smartcar refused the client id or secret: copy both again from the Smartcar Dashboard (Configuration: API Credentials) into SMARTCAR_CLIENT_ID and SMARTCAR_CLIENT_SECRET; a secret is shown only when created, so make a new one if it is lost.".to_string()
                }
                AuthError::Rejected(u) if u.status == 404 => format!(
                    "Nothing answers at {}/oauth2/token: check SMARTCAR_AUTH_URL (default {DEFAULT_AUTH_URL}).",
                    up.auth_url.trim_end_matches('/')
                ),
                AuthError::Transport(_) | AuthError::Unreadable(_) => format!(
                    "Check SMARTCAR_AUTH_URL (default {DEFAULT_AUTH_URL}) and the network."
                ),
                _ => e.message(),
            };
            let what = match &e {
                AuthError::Rejected(u) => format!("refused: {}", answered(u)),
                other => other.code().to_ascii_lowercase().replace('_', " "),
            };
            report
                .checks
                .push(Check::new("token", Status::Fail, format!("not fetched ({what})")).fix(fix));
            for name in ["connections", "vehicles", "webhooks", "management"] {
                report
                    .checks
                    .push(Check::new(name, Status::Skip, "not tried: no access token"));
            }
            return report;
        }
    }

    // Connections: the count and pages are free to read (no vehicle is asked).
    let base = up.api_url.trim_end_matches('/').to_string();
    let mut vehicles: Vec<(String, String)> = Vec::new();
    match d
        .get(&format!("{base}/connections?page[size]=50"), None)
        .await
    {
        Ok(a) => {
            let items = a
                .body
                .get("data")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            for c in &items {
                // Smartcar's connections name both in relationships; older shapes in attributes.
                let id_of = |k: &str| {
                    [
                        format!("/relationships/{k}/data/id"),
                        format!("/attributes/{k}Id"),
                        format!("/attributes/{k}/id"),
                    ]
                    .iter()
                    .find_map(|p| c.pointer(p).and_then(Value::as_str))
                    .map(str::to_string)
                };
                let (vehicle, user) = (id_of("vehicle"), id_of("user"));
                if let (Some(v), Some(u)) = (vehicle, user)
                    && !vehicles.iter().any(|(x, _)| x == &v)
                {
                    vehicles.push((v, u));
                }
            }
            let meta = a.body.get("meta").cloned().unwrap_or(Value::Null);
            let total = meta
                .get("totalCount")
                .and_then(Value::as_u64)
                .unwrap_or(items.len() as u64);
            let size = meta
                .get("pageSize")
                .and_then(Value::as_u64)
                .filter(|s| *s > 0)
                .unwrap_or(50);
            let pages = total.div_ceil(size);
            let c = Check::new(
                "connections",
                if total == 0 { Status::Fail } else { Status::Ok },
                format!("{total} connection(s) on {pages} page(s) of {size}"),
            )
            .detail("count", total)
            .detail("pages", pages)
            .detail("page_size", size);
            report.checks.push(if total == 0 {
                c.fix(format!(
                    "No vehicle is connected to this application yet. A vehicle owner connects one through Smartcar Connect: send them to the Connect URL built from your client id and redirect URI (add mode=simulated to try a simulated vehicle); each completed flow creates a connection. See {CONNECT_URL}."
                ))
            } else {
                c
            });
        }
        Err(e) => report.checks.push(
            Check::new(
                "connections",
                Status::Fail,
                format!("not listed: {}", answered(&e)),
            )
            .fix(fix_for(&e, "SMARTCAR_API_URL", DEFAULT_API_URL)),
        ),
    }

    // Vehicles: the billed part, announced and confirmed first.
    let n = o.vehicles.min(vehicles.len());
    if o.vehicles == 0 {
        report.checks.push(Check::new(
            "vehicles",
            Status::Skip,
            "--vehicles 0: none read",
        ));
    } else if n == 0 {
        report.checks.push(Check::new(
            "vehicles",
            Status::Skip,
            "no connected vehicle to read",
        ));
    } else {
        let calls = n * 2;
        let question = format!(
            "doctor will now make {calls} billed call(s) to Smartcar: get_vehicle and the signal {CHEAP_SIGNAL} for {n} vehicle(s)."
        );
        if confirm(&question) {
            for (vehicle, user) in vehicles.iter().take(n) {
                let shown = d.masks.id("vehicle", vehicle);
                let c = read_vehicle(
                    &mut d,
                    &base,
                    vehicle,
                    user,
                    &shown,
                    &mut report.billed_calls,
                )
                .await;
                report.checks.push(c);
            }
        } else {
            report.checks.push(
                Check::new(
                    "vehicles",
                    Status::Skip,
                    format!("not confirmed: the {calls} billed call(s) were not made"),
                )
                .fix("Run again and answer y, or pass --yes."),
            );
        }
    }

    // Webhooks.
    let mgmt = up.management_api_url.trim_end_matches('/').to_string();
    match d.get(&format!("{mgmt}/webhooks"), None).await {
        Ok(a) => {
            let hooks = a
                .body
                .get("data")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let uris: Vec<String> = hooks
                .iter()
                .filter_map(|h| {
                    h.pointer("/attributes/callbackUri")
                        .or_else(|| h.pointer("/attributes/callbackUrl"))
                        .and_then(Value::as_str)
                        .map(str::to_string)
                })
                .collect();
            let ours = |u: &str| match &o.webhook_url {
                Some(w) => u.trim_end_matches('/') == w.trim_end_matches('/'),
                None => reqwest::Url::parse(u).is_ok_and(|p| {
                    p.path().trim_end_matches('/') == RECEIVER_PATH
                        && p.host_str().is_some_and(|h| {
                            o.allowed_hosts.iter().any(|a| a.eq_ignore_ascii_case(h))
                        })
                }),
            };
            let registered = uris.iter().any(|u| ours(u));
            let shown: Vec<String> = uris.iter().map(|u| d.masks.id("callback", u)).collect();
            let mut c = Check::new(
                "webhooks",
                Status::Ok,
                format!("{} webhook(s) listed", hooks.len()),
            )
            .detail("count", hooks.len())
            .detail("callbacks", shown)
            .detail("receiver_registered", registered);
            if o.webhook_url.is_none() && o.allowed_hosts.is_empty() {
                c.summary
                    .push_str("; this server's receiver unknown (no --webhook-url)");
                c = c.fix(format!(
                    "Pass --webhook-url https://YOUR-HOST{RECEIVER_PATH} (or --allowed-hosts YOUR-HOST) to check that Smartcar delivers to this server."
                ));
                c.status = Status::Warn;
            } else if registered {
                c.summary.push_str("; this server's receiver is registered");
            } else {
                c.summary
                    .push_str("; this server's receiver is not registered");
                c.status = Status::Warn;
                c = c.fix(format!(
                    "In the Smartcar Dashboard (Webhooks), add a webhook whose callback URI is this server's {RECEIVER_PATH}, click Verify within the verification window, then subscribe vehicles (subscribe_vehicle). Without one, vehicle data refreshes about once a day."
                ));
            }
            report.checks.push(c);
        }
        Err(e) => report.checks.push(
            Check::new(
                "webhooks",
                Status::Fail,
                format!("not listed: {}", answered(&e)),
            )
            .fix(fix_for(
                &e,
                "SMARTCAR_MANAGEMENT_API_URL",
                DEFAULT_MANAGEMENT_API_URL,
            )),
        ),
    }

    // Management: undocumented by Smartcar, so unavailable is a warning, not a failure.
    match d.get(&format!("{mgmt}/applications"), None).await {
        Ok(_) => report.checks.push(Check::new(
            "management",
            Status::Ok,
            "the /applications endpoints answer (list_applications, get_application, list_application_secrets work)",
        ).detail("available", true)),
        Err(e) if matches!(e.status, 403 | 404 | 405 | 501) => report.checks.push(
            Check::new(
                "management",
                Status::Warn,
                format!("the /applications endpoints are not available ({}): undocumented by Smartcar, they may not be available for your application", answered(&e)),
            )
            .detail("available", false)
            .fix("Nothing to fix for the vehicle tools; leave the management toolset off (--toolsets connections,signals,commands) so a model is not offered tools that fail."),
        ),
        Err(e) => report.checks.push(
            Check::new("management", Status::Fail, format!("not answered: {}", answered(&e)))
                .detail("available", false)
                .fix(fix_for(&e, "SMARTCAR_MANAGEMENT_API_URL", DEFAULT_MANAGEMENT_API_URL)),
        ),
    }

    // Clock skew: Smartcar's times (token expiry, oemUpdatedAt, deliveredAt) are read by this clock.
    report.checks.push(match d.date.clone() {
        None => Check::new(
            "clock",
            Status::Skip,
            "no Date header in Smartcar's answers to compare with",
        ),
        Some((header, at)) => match DateTime::parse_from_rfc2822(&header) {
            Err(_) => Check::new(
                "clock",
                Status::Skip,
                format!("Smartcar's Date header is unreadable: {header:?}"),
            ),
            Ok(theirs) => {
                let skew = (at - theirs.with_timezone(&Utc)).num_seconds();
                let c = Check::new(
                    "clock",
                    Status::Ok,
                    format!("{skew:+} s against Smartcar's Date header"),
                )
                .detail("skew_s", skew);
                if skew.unsigned_abs() > MAX_SKEW.as_secs() {
                    Check {
                        status: Status::Warn,
                        ..c
                    }
                    .fix("Synchronise this machine's clock (NTP): token expiry and webhook times are read against it.")
                } else {
                    c
                }
            }
        },
    });
    report
}

/// `get_vehicle` and one signal for one vehicle: two billed calls, counted as they are made.
async fn read_vehicle(
    d: &mut Doctor<'_>,
    base: &str,
    vehicle: &str,
    user: &str,
    shown: &str,
    billed: &mut usize,
) -> Check {
    *billed += 1;
    let info = match d.get(&format!("{base}/vehicles/{vehicle}"), None).await {
        Ok(a) => a,
        Err(e) => {
            return Check::new(
                "vehicles",
                Status::Fail,
                format!("{shown}: get_vehicle failed: {}", answered(&e)),
            )
            .fix(fix_for(&e, "SMARTCAR_API_URL", DEFAULT_API_URL));
        }
    };
    let attrs = info
        .body
        .pointer("/data/attributes")
        .or_else(|| info.body.get("attributes"))
        .cloned()
        .unwrap_or(Value::Null);
    let car = ["make", "model", "year"]
        .iter()
        .filter_map(|k| match attrs.get(*k) {
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join(" ");
    *billed += 1;
    let signal = d
        .get(
            &format!("{base}/vehicles/{vehicle}/signals/{CHEAP_SIGNAL}"),
            Some(user),
        )
        .await;
    let c = Check::new("vehicles", Status::Ok, String::new()).detail("vehicle", shown);
    match signal {
        Ok(a) => {
            let doc = a
                .body
                .get("data")
                .filter(|x| x.is_object())
                .unwrap_or(&a.body);
            let status = doc
                .pointer("/attributes/status/value")
                .and_then(Value::as_str)
                .unwrap_or("SUCCESS");
            let status = if doc.pointer("/attributes/body").is_none() && status == "SUCCESS" {
                "UNAVAILABLE"
            } else {
                status
            };
            let summary = format!("{shown} ({car}): get_vehicle ok; {CHEAP_SIGNAL} {status}");
            Check {
                summary,
                status: if status == "SUCCESS" {
                    Status::Ok
                } else {
                    Status::Warn
                },
                ..c
            }
            .detail("signal_status", status)
        }
        // This vehicle cannot report that signal: the setup is fine.
        Err(e)
            if matches!(
                e.error_type.as_deref(),
                Some("COMPATIBILITY" | "PERMISSION")
            ) || e.code.as_deref() == Some("SIGNAL_NOT_FOUND") =>
        {
            Check {
                summary: format!(
                    "{shown} ({car}): get_vehicle ok; {CHEAP_SIGNAL} not readable: {}",
                    answered(&e)
                ),
                status: Status::Warn,
                ..c
            }
            .fix(e.hint())
        }
        Err(e) => Check {
            summary: format!(
                "{shown} ({car}): get_vehicle ok; {CHEAP_SIGNAL} failed: {}",
                answered(&e)
            ),
            status: Status::Fail,
            ..c
        }
        .fix(fix_for(&e, "SMARTCAR_API_URL", DEFAULT_API_URL)),
    }
}
