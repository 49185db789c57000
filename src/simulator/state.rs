//! The simulator's mutable state: issued tokens, queued faults, recorded requests and the fleet.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::routes::webhooks::Hooks;
use super::seed::Fleet;
use super::{ErrorFormat, Fault, RecordedRequest, SimConfig};

pub(crate) struct State {
    pub token_ttl_secs: u64,
    pub error_format: ErrorFormat,
    pub single_signal_wrapped: bool,
    /// Commands answer SUCCESS and change nothing (a car that ignores them).
    pub ignore_commands: bool,
    /// The one client secret the token endpoint accepts; `None` accepts any (the default).
    pub client_secret: Option<String>,
    /// Vehicles never subscribed to a webhook: their signal list is empty, as Smartcar was seen
    /// to answer for such a vehicle.
    pub unsubscribed: std::collections::HashSet<String>,
    /// Access token -> expiry.
    pub tokens: HashMap<String, Instant>,
    pub faults: Vec<Fault>,
    pub requests: Vec<RecordedRequest>,
    pub token_requests: Vec<RecordedRequest>,
    pub destinations: Vec<(String, f64, f64)>,
    pub fleet: Fleet,
    pub hooks: Hooks,
    next_exec: u64,
    /// Where to push state changes as Smartcar webhooks, and the token that signs them.
    pub webhook: Option<(String, String)>,
    /// Events waiting to be delivered once the request that made them is answered.
    pub outbox: Vec<serde_json::Value>,
    next_event: u64,
}

/// Why a bearer token was refused; the detail helps a test author see which case they hit.
pub(crate) enum TokenProblem {
    Missing,
    Unknown,
    Expired,
}

impl State {
    pub fn new(config: &SimConfig) -> Self {
        State {
            token_ttl_secs: config.token_ttl_secs,
            error_format: config.error_format,
            single_signal_wrapped: config.single_signal_wrapped,
            ignore_commands: false,
            client_secret: None,
            unsubscribed: Default::default(),
            tokens: HashMap::new(),
            faults: Vec::new(),
            requests: Vec::new(),
            token_requests: Vec::new(),
            destinations: Vec::new(),
            fleet: Fleet::seeded(),
            hooks: Hooks::seeded(),
            next_exec: 0,
            webhook: None,
            outbox: Vec::new(),
            next_event: 0,
        }
    }

    /// A fresh event id for a webhook delivery.
    pub fn next_event_id(&mut self) -> String {
        self.next_event += 1;
        format!("evt-sim-{:06}", self.next_event)
    }

    /// Takes one use of the first matching fault.
    pub fn take_fault(&mut self, method: &str, raw_path: &str, is_token: bool) -> Option<Fault> {
        let i = self
            .faults
            .iter()
            .position(|f| f.matches(method, raw_path, is_token))?;
        let fault = &mut self.faults[i];
        fault.times -= 1;
        let answer = fault.clone();
        if fault.times == 0 {
            self.faults.remove(i);
        }
        Some(answer)
    }

    pub fn issue_token(&mut self) -> (String, u64) {
        let ttl = self.token_ttl_secs;
        let token = format!(
            "simtok_{:016x}{:016x}",
            fastrand::u64(..),
            fastrand::u64(..)
        );
        let now = Instant::now();
        // Expired tokens are dropped here so a long demo session does not grow without bound.
        self.tokens.retain(|_, exp| *exp > now);
        let expiry = now
            .checked_add(Duration::from_secs(ttl))
            .unwrap_or(now + Duration::from_secs(u32::MAX as u64));
        self.tokens.insert(token.clone(), expiry);
        (token, ttl)
    }

    pub fn check_token(&self, authorization: Option<&str>) -> Result<(), TokenProblem> {
        let Some(value) = authorization else {
            return Err(TokenProblem::Missing);
        };
        let value = value.trim();
        let token = match value.split_once(' ') {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
            _ => return Err(TokenProblem::Missing),
        };
        match self.tokens.get(token) {
            None => Err(TokenProblem::Unknown),
            Some(exp) if *exp <= Instant::now() => Err(TokenProblem::Expired),
            Some(_) => Ok(()),
        }
    }

    pub fn next_exec_id(&mut self) -> String {
        self.next_exec += 1;
        format!("exec_{:010}", self.next_exec)
    }
}
