//! Shapes Smartcar's JSON:API answers into the compact results tools.yaml declares: small, typed,
//! timestamps as ISO-8601, links and envelopes dropped, secrets redacted. One file a concern:
//! reading documents (`jsonapi`), units, signals, the other records, commands and redaction.

mod command;
mod jsonapi;
mod records;
mod redact;
mod signals;
mod units;

use serde_json::{Map, Value, json};

use super::error::ToolError;
use crate::catalogue::{Shape, ToolSpec};
use command::command;
use jsonapi::{items, page, resource};
use records::{
    application, connection, model_capability, secret, subscribed, subscription, vehicle, webhook,
};
use signals::{compact_signal, signal_list};

pub use command::reported_status;
pub use jsonapi::iso8601;
pub use records::already_subscribed;
pub use redact::redact;
pub use signals::EMPTY_SIGNALS;
pub use units::normalize_unit;

/// A successful answer, shaped.
#[derive(Debug, Clone, PartialEq)]
pub struct Shaped {
    pub structured: Value,
    /// The sentence the text content opens with (commands and deletions).
    pub sentence: Option<String>,
}

/// Replaces `{param}` in a `says` or `asks` template with the call's arguments.
pub fn fill(template: &str, args: &Map<String, Value>) -> String {
    let mut out = template.to_string();
    for (k, v) in args {
        let text = match v {
            Value::String(x) => x.clone(),
            other => other.to_string(),
        };
        out = out.replace(&format!("{{{k}}}"), &text);
    }
    out
}

/// Shapes a 2xx answer (`body` is `None` when it was empty) into the tool's declared result.
pub fn shape(
    spec: &ToolSpec,
    args: &Map<String, Value>,
    status: u16,
    body: Option<&Value>,
) -> Result<Shaped, ToolError> {
    let raw = spec.wants_raw(args);
    let empty = Value::Null;
    let doc = body.unwrap_or(&empty);
    if raw {
        let structured = if doc.is_object() {
            doc.clone()
        } else {
            json!({ "data": doc })
        };
        return Ok(Shaped {
            structured,
            sentence: None,
        });
    }
    let list = |f: fn(&Value) -> Value| Value::Array(items(doc).into_iter().map(f).collect());
    let structured = match spec.output {
        Shape::Command => return command(spec, args, status, doc),
        Shape::Deletion => {
            let sentence = spec.says.map(|t| fill(t, args));
            return Ok(Shaped {
                structured: json!({ "command": spec.name, "status": "SUCCESS", "id": spec.target(args) }),
                sentence,
            });
        }
        Shape::Signal => compact_signal(resource(doc)),
        Shape::SignalList => signal_list(doc),
        Shape::Connection => connection(resource(doc)),
        Shape::ConnectionList => json!({ "connections": list(connection), "page": page(doc) }),
        Shape::Vehicle => vehicle(resource(doc)),
        Shape::Application => application(resource(doc)),
        Shape::ApplicationList => json!({ "applications": list(application) }),
        Shape::SecretList => json!({ "secrets": list(secret) }),
        Shape::Webhook => webhook(resource(doc)),
        Shape::WebhookList => json!({ "webhooks": list(webhook), "page": page(doc) }),
        Shape::SubscriptionList => {
            json!({ "subscriptions": list(subscription), "page": page(doc) })
        }
        Shape::Subscription => return Ok(subscribed(spec, args, status, doc)),
        Shape::Compatibility => json!({ "models": list(model_capability), "page": page(doc) }),
    };
    let sentence = if spec.annotations.read_only {
        structured
            .get("note")
            .and_then(Value::as_str)
            .map(str::to_string)
    } else {
        spec.says.map(|t| fill(t, args))
    };
    Ok(Shaped {
        structured,
        sentence,
    })
}
