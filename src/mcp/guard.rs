//! HTTP serving as an OAuth 2.1 resource server (`--oauth-issuer`): the Protected Resource
//! Metadata (RFC 9728), the bearer check in front of `/mcp` with its `WWW-Authenticate`
//! challenges (401 `invalid_token`, 403 `insufficient_scope` naming every scope the call needs),
//! and handshake sessions bound to the caller who opened them.
//!
//! The verified `Principal` rides in the request's extensions; rmcp hands the request's parts to
//! the handler, which gives it to the one call pipeline (`tool::tenancy` checks the ids). The
//! inbound token goes no further than `oauth::verify`: Smartcar is called with the
//! application's own token.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::oauth::{Principal, Scope, Scopes, Verifier};
use crate::settings::OAuthSettings;
use crate::store::Store;
use crate::sync::Locked;
use crate::tool::tenancy;

/// Where the metadata is served: path-aware first (clients try it first), then the root form.
pub const METADATA_PATHS: [&str; 2] = [
    "/.well-known/oauth-protected-resource/mcp",
    "/.well-known/oauth-protected-resource",
];

/// The scopes a client asks for when it has been told nothing else: the least that is useful.
const DEFAULT_SCOPE: Scope = Scope::VehicleRead;

/// The resource server: the verifier, the metadata, and which caller opened each session.
pub struct Guard {
    verifier: Verifier,
    metadata_url: String,
    metadata: serde_json::Value,
    /// Where bindings are shared with other replicas (a no-op unless the store is shared).
    store: Arc<Store>,
    sessions: Mutex<Bindings>,
    max_bindings: usize,
    /// The largest POST body read (the HTTP server's own bound, `mcp::http`).
    max_body: usize,
}

/// Session ids to the caller (issuer + subject) that opened them, oldest first for eviction.
#[derive(Default)]
struct Bindings {
    by_id: HashMap<String, String>,
    order: VecDeque<String>,
}

impl Guard {
    /// Checks the settings; `static_token` set too is an error: one gate or the other.
    pub fn new(
        store: Arc<Store>,
        settings: &OAuthSettings,
        static_token: bool,
        max_sessions: usize,
        max_body: usize,
    ) -> anyhow::Result<Guard> {
        if static_token {
            anyhow::bail!(
                "--oauth-issuer and SMARTCAR_MCP_HTTP_TOKEN are exclusive: a static bearer token would let its holder past every driver's tenancy; unset one"
            );
        }
        if settings.resource.is_empty() {
            anyhow::bail!(
                "--oauth-issuer needs --oauth-resource: this endpoint's canonical URL, for example https://mcp.example.com/mcp, which every token's `aud` must hold"
            );
        }
        let verifier = Verifier::new(settings)?;
        let resource = reqwest::Url::parse(&settings.resource)?;
        let origin = resource.origin().ascii_serialization();
        let path = resource.path().trim_end_matches('/');
        let metadata_url = format!("{origin}/.well-known/oauth-protected-resource{path}");
        // `app:admin` is left out on purpose: a client that asks for everything listed must not
        // ask for the operator's scope (the spec's advice on `scopes_supported`).
        let advertised = Scopes::of(&[
            Scope::VehicleRead,
            Scope::VehicleCommand,
            Scope::VehicleUnlock,
            Scope::AccountDelete,
        ]);
        let metadata = serde_json::json!({
            "resource": settings.resource,
            "authorization_servers": [settings.issuer],
            "scopes_supported": advertised.names().split(' ').collect::<Vec<_>>(),
            "bearer_methods_supported": ["header"],
            "resource_name": "smartcar-mcp",
        });
        Ok(Guard {
            verifier,
            metadata_url,
            metadata,
            store,
            sessions: Mutex::new(Bindings::default()),
            max_bindings: max_sessions.saturating_mul(2).max(1024),
            max_body,
        })
    }

    pub fn verifier(&self) -> &Verifier {
        &self.verifier
    }

    /// The Protected Resource Metadata document.
    pub fn metadata(&self) -> serde_json::Value {
        self.metadata.clone()
    }

    /// Binds a new session to its caller, here and, when the store is shared, for every replica
    /// that may restore the session.
    async fn bind(&self, session: &str, who: String) {
        if let Err(e) = self.store.session_save(&binding_key(session), &who).await {
            tracing::warn!("session binding not shared with other replicas: {e}");
        }
        let mut b = self.sessions.locked();
        while b.by_id.len() >= self.max_bindings {
            // The oldest binding goes; its session, if still open, is then refused (fail closed).
            let Some(old) = b.order.pop_front() else {
                break;
            };
            b.by_id.remove(&old);
        }
        b.order.push_back(session.to_string());
        b.by_id.insert(session.to_string(), who);
    }

    /// The caller a session was opened by: known here, or (for a session another replica
    /// opened) from the shared store.
    async fn bound_to(&self, session: &str) -> Option<String> {
        if let Some(who) = self.sessions.locked().by_id.get(session).cloned() {
            return Some(who);
        }
        self.store
            .session_load(&binding_key(session))
            .await
            .ok()
            .flatten()
    }

    /// `WWW-Authenticate` for a refusal; values are quoted-string escaped (RFC 9110 §5.6.4).
    fn challenge(&self, error: Option<(&str, &str)>, scope: Scopes) -> HeaderValue {
        let q = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
        let mut v = String::from("Bearer ");
        if let Some((code, description)) = error {
            v.push_str(&format!(
                "error=\"{}\", error_description=\"{}\", ",
                q(code),
                q(description)
            ));
        }
        v.push_str(&format!("resource_metadata=\"{}\"", q(&self.metadata_url)));
        if !scope.is_empty() {
            v.push_str(&format!(", scope=\"{}\"", q(&scope.names())));
        }
        HeaderValue::from_str(&v).unwrap_or_else(|_| HeaderValue::from_static("Bearer"))
    }

    fn refuse(&self, status: StatusCode, error: Option<(&str, &str)>, scope: Scopes) -> Response {
        let body = serde_json::json!({
            "error": error.map_or("unauthorized", |e| e.0),
            "error_description": error.map_or(
                "this MCP server requires an OAuth access token: `Authorization: Bearer <token>`",
                |e| e.1
            ),
        });
        let mut r = (status, axum::Json(body)).into_response();
        r.headers_mut()
            .insert(header::WWW_AUTHENTICATE, self.challenge(error, scope));
        r
    }
}

/// Wrong tokens, logged as one line per 10 s with their count.
static REFUSED: crate::logging::Repeated = crate::logging::Repeated::new();

/// What is read of a POST body to know the scopes it needs.
#[derive(Deserialize)]
struct Peek<'a> {
    #[serde(borrow)]
    method: Option<std::borrow::Cow<'a, str>>,
    params: Option<PeekParams<'a>>,
}

#[derive(Deserialize)]
struct PeekParams<'a> {
    #[serde(borrow)]
    name: Option<std::borrow::Cow<'a, str>>,
}

/// The bearer check in front of `/mcp`.
pub async fn require_token(State(guard): State<Arc<Guard>>, req: Request, next: Next) -> Response {
    let presented = bearer(&req).filter(|t| !t.is_empty());
    let Some(token) = presented else {
        return guard.refuse(StatusCode::UNAUTHORIZED, None, Scopes::of(&[DEFAULT_SCOPE]));
    };
    let principal = match guard.verifier.verify(token).await {
        Ok(p) => Arc::new(p),
        Err(why) => {
            if let Some(n) = REFUSED.hit() {
                tracing::warn!(
                    count = n,
                    "refused {n} MCP request(s) with an unusable access token since the last such line; latest: {why}"
                );
            }
            return guard.refuse(
                StatusCode::UNAUTHORIZED,
                Some(("invalid_token", why.0)),
                Scopes::NONE,
            );
        }
    };
    let who = principal.key();
    let session = req
        .headers()
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    if let Some(id) = &session
        && guard.bound_to(id).await.as_deref() != Some(who.as_str())
    {
        // The same answer as for a session that does not exist: a session id is not a credential.
        return (
            StatusCode::NOT_FOUND,
            axum::Json(serde_json::json!({
                "error": "session not found",
                "error_description": "no session with this id was opened by this caller; start a new one with initialize",
            })),
        )
            .into_response();
    }
    let (mut parts, body) = req.into_parts();
    let body = if parts.method == Method::POST {
        let bytes = match axum::body::to_bytes(body, guard.max_body).await {
            Ok(b) => b,
            Err(_) => {
                return (
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!(
                        "Payload Too Large: request body exceeds {} bytes",
                        guard.max_body
                    ),
                )
                    .into_response();
            }
        };
        if let Some(needs) = scopes_needed(&bytes)
            && !principal.scopes.contains(needs)
        {
            return guard.refuse(
                StatusCode::FORBIDDEN,
                Some((
                    "insufficient_scope",
                    "the access token lacks a scope this call needs",
                )),
                needs,
            );
        }
        Body::from(bytes)
    } else {
        body
    };
    parts.extensions.insert(principal);
    let opened = session.is_none() && parts.method == Method::POST;
    let response = next.run(Request::from_parts(parts, body)).await;
    if opened
        && let Some(id) = response
            .headers()
            .get("mcp-session-id")
            .and_then(|v| v.to_str().ok())
    {
        guard.bind(id, who).await;
    }
    response
}

/// The token of an `Authorization: Bearer` header (the scheme in any case), if any: for the
/// resource server here and the static token's check in `mcp::http`.
pub(super) fn bearer(req: &Request) -> Option<&str> {
    req.headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, rest) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
        })
}

/// The shared store's key for a session's caller, beside the session's own row.
fn binding_key(session: &str) -> String {
    format!("{session}\ncaller")
}

/// The scopes a `tools/call` body needs (a tool this server knows); `None` for anything else,
/// which the handler answers (and filters) itself.
fn scopes_needed(body: &[u8]) -> Option<Scopes> {
    let peek: Peek = serde_json::from_slice(body).ok()?;
    if peek.method.as_deref()? != "tools/call" {
        return None;
    }
    let name = peek.params?.name?;
    let spec = crate::catalogue::tool(&name)?;
    Some(tenancy::required(spec))
}

/// Serves the metadata document (public: a client reads it before it has a token).
pub async fn metadata(State(guard): State<Arc<Guard>>) -> Response {
    let mut r = axum::Json(guard.metadata()).into_response();
    r.headers_mut().insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    r
}

/// What the server is guarding, for the log line.
pub fn describe(guard: &Guard) -> String {
    format!(
        "OAuth resource server for {} (issuer {}), metadata at {}",
        guard.verifier.resource(),
        guard.verifier.issuer(),
        guard.metadata_url
    )
}

/// The caller a request carries, once `require_token` let it through.
pub fn principal_of(parts: &axum::http::request::Parts) -> Option<Arc<Principal>> {
    parts.extensions.get::<Arc<Principal>>().cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_tool_calls_of_known_tools_need_scopes() {
        let call = |name: &str| {
            format!(
                r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"{name}"}}}}"#
            )
        };
        assert_eq!(
            scopes_needed(call("unlock_vehicle").as_bytes()),
            Some(Scopes::of(&[Scope::VehicleUnlock]))
        );
        assert_eq!(scopes_needed(call("no_such_tool").as_bytes()), None);
        assert_eq!(
            scopes_needed(br#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#),
            None
        );
        assert_eq!(scopes_needed(b"[1,2]"), None);
        // An escaped name is still the tool's name.
        assert_eq!(
            scopes_needed(call("unlock\\u005fvehicle").as_bytes()),
            Some(Scopes::of(&[Scope::VehicleUnlock]))
        );
    }
}
