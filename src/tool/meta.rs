//! `Meta`: what a result says about how it was obtained (upstream calls, where the answer came
//! from, retries, Smartcar's status and request id), typed while the pipeline works with it and
//! turned into `_meta` keys once, where a front end renders the result.

use serde_json::{Map, Value, json};

use crate::upstream::{Outcome, RetryNote};

/// Where an answer came from when it was not a fresh upstream request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The read cache (`--cache-ttl-s`).
    Cache,
    /// An identical read in flight, whose answer this one shares.
    Coalesced,
    /// State Smartcar pushed by webhook.
    Webhook,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Cache => "cache",
            Source::Coalesced => "coalesced",
            Source::Webhook => "webhook",
        }
    }
}

/// A result's metadata. `upstream_calls` is what this result cost: 0 for answers served here.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Meta {
    pub upstream_calls: u64,
    /// A Compatibility API answer reused (Smartcar recommends caching them a day).
    pub compatibility_cached: bool,
    pub source: Option<Source>,
    /// How old a reused answer is.
    pub age_s: Option<u64>,
    /// The retries Smartcar's answers called for, and the attempts of the request they belong
    /// to (reported only with retries).
    pub retries: Vec<RetryNote>,
    pub attempts: u64,
    pub http_status: Option<u16>,
    pub request_id: Option<String>,
}

impl Meta {
    /// An answer made here, from a source that costs no upstream call.
    pub fn served(source: Source, age_s: Option<u64>) -> Self {
        Meta {
            source: Some(source),
            age_s,
            ..Meta::default()
        }
    }

    /// What a call to Smartcar met: the attempts, the retries and the final answer's status
    /// and id.
    pub fn of(outcome: &Outcome) -> Self {
        let ok = outcome.result.as_ref().ok();
        Meta {
            upstream_calls: outcome.attempts.into(),
            attempts: outcome.attempts.into(),
            retries: outcome.retries.clone(),
            http_status: ok.map(|ok| ok.status),
            request_id: ok.and_then(|ok| ok.request_id.clone()),
            ..Meta::default()
        }
    }

    /// The `_meta` object, keys under `smartcar-mcp/`.
    pub fn to_map(&self) -> Map<String, Value> {
        let mut m = Map::new();
        if self.compatibility_cached {
            m.insert("smartcar-mcp/cached".into(), json!(true));
        }
        m.insert(
            "smartcar-mcp/upstream_calls".into(),
            json!(self.upstream_calls),
        );
        if !self.retries.is_empty() {
            let list = self
                .retries
                .iter()
                .map(|r| json!({ "attempt": r.attempt, "reason": r.cause.to_string(), "waited_ms": r.waited_ms }))
                .collect();
            m.insert("smartcar-mcp/retries".into(), Value::Array(list));
            m.insert("smartcar-mcp/attempts".into(), json!(self.attempts));
        }
        if let Some(s) = self.http_status {
            m.insert("smartcar-mcp/http_status".into(), json!(s));
        }
        if let Some(id) = &self.request_id {
            m.insert("smartcar-mcp/request_id".into(), json!(id));
        }
        if let Some(s) = self.source {
            m.insert("smartcar-mcp/source".into(), json!(s.as_str()));
        }
        if let Some(age) = self.age_s {
            m.insert("smartcar-mcp/age_s".into(), json!(age));
        }
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_what_happened_is_rendered_and_attempts_go_with_retries() {
        let plain = Meta {
            upstream_calls: 1,
            http_status: Some(200),
            ..Meta::default()
        };
        assert_eq!(
            Value::Object(plain.to_map()),
            json!({ "smartcar-mcp/upstream_calls": 1, "smartcar-mcp/http_status": 200 })
        );
        let cached = Meta::served(Source::Cache, Some(7));
        assert_eq!(
            Value::Object(cached.to_map()),
            json!({ "smartcar-mcp/upstream_calls": 0, "smartcar-mcp/source": "cache",
                    "smartcar-mcp/age_s": 7 })
        );
        let retried = Meta {
            upstream_calls: 2,
            attempts: 2,
            retries: vec![RetryNote {
                attempt: 1,
                cause: crate::upstream::RetryCause::Unauthorized,
                waited_ms: 1000,
            }],
            request_id: Some("r-1".into()),
            ..Meta::default()
        };
        let m = retried.to_map();
        assert_eq!(m["smartcar-mcp/attempts"], 2);
        assert_eq!(m["smartcar-mcp/retries"][0]["waited_ms"], 1000);
        assert_eq!(m["smartcar-mcp/request_id"], "r-1");
        assert!(!m.contains_key("smartcar-mcp/source"));
    }
}
