//! Canonical arguments -> the exact Smartcar HTTP request: percent-encoded path segments, query,
//! headers and a JSON body built from dotted paths. Pure: no I/O, no settings.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::{Map, Value, json};

use crate::catalogue::{Api, Location, Method, Segment, ToolSpec};

/// RFC 3986 unreserved characters stay as they are; everything else in a path segment is encoded,
/// so `/`, `?`, `#` and `%` in an id can never reach another endpoint.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Query values additionally keep nothing reserved; keys keep `[`, `]` and `.` as Smartcar writes
/// them (`filter[vehicle.mode]`).
const QUERY_KEY: &AsciiSet = &SEGMENT.remove(b'[').remove(b']');

/// The exact HTTP request a tool call becomes (without the Authorization header).
#[derive(Debug, Clone, PartialEq)]
pub struct PreparedRequest {
    pub method: Method,
    /// Full URL: base URL (keeping its path, e.g. `/v3`) + encoded path + encoded query.
    pub url: String,
    /// The encoded path below the base URL.
    pub path: String,
    /// Query pairs, not encoded.
    pub query: Vec<(String, String)>,
    /// Headers other than Authorization and Content-Type.
    pub headers: Vec<(String, String)>,
    pub body: Option<Value>,
}

impl PreparedRequest {
    /// The request as JSON, for dry runs and logs; holds no credential.
    pub fn to_json(&self) -> Value {
        let query: Map<String, Value> = self
            .query
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        let headers: Map<String, Value> = self
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        json!({
            "method": self.method.as_str(),
            "url": self.url,
            "path": self.path,
            "query": query,
            "headers": headers,
            "body": self.body,
        })
    }
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn encode_segment(raw: &str) -> String {
    let enc = utf8_percent_encode(raw, SEGMENT).to_string();
    // `.` and `..` are refused by the id schema; encoding them too keeps the executor safe alone.
    match enc.as_str() {
        "." => "%2E".into(),
        ".." => "%2E%2E".into(),
        _ => enc,
    }
}

fn insert_dotted(body: &mut Map<String, Value>, path: &str, value: Value) {
    let mut parts = path.split('.').peekable();
    let mut cur = body;
    while let Some(part) = parts.next() {
        if parts.peek().is_none() {
            cur.insert(part.to_string(), value);
            return;
        }
        let next = cur
            .entry(part.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        if !next.is_object() {
            *next = Value::Object(Map::new());
        }
        cur = next.as_object_mut().expect("just made an object");
    }
}

/// Builds the request for validated, canonical arguments; a Compatibility API tool goes to
/// Smartcar's public host (`build_request_at` takes any base).
pub fn build_request(
    spec: &ToolSpec,
    args: &Map<String, Value>,
    api_url: &str,
    management_api_url: &str,
) -> PreparedRequest {
    let base = match spec.api {
        Api::Vehicle => api_url,
        Api::Management => management_api_url,
        Api::Compatibility => crate::settings::DEFAULT_COMPATIBILITY_API_URL,
    };
    build_request_at(spec, args, base)
}

/// Builds the request below this base URL (the one for `spec.api`).
pub fn build_request_at(spec: &ToolSpec, args: &Map<String, Value>, base: &str) -> PreparedRequest {
    let mut path = String::new();
    for seg in spec.segments {
        path.push('/');
        match seg {
            Segment::Literal(l) => path.push_str(l),
            Segment::Param(i) => {
                let p = &spec.params[*i];
                path.push_str(&encode_segment(
                    &args.get(p.name).map(scalar).unwrap_or_default(),
                ));
            }
        }
    }
    let mut query = Vec::new();
    let mut headers = Vec::new();
    let mut body: Option<Map<String, Value>> = None;
    for p in spec.params {
        let Some(v) = args.get(p.name).filter(|v| !v.is_null()) else {
            continue;
        };
        match p.location {
            Location::Path | Location::Local => {}
            Location::Query => query.push((p.wire.to_string(), scalar(v))),
            Location::Header => headers.push((p.wire.to_string(), scalar(v))),
            Location::Body => insert_dotted(body.get_or_insert_with(Map::new), p.wire, v.clone()),
        }
    }
    let mut url = format!("{}{}", base.trim_end_matches('/'), path);
    if !query.is_empty() {
        url.push('?');
        let q: Vec<String> = query
            .iter()
            .map(|(k, v)| {
                format!(
                    "{}={}",
                    utf8_percent_encode(k, QUERY_KEY),
                    utf8_percent_encode(v, SEGMENT)
                )
            })
            .collect();
        url.push_str(&q.join("&"));
    }
    PreparedRequest {
        method: spec.method,
        url,
        path,
        query,
        headers,
        body: body.map(Value::Object),
    }
}
