//! The token endpoint (`POST /oauth2/token`): client credentials by form or Basic auth, with
//! OAuth-shaped errors, as Smartcar's IAM answers them.

use axum::http::{HeaderValue, header};
use axum::response::Response;
use std::collections::HashMap;

use serde_json::{Value, json};

use super::{RecordedRequest, parse_pairs};
use crate::simulator::Inner;
use crate::simulator::reply::{json_response, oauth_error};

pub(super) fn token(inner: &Inner, req: &RecordedRequest) -> Response {
    if req.method != "POST" {
        return oauth_error(
            405,
            "invalid_request",
            "The token endpoint accepts POST only.",
        );
    }
    let content_type = req
        .header("content-type")
        .unwrap_or("")
        .to_ascii_lowercase();
    let looks_json = content_type.contains("json")
        || (!content_type.contains("x-www-form-urlencoded")
            && req.body.trim_start().starts_with('{'));
    let mut fields: HashMap<String, String> = HashMap::new();
    if looks_json {
        match serde_json::from_str::<Value>(&req.body) {
            Ok(Value::Object(map)) => {
                for (k, v) in map {
                    if let Value::String(s) = v {
                        fields.insert(k, s);
                    }
                }
            }
            _ => {
                return oauth_error(
                    400,
                    "invalid_request",
                    "The request body is not a JSON object.",
                );
            }
        }
    } else {
        for (k, v) in parse_pairs(&req.body) {
            fields.entry(k).or_insert(v);
        }
    }
    // HTTP Basic is only the legacy host's style; accepting it as a fallback costs nothing.
    if let Some((id, secret)) = req.header("authorization").and_then(basic_credentials) {
        fields.entry("client_id".into()).or_insert(id);
        fields.entry("client_secret".into()).or_insert(secret);
    }
    let present = |k: &str| fields.get(k).map(|v| !v.trim().is_empty()).unwrap_or(false);
    match fields.get("grant_type").map(|g| g.trim()) {
        None | Some("") => {
            return oauth_error(
                400,
                "invalid_request",
                "The grant_type parameter is missing.",
            );
        }
        Some("client_credentials") => {}
        Some(other) => {
            return oauth_error(
                400,
                "unsupported_grant_type",
                &format!("The grant type {other:?} is not supported; use client_credentials."),
            );
        }
    }
    if !present("client_id") || !present("client_secret") {
        return oauth_error(
            401,
            "invalid_client",
            "Client authentication failed: client_id and client_secret are required.",
        );
    }
    let mut st = inner.lock();
    if let Some(want) = &st.client_secret
        && fields.get("client_secret") != Some(want)
    {
        return oauth_error(
            401,
            "invalid_client",
            "Client authentication failed: the client secret is wrong.",
        );
    }
    let (token, ttl) = st.issue_token();
    drop(st);
    let mut resp = json_response(
        200,
        &json!({"access_token": token, "token_type": "Bearer", "expires_in": ttl}),
    );
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

pub(super) fn basic_credentials(authorization: &str) -> Option<(String, String)> {
    let (scheme, encoded) = authorization.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(base64_decode(encoded.trim())?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    Some((id.to_string(), secret.to_string()))
}

pub(super) fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for c in s.bytes().filter(|c| *c != b'=') {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}
