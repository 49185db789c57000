//! MCP Apps (`io.modelcontextprotocol/ui`, spec 2026-01-26): the one embedded view of a vehicle,
//! a fleet and its charging, and the `_meta` linking the read tools to it, given only to clients
//! that declared the extension, in either lifecycle.
//!
//! A client that did not declare it sees exactly what it saw before: the same tools/list bytes,
//! resources and results. One that did gets `_meta.ui.resourceUri` (and the flat legacy key) on
//! the read tools, the view in resources/list, and on those tools' results `_meta` entries the
//! view draws from: pushed state already held (no billed call) and the location setting.

use std::sync::LazyLock;

use rmcp::model::{
    CallToolResult, ClientCapabilities, ExtensionCapabilities, MetaObject, ReadResourceResult,
    Resource, ResourceContents, Tool,
};
use serde_json::{Map, Value, json};
use sha2::Digest;

use crate::settings::LocationMode;
use crate::store::{Store, VehicleState};

pub const EXTENSION: &str = "io.modelcontextprotocol/ui";
pub const MIME: &str = "text/html;profile=mcp-app";

/// The view: hand-written HTML, CSS, JS and SVG in one file, dispatching on the result's shape.
pub const HTML: &str = include_str!("../../views/smartcar.html");

/// The budget the view is held to (tests); hosts cut off near 1 MiB, peers ship about 18 KB.
pub const BUDGET_BYTES: usize = 32 * 1024;
/// Beyond this the build itself fails, whatever the tests say.
pub const MAX_BYTES: usize = 64 * 1024;
const _: () = assert!(
    HTML.len() <= MAX_BYTES,
    "views/smartcar.html is over 64 KiB"
);

/// The read tools that carry the view. Commands, deletions and admin tools get none: their text
/// and the confirmation flow are what a person should read.
pub const TOOLS_WITH_VIEW: &[&str] = &[
    "list_connections",
    "get_connection",
    "get_signals",
    "get_signal",
    "get_vehicle",
];

const URI_BASE: &str = "ui://smartcar/view.html";
/// Result `_meta` keys the view reads.
pub const META_PUSHED: &str = "smartcar-mcp/pushed";
pub const META_LOCATION: &str = "smartcar-mcp/location";

/// The view's URI, carrying the first 8 bytes of its SHA-256 so a host caching by URI never
/// shows an old build's view.
pub static URI: LazyLock<String> = LazyLock::new(|| {
    let digest = sha2::Sha256::digest(HTML.as_bytes());
    let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("{URI_BASE}?v={hex}")
});

/// The server's capability entry: the extension, with no settings.
pub fn server_extensions() -> ExtensionCapabilities {
    let mut e = ExtensionCapabilities::new();
    e.insert(EXTENSION.to_string(), Map::new());
    e
}

/// Whether the client declared the extension with the MIME type of this view. The capabilities
/// come from `initialize` or, for 2026-07-28, from the request's own `_meta`.
pub fn declared(caps: Option<&ClientCapabilities>) -> bool {
    caps.and_then(|c| c.extensions.as_ref())
        .and_then(|e| e.get(EXTENSION))
        .and_then(|s| s.get("mimeTypes"))
        .and_then(Value::as_array)
        .is_some_and(|types| types.iter().any(|t| t.as_str() == Some(MIME)))
}

pub fn has_view(tool: &str) -> bool {
    TOOLS_WITH_VIEW.contains(&tool)
}

/// The tools/list entry with the view linked; others unchanged. The flat `ui/resourceUri` is the
/// form hosts shipped before the nested one, and still read.
pub fn with_view(mut tool: Tool) -> Tool {
    if !has_view(&tool.name) {
        return tool;
    }
    let meta = tool.meta.get_or_insert_with(MetaObject::default);
    meta.insert("ui".into(), json!({ "resourceUri": URI.as_str() }));
    meta.insert("ui/resourceUri".into(), json!(URI.as_str()));
    tool
}

/// The resources/list entry. No `csp` and no `domain`: the view loads nothing from anywhere, so
/// the spec's default CSP is all it needs, and a wrong domain makes some hosts draw nothing.
pub fn resource() -> Resource {
    Resource::new(URI.as_str(), "vehicle-views")
        .with_title("Vehicle, fleet and charging views")
        .with_description("The MCP Apps view of list_connections, get_connection, get_signals, get_signal and get_vehicle results.")
        .with_mime_type(MIME)
        .with_meta(ui_meta())
}

fn ui_meta() -> MetaObject {
    let mut m = Map::new();
    m.insert("ui".into(), json!({ "prefersBorder": true }));
    MetaObject(m)
}

/// Whether a resources/read is for the view: this build's URI, the bare one, or an older build's
/// hash (a host holding an old URI gets the current view rather than an error).
pub fn is_view(uri: &str) -> bool {
    uri == URI_BASE
        || uri
            .strip_prefix(URI_BASE)
            .and_then(|q| q.strip_prefix("?v="))
            .is_some_and(|h| {
                !h.is_empty() && h.len() <= 64 && h.bytes().all(|b| b.is_ascii_hexdigit())
            })
}

pub fn read() -> ReadResourceResult {
    // Served under the URI of this build, whatever was asked, so the host caches what it got.
    let contents = ResourceContents::TextResourceContents {
        uri: URI.to_string(),
        mime_type: Some(MIME.into()),
        text: HTML.into(),
        meta: Some(ui_meta()),
    };
    ReadResourceResult::new(vec![contents])
        .with_ttl_ms(3_600_000)
        .with_cache_scope(rmcp::model::CacheScope::Public)
}

/// Codes from pushed state the views use; location is never among them.
const SUMMARY_CODES: &[&str] = &[
    "tractionbattery-stateofcharge",
    "tractionbattery-range",
    "internalcombustionengine-fuellevel",
    "internalcombustionengine-range",
    "closure-islocked",
    "charge-ischarging",
    "charge-ischargingcableconnected",
    "charge-detailedchargingstatus",
    "charge-activelimit",
    "charge-timetocomplete",
    "odometer-traveleddistance",
];

/// What pushed state says of one vehicle, in the form of a get_signals entry, when it was pushed
/// for `user`: the same owner rule as answering reads from it, with no age limit, because the view
/// shows each value's time.
fn summary(v: &VehicleState, user: &str) -> Option<Value> {
    if v.user_id.as_deref() != Some(user) {
        return None;
    }
    let time =
        |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let signals: Vec<Value> = SUMMARY_CODES
        .iter()
        .filter_map(|code| {
            let s = v.signals.get(*code)?;
            let body = s.raw.get("body")?;
            let mut e = json!({ "code": code, "value": body.get("value"),
                                "oem_updated_at": s.recorded_at().map(time) });
            if let Some(u) = body.get("unit") {
                e["unit"] = u.clone();
            }
            Some(e)
        })
        .collect();
    let last_seen = v.signals.values().filter_map(|s| s.recorded_at()).max();
    Some(json!({
        "signals": signals,
        "last_seen": last_seen.map(time),
        "received_at": time(v.received_at),
        "stale": v.stale,
    }))
}

/// The vehicles (and their users) a result of `tool` is about.
fn vehicles_of(
    tool: &str,
    args: Option<&Map<String, Value>>,
    structured: &Value,
) -> Vec<(String, String)> {
    let pair = |o: &Value, v: &str, u: &str| {
        Some((
            o.get(v)?.as_str()?.to_string(),
            o.get(u)?.as_str()?.to_string(),
        ))
    };
    match tool {
        "list_connections" => structured["connections"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| pair(c, "vehicle_id", "user_id"))
            .collect(),
        "get_connection" => pair(structured, "vehicle_id", "user_id")
            .into_iter()
            .collect(),
        _ => args
            .and_then(|a| pair(&Value::Object(a.clone()), "vehicle_id", "user_id"))
            .into_iter()
            .collect(),
    }
}

/// Adds the view's `_meta` entries to a result of a tool with a view: never its text or
/// `structuredContent`, which stay what every client gets.
pub async fn annotate(
    result: &mut CallToolResult,
    tool: &str,
    args: Option<&Map<String, Value>>,
    store: &Store,
    location: LocationMode,
) {
    if !has_view(tool) {
        return;
    }
    let Some(structured) = result.structured_content.as_ref() else {
        return;
    };
    let mut known = Map::new();
    for (vehicle, user) in vehicles_of(tool, args, structured) {
        if let Some(s) = store
            .pushed_state(&vehicle)
            .await
            .and_then(|v| summary(&v, &user))
        {
            known.insert(vehicle, s);
        }
    }
    let mut known = Value::Object(known);
    // Nothing of location is summarised, but the setting holds over everything a result carries.
    let exempt = crate::catalogue::tool(tool).is_some_and(|t| t.location_exempt);
    crate::tool::privacy::apply(location, exempt, &mut known);
    let meta = result.meta.get_or_insert_with(MetaObject::default);
    if known.as_object().is_some_and(|k| !k.is_empty()) {
        meta.insert(META_PUSHED.into(), known);
    }
    meta.insert(META_LOCATION.into(), json!(location.as_str()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_uri_carries_the_content_hash_and_older_hashes_still_read() {
        assert!(URI.starts_with("ui://smartcar/view.html?v="));
        assert_eq!(URI.len(), URI_BASE.len() + 3 + 16);
        assert!(is_view(&URI));
        assert!(is_view(URI_BASE));
        assert!(is_view("ui://smartcar/view.html?v=00ff"));
        assert!(!is_view("ui://smartcar/view.html?v=<script>"));
        assert!(!is_view("ui://smartcar/other.html"));
    }

    #[test]
    fn only_a_declaration_with_the_mime_type_counts() {
        let caps = |v: Value| serde_json::from_value::<ClientCapabilities>(v).unwrap();
        assert!(declared(Some(&caps(json!({ "extensions": {
            EXTENSION: { "mimeTypes": ["text/plain", MIME] } } })))));
        assert!(!declared(Some(&caps(
            json!({ "extensions": { EXTENSION: {} } })
        ))));
        assert!(!declared(Some(&caps(json!({ "extensions": {
            EXTENSION: { "mimeTypes": ["text/html"] } } })))));
        assert!(!declared(Some(&caps(json!({})))));
        assert!(!declared(None));
    }
}
