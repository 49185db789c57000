//! An OAuth authorization server for tests, in this process on 127.0.0.1: Ed25519 keys made
//! here, OpenID discovery and a JWKS that can rotate or go down, a count of key fetches, and
//! JWT access tokens minted (or forged) by hand, so every hostile shape can be made.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use axum::Router;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use ed25519_dalek::{Signer, SigningKey};
use serde_json::{Value, json};

/// A key of the issuer's: its `kid` and signing key.
pub struct Key {
    pub kid: &'static str,
    signing: SigningKey,
}

impl Key {
    fn new(kid: &'static str) -> Key {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).expect("OS randomness");
        Key {
            kid,
            signing: SigningKey::from_bytes(&seed),
        }
    }

    /// The raw public key: what a confused verifier would take as an HMAC secret.
    pub fn public_bytes(&self) -> Vec<u8> {
        self.signing.verifying_key().to_bytes().to_vec()
    }

    fn jwk(&self) -> Value {
        json!({
            "kty": "OKP", "crv": "Ed25519", "use": "sig", "alg": "EdDSA",
            "kid": self.kid, "x": B64.encode(self.public_bytes()),
        })
    }
}

struct State {
    issuer: String,
    /// The first `published` keys are in the JWKS.
    keys: Vec<Key>,
    published: AtomicUsize,
    down: AtomicBool,
    jwks_fetches: AtomicUsize,
}

pub struct Issuer {
    state: Arc<State>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

impl Issuer {
    /// Three keys: `k1` published; `k2` published after `rotate()`; `k3` never published.
    pub async fn start() -> Issuer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(State {
            issuer: format!("http://{addr}"),
            keys: vec![Key::new("k1"), Key::new("k2"), Key::new("k3")],
            published: AtomicUsize::new(1),
            down: AtomicBool::new(false),
            jwks_fetches: AtomicUsize::new(0),
        });
        let s1 = state.clone();
        let s2 = state.clone();
        let app = Router::new()
            .route(
                "/.well-known/openid-configuration",
                get(move || {
                    let s = s1.clone();
                    async move {
                        if s.down.load(Ordering::SeqCst) {
                            return StatusCode::SERVICE_UNAVAILABLE.into_response();
                        }
                        axum::Json(json!({
                            "issuer": s.issuer,
                            "jwks_uri": format!("{}/jwks", s.issuer),
                            "response_types_supported": ["code"],
                        }))
                        .into_response()
                    }
                }),
            )
            .route(
                "/jwks",
                get(move || {
                    let s = s2.clone();
                    async move {
                        s.jwks_fetches.fetch_add(1, Ordering::SeqCst);
                        if s.down.load(Ordering::SeqCst) {
                            return StatusCode::SERVICE_UNAVAILABLE.into_response();
                        }
                        let n = s.published.load(Ordering::SeqCst);
                        let keys: Vec<Value> = s.keys[..n].iter().map(Key::jwk).collect();
                        axum::Json(json!({ "keys": keys })).into_response()
                    }
                }),
            );
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await
                .ok();
        });
        Issuer { state, _stop: stop }
    }

    pub fn url(&self) -> String {
        self.state.issuer.clone()
    }

    pub fn jwks_fetches(&self) -> usize {
        self.state.jwks_fetches.load(Ordering::SeqCst)
    }

    /// Publishes `k2` beside `k1`.
    pub fn rotate(&self) {
        self.state.published.store(2, Ordering::SeqCst);
    }

    pub fn set_down(&self, down: bool) {
        self.state.down.store(down, Ordering::SeqCst);
    }

    pub fn key(&self, kid: &str) -> &Key {
        self.state.keys.iter().find(|k| k.kid == kid).unwrap()
    }

    /// Claims of a good token for `resource`: this issuer, `sub`, an hour left, these scopes.
    pub fn claims(&self, resource: &str, sub: &str, scope: &str) -> Value {
        let now = now();
        json!({
            "iss": self.state.issuer, "sub": sub, "aud": resource, "scope": scope,
            "iat": now, "exp": now + 3600, "client_id": "test-client",
        })
    }

    /// A token signed with key `kid` (EdDSA) over these claims.
    pub fn sign(&self, kid: &str, claims: &Value) -> String {
        let header = json!({ "alg": "EdDSA", "typ": "at+jwt", "kid": kid });
        let input = format!(
            "{}.{}",
            B64.encode(header.to_string()),
            B64.encode(claims.to_string())
        );
        let sig = self.key(kid).signing.sign(input.as_bytes());
        format!("{input}.{}", B64.encode(sig.to_bytes()))
    }

    /// A token with this header, signed with HMAC-SHA256 under `secret` (forgeries).
    pub fn sign_hs256(header: &Value, claims: &Value, secret: &[u8]) -> String {
        use hmac::{KeyInit, Mac};
        let input = format!(
            "{}.{}",
            B64.encode(header.to_string()),
            B64.encode(claims.to_string())
        );
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret).unwrap();
        mac.update(input.as_bytes());
        format!("{input}.{}", B64.encode(mac.finalize().into_bytes()))
    }

    /// An unsigned token (`alg: none`).
    pub fn unsigned(claims: &Value) -> String {
        let header = json!({ "alg": "none", "typ": "JWT", "kid": "k1" });
        format!(
            "{}.{}.",
            B64.encode(header.to_string()),
            B64.encode(claims.to_string())
        )
    }
}
