//! The audit log's plain data, shared by every backend: what is known of a call before it is
//! sent, how it ended, and a row as `smartcar-mcp audit` prints it. States and confirmations are
//! enums so the pipeline cannot misspell one; they are stored as the words the log has always held.

use serde::{Serialize, Serializer};
use serde_json::{Map, Value};

/// Where an audited call stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditState {
    /// On record before it left; without a finish time, the outcome is unknown.
    Sent,
    Done,
    Failed,
    /// Never sent: `--dry-run`.
    DryRun,
    /// Never sent: the human declined, or nobody could be asked.
    Refused,
    /// A word this version does not write, read back from a file another version wrote.
    Other(String),
}

impl AuditState {
    pub fn as_str(&self) -> &str {
        match self {
            AuditState::Sent => "sent",
            AuditState::Done => "done",
            AuditState::Failed => "failed",
            AuditState::DryRun => "dry_run",
            AuditState::Refused => "refused",
            AuditState::Other(s) => s,
        }
    }

    pub fn parse(s: &str) -> Self {
        match s {
            "sent" => AuditState::Sent,
            "done" => AuditState::Done,
            "failed" => AuditState::Failed,
            "dry_run" => AuditState::DryRun,
            "refused" => AuditState::Refused,
            other => AuditState::Other(other.to_string()),
        }
    }
}

/// Whether a human was asked, and what they said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Confirmation {
    /// The tool needs no confirmation.
    NotRequired,
    /// The operator turned confirmation off.
    Off,
    Confirmed,
    Refused,
    /// A dry run asks nobody.
    NotAsked,
    /// A word this version does not write, read back from a file another version wrote.
    Other(String),
}

impl Confirmation {
    pub fn as_str(&self) -> &str {
        match self {
            Confirmation::NotRequired => "not required",
            Confirmation::Off => "off",
            Confirmation::Confirmed => "confirmed",
            Confirmation::Refused => "refused",
            Confirmation::NotAsked => "not asked",
            Confirmation::Other(s) => s,
        }
    }

    pub fn parse(s: &str) -> Self {
        match s {
            "not required" => Confirmation::NotRequired,
            "off" => Confirmation::Off,
            "confirmed" => Confirmation::Confirmed,
            "refused" => Confirmation::Refused,
            "not asked" => Confirmation::NotAsked,
            other => Confirmation::Other(other.to_string()),
        }
    }
}

// `audit --json` has always printed these as their words; the enums must not change that.
macro_rules! as_words {
    ($t:ty) => {
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
as_words!(AuditState);
as_words!(Confirmation);

/// What is known of a call before it is sent.
pub struct Entry<'a> {
    pub tool: &'a str,
    pub arguments: &'a Map<String, Value>,
    pub vehicle: Option<&'a str>,
    pub user: Option<&'a str>,
    /// Who asked: transport, MCP client and session where known.
    pub caller: &'a str,
    /// The OAuth caller's subject and issuer, when serving as a resource server.
    pub principal: Option<&'a str>,
    pub principal_issuer: Option<&'a str>,
    pub confirmation: Confirmation,
}

/// How a sent call ended.
pub struct Finish<'a> {
    pub ok: bool,
    /// The command's status (`SUCCESS`, ...), or the error type.
    pub outcome: Option<&'a str>,
    pub http_status: Option<u16>,
    pub request_id: Option<&'a str>,
    pub error: Option<&'a str>,
}

/// Which rows to read: at or after `since` (an RFC 3339 time or a date), for `vehicle`.
#[derive(Debug, Clone, Copy, Default)]
pub struct RowFilter<'a> {
    pub since: Option<&'a str>,
    pub vehicle: Option<&'a str>,
    /// The OAuth caller's subject (`audit --caller`).
    pub principal: Option<&'a str>,
}

/// One row, as `smartcar-mcp audit` prints it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    pub id: i64,
    pub at: String,
    pub tool: String,
    pub arguments: Value,
    pub vehicle_id: Option<String>,
    pub user_id: Option<String>,
    pub caller: String,
    /// The OAuth caller's subject and issuer, when there was one.
    pub principal: Option<String>,
    pub principal_issuer: Option<String>,
    pub confirmation: Confirmation,
    pub state: AuditState,
    pub outcome: Option<String>,
    pub http_status: Option<u16>,
    pub request_id: Option<String>,
    pub error: Option<String>,
    pub finished_at: Option<String>,
    /// The replica that wrote the row (`--replica-id`), in a store several replicas share.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replica: Option<String>,
}

impl Row {
    /// The state in words: a `sent` row without a finish is a command whose fate is unknown.
    pub fn status(&self) -> String {
        match (&self.state, &self.finished_at) {
            (AuditState::Sent, None) => "sent, outcome unknown".into(),
            // Closed by another replica's sweep: the one that sent it died before the answer.
            (AuditState::Sent, Some(_)) => format!(
                "sent, outcome unknown: {}",
                self.error.as_deref().unwrap_or("its process stopped")
            ),
            (AuditState::Done, _) => {
                format!("done: {}", self.outcome.as_deref().unwrap_or("SUCCESS"))
            }
            (AuditState::Failed, _) => format!(
                "failed: {}",
                self.error
                    .as_deref()
                    .or(self.outcome.as_deref())
                    .unwrap_or("error")
            ),
            (other, _) => other.as_str().replace('_', " "),
        }
    }

    /// Whether the row is picked by `f`; the memory backend's form of SQLite's `WHERE`.
    pub(crate) fn matches(&self, f: &RowFilter) -> bool {
        f.since.is_none_or(|s| self.at.as_str() >= s)
            && f.vehicle
                .is_none_or(|v| self.vehicle_id.as_deref() == Some(v))
            && f.principal
                .is_none_or(|c| self.principal.as_deref() == Some(c))
    }
}

/// The time a row records, as every backend writes it.
pub(crate) fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
