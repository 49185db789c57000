//! Usage counts as every backend keeps them: calls made upstream and saved, per vehicle and tool.

use serde::Serialize;
use std::collections::BTreeMap;

/// Upstream calls made and saved, as counted per vehicle and tool (`tool::usage`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// HTTP requests sent to Smartcar (retries included, token requests not).
    pub upstream_calls: u64,
    /// Calls answered by sharing an identical call in flight.
    pub coalesced: u64,
    /// Calls answered from the read cache.
    pub cached: u64,
    /// Calls answered from state Smartcar pushed by webhook.
    pub pushed: u64,
    /// 429 answers met.
    pub rate_limited: u64,
}

impl Counts {
    pub fn add(&mut self, o: &Counts) {
        self.upstream_calls += o.upstream_calls;
        self.coalesced += o.coalesced;
        self.cached += o.cached;
        self.pushed += o.pushed;
        self.rate_limited += o.rate_limited;
    }

    /// Calls that cost nothing upstream.
    pub fn saved(&self) -> u64 {
        self.coalesced + self.cached + self.pushed
    }
}

/// Every count on record, per (vehicle, tool).
pub type Totals = BTreeMap<(String, String), Counts>;

/// The UTC day a count belongs to, as `YYYY-MM-DD`: the backend's clock, never the caller's.
pub(crate) fn utc_day() -> String {
    chrono::Utc::now().format("%Y-%m-%d").to_string()
}
