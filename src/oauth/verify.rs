//! Checking an inbound JWT access token (the only code naming jsonwebtoken): the issuer's keys
//! found through its metadata (RFC 8414, else OpenID discovery) and cached; algorithms pinned to
//! what each key declares and to asymmetric ones; `exp`/`nbf` with 60 s leeway, `iss` exact,
//! `aud` holding this resource, `sub` required; then scopes and Smartcar user ids read out.
//!
//! A token that checked out is remembered by its SHA-256 until it expires (at most five
//! minutes, a bounded number), so a session's later calls cost a hash and a lookup rather than a
//! signature check. An unknown `kid` refetches the keys at most once every 30 s; an issuer that
//! is down leaves the cached keys in use.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::tenants::Tenants;
use super::{Principal, Scopes};
use crate::settings::OAuthSettings;
use crate::sync::Locked;

/// Tokens longer than this are refused unread: no access token needs it, and parsing one is work
/// an attacker chooses.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;
/// Clock skew allowed on `exp` and `nbf`.
pub const LEEWAY_S: u64 = 60;
/// The fewest seconds between two fetches of the keys for an unknown `kid`.
pub const REFETCH_EVERY: Duration = Duration::from_secs(30);
/// How long a checked token is remembered at most (its `exp` cuts it shorter).
const REMEMBER_FOR: Duration = Duration::from_secs(300);
/// Most checked tokens remembered; beyond it the cache starts over.
const MAX_REMEMBERED: usize = 10_000;
/// Time allowed for the issuer's metadata or keys to answer.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// The only algorithms accepted: asymmetric, as the issue and RFC 9068 ask; never `none`
/// (jsonwebtoken has no such variant) and never HS*, whose "secret" would be the public key.
const ACCEPTED: [Algorithm; 4] = [
    Algorithm::RS256,
    Algorithm::PS256,
    Algorithm::ES256,
    Algorithm::EdDSA,
];

/// Why a token was refused, in words safe to send back and log (never the token's content).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Refusal(pub &'static str);

struct Key {
    kid: Option<String>,
    /// The algorithm the JWKS pins this key to, or the one its type allows when it names none.
    algs: Vec<Algorithm>,
    key: DecodingKey,
}

#[derive(Default)]
struct Keys {
    /// When keys were last asked for (successfully or not).
    fetched: Option<Instant>,
    /// The JWKS URL, once discovered.
    jwks_url: Option<String>,
}

struct Remembered {
    until: Instant,
    issuer_subject: (String, String),
    scopes: Scopes,
    users: Vec<String>,
}

/// Checks access tokens for one issuer and one resource.
pub struct Verifier {
    settings: OAuthSettings,
    http: reqwest::Client,
    keys: tokio::sync::Mutex<Keys>,
    /// A copy of the keys for the common case, read without waiting behind a fetch.
    ready: Mutex<std::sync::Arc<Vec<Key>>>,
    remembered: Mutex<HashMap<[u8; 32], Remembered>>,
    tenants: Option<Tenants>,
    validation: Validation,
}

impl Verifier {
    /// Checks the settings; keys are fetched when the first token needs them, so a server whose
    /// issuer is down at start still starts (and refuses tokens until it is up).
    pub fn new(settings: &OAuthSettings) -> anyhow::Result<Verifier> {
        for (flag, url) in [
            ("--oauth-issuer", Some(settings.issuer.as_str())),
            ("--oauth-resource", Some(settings.resource.as_str())),
            ("--oauth-jwks-url", settings.jwks_url.as_deref()),
        ] {
            let Some(url) = url else { continue };
            let parsed = reqwest::Url::parse(url).map_err(|_| {
                anyhow::anyhow!(
                    "{flag} must be an absolute http(s) URL such as https://mcp.example.com/mcp, not `{}`",
                    crate::text::clip(url)
                )
            })?;
            if !matches!(parsed.scheme(), "http" | "https") || parsed.fragment().is_some() {
                anyhow::bail!(
                    "{flag} must be an http(s) URL without a fragment, not `{}`",
                    crate::text::clip(url)
                );
            }
        }
        if settings.user_claim.is_empty() {
            anyhow::bail!("--oauth-user-claim must name a claim, for example smartcar_user_id");
        }
        let tenants = settings.tenants.as_deref().map(Tenants::open).transpose()?;
        let mut validation = Validation::new(Algorithm::RS256);
        validation.algorithms = ACCEPTED.to_vec();
        validation.leeway = LEEWAY_S;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.set_issuer(&[&settings.issuer]);
        validation.set_audience(&[&settings.resource]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let http = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Verifier {
            keys: tokio::sync::Mutex::new(Keys {
                jwks_url: settings.jwks_url.clone(),
                ..Keys::default()
            }),
            settings: settings.clone(),
            http,
            ready: Mutex::new(std::sync::Arc::new(Vec::new())),
            remembered: Mutex::new(HashMap::new()),
            tenants,
            validation,
        })
    }

    pub fn issuer(&self) -> &str {
        &self.settings.issuer
    }

    pub fn resource(&self) -> &str {
        &self.settings.resource
    }

    /// Reads the tenants table again (SIGHUP).
    pub fn reload_tenants(&self) {
        if let Some(t) = &self.tenants {
            t.reload();
        }
    }

    /// The caller this token proves, or why it proves nothing.
    pub async fn verify(&self, token: &str) -> Result<Principal, Refusal> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(Refusal("the access token is longer than 8 KiB"));
        }
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if let Some(p) = self.recall(&digest) {
            return Ok(p);
        }
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| Refusal("the access token is not a signed JWT this server accepts"))?;
        if !ACCEPTED.contains(&header.alg) {
            return Err(Refusal(
                "the access token's algorithm is not one of RS256, PS256, ES256, EdDSA",
            ));
        }
        // RFC 9068 access tokens say `at+jwt`; many issuers say `JWT` or nothing. Anything else
        // (an ID token's or a logout token's type) is a token for another purpose.
        if let Some(typ) = header.typ.as_deref()
            && !["at+jwt", "application/at+jwt", "jwt"].contains(&typ.to_ascii_lowercase().as_str())
        {
            return Err(Refusal("the token's `typ` is not an access token's"));
        }
        let kid = header.kid.as_deref();
        let claims = match self.check_with(&self.ready_keys(), kid, header.alg, token) {
            Some(r) => r?,
            None => {
                let keys = self.refreshed_keys().await?;
                self.check_with(&keys, kid, header.alg, token)
                    .ok_or(Refusal(
                        "the access token was signed with a key the issuer does not publish",
                    ))??
            }
        };
        self.principal(&digest, claims)
    }

    fn ready_keys(&self) -> std::sync::Arc<Vec<Key>> {
        self.ready.locked().clone()
    }

    /// `None` when no key fits (`kid` unknown); else the claims or the refusal.
    fn check_with(
        &self,
        keys: &[Key],
        kid: Option<&str>,
        alg: Algorithm,
        token: &str,
    ) -> Option<Result<Map<String, Value>, Refusal>> {
        // Without a `kid`, only a JWKS of one key for this algorithm is unambiguous.
        let candidates: Vec<&Key> = keys
            .iter()
            .filter(|k| match kid {
                Some(kid) => k.kid.as_deref() == Some(kid),
                None => true,
            })
            .collect();
        let key = match (kid, candidates.as_slice()) {
            (_, []) => return None,
            (Some(_), [k, ..]) => *k,
            (None, [k]) => *k,
            (None, _) => {
                return Some(Err(Refusal(
                    "the access token names no `kid` and the issuer publishes several keys",
                )));
            }
        };
        if !key.algs.contains(&alg) {
            return Some(Err(Refusal(
                "the access token's algorithm is not the one its key is published for",
            )));
        }
        let mut validation = self.validation.clone();
        validation.algorithms = vec![alg];
        Some(
            jsonwebtoken::decode::<Map<String, Value>>(token, &key.key, &validation)
                .map(|d| d.claims)
                .map_err(|e| Refusal(describe(e.kind()))),
        )
    }

    /// Fetches the keys again unless that was tried in the last 30 s; one fetch at a time.
    async fn refreshed_keys(&self) -> Result<std::sync::Arc<Vec<Key>>, Refusal> {
        let mut state = self.keys.lock().await;
        if state.fetched.is_some_and(|t| t.elapsed() < REFETCH_EVERY) {
            return Ok(self.ready_keys());
        }
        state.fetched = Some(Instant::now());
        match self.fetch(&mut state).await {
            Ok(keys) => {
                let keys = std::sync::Arc::new(keys);
                *self.ready.locked() = keys.clone();
                Ok(keys)
            }
            Err(e) => {
                tracing::warn!(
                    "cannot fetch the OAuth issuer's keys, cached keys stay in use: {e}"
                );
                Err(Refusal(
                    "the authorization server's keys cannot be fetched now; tokens signed with keys fetched before are still accepted",
                ))
            }
        }
    }

    async fn fetch(&self, state: &mut Keys) -> anyhow::Result<Vec<Key>> {
        let url = match &state.jwks_url {
            Some(u) => u.clone(),
            None => {
                let u = self.discover().await?;
                state.jwks_url = Some(u.clone());
                u
            }
        };
        let set: JwkSet = self.get_json(&url).await?;
        let keys: Vec<Key> = set.keys.iter().filter_map(key_of).collect();
        tracing::info!(keys = keys.len(), "fetched the OAuth issuer's keys");
        Ok(keys)
    }

    /// A JSON document of the issuer's, a non-2xx answer being an error.
    async fn get_json<T: serde::de::DeserializeOwned>(&self, url: &str) -> anyhow::Result<T> {
        Ok(self
            .http
            .get(url)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?)
    }

    /// The issuer's `jwks_uri`: RFC 8414 metadata first, then OpenID discovery; the document's
    /// `issuer` must be the configured one (RFC 8414 §3.3), or the keys could be anyone's.
    async fn discover(&self) -> anyhow::Result<String> {
        let issuer = self.settings.issuer.trim_end_matches('/');
        let parsed = reqwest::Url::parse(issuer)?;
        let origin = parsed.origin().ascii_serialization();
        let path = parsed.path().trim_end_matches('/');
        let candidates = [
            format!("{origin}/.well-known/oauth-authorization-server{path}"),
            format!("{issuer}/.well-known/openid-configuration"),
        ];
        let mut last = anyhow::anyhow!("no metadata");
        for url in candidates {
            match self.get_json::<Value>(&url).await {
                Ok(meta) => {
                    if meta["issuer"].as_str() != Some(self.settings.issuer.as_str()) {
                        anyhow::bail!("{url} names another issuer than --oauth-issuer");
                    }
                    return meta["jwks_uri"]
                        .as_str()
                        .map(str::to_string)
                        .ok_or_else(|| anyhow::anyhow!("{url} has no jwks_uri"));
                }
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    fn recall(&self, digest: &[u8; 32]) -> Option<Principal> {
        let remembered = self.remembered.locked();
        let r = remembered
            .get(digest)
            .filter(|r| r.until > Instant::now())?;
        let (issuer, subject) = r.issuer_subject.clone();
        let users = self.with_table(&issuer, &subject, r.users.clone());
        Some(Principal {
            issuer,
            subject,
            scopes: r.scopes,
            users,
        })
    }

    fn with_table(&self, issuer: &str, subject: &str, mut users: Vec<String>) -> Vec<String> {
        if let Some(t) = &self.tenants {
            users.extend(t.users(issuer, subject));
            users.sort();
            users.dedup();
        }
        users
    }

    fn principal(
        &self,
        digest: &[u8; 32],
        claims: Map<String, Value>,
    ) -> Result<Principal, Refusal> {
        let text = |k: &str| claims.get(k).and_then(Value::as_str);
        let subject = text("sub")
            .filter(|s| !s.is_empty())
            .ok_or(Refusal("the access token's `sub` is not a string"))?
            .to_string();
        let issuer = self.settings.issuer.clone();
        // `scope` (RFC 9068, space-separated) or `scp` (an array, as some issuers write it).
        let scopes = match (claims.get("scope"), claims.get("scp")) {
            (Some(Value::String(s)), _) => Scopes::parse(s.split(' ')),
            (_, Some(Value::Array(a))) => Scopes::parse(a.iter().filter_map(Value::as_str)),
            _ => Scopes::NONE,
        };
        let mut claimed: Vec<String> = match claims.get(&self.settings.user_claim) {
            Some(Value::String(s)) => vec![s.clone()],
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect(),
            _ => Vec::new(),
        };
        claimed.retain(|u| !u.trim().is_empty());
        claimed.sort();
        claimed.dedup();
        let exp = claims.get("exp").and_then(Value::as_u64).unwrap_or(0);
        let now = jsonwebtoken::get_current_timestamp();
        let left = Duration::from_secs(exp.saturating_sub(now)).min(REMEMBER_FOR);
        {
            let mut remembered = self.remembered.locked();
            if remembered.len() >= MAX_REMEMBERED {
                let now = Instant::now();
                remembered.retain(|_, r| r.until > now);
                if remembered.len() >= MAX_REMEMBERED {
                    remembered.clear();
                }
            }
            remembered.insert(
                *digest,
                Remembered {
                    until: Instant::now() + left,
                    issuer_subject: (issuer.clone(), subject.clone()),
                    scopes,
                    users: claimed.clone(),
                },
            );
        }
        let users = self.with_table(&issuer, &subject, claimed);
        Ok(Principal {
            issuer,
            subject,
            scopes,
            users,
        })
    }
}

/// A usable key of the JWKS, with the algorithms it may verify: the one it declares (when that is
/// one we accept), else those its type allows. Symmetric (`oct`) keys are never usable.
fn key_of(jwk: &Jwk) -> Option<Key> {
    if jwk
        .common
        .public_key_use
        .as_ref()
        .is_some_and(|u| *u != jsonwebtoken::jwk::PublicKeyUse::Signature)
    {
        return None;
    }
    let by_type: Vec<Algorithm> = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => vec![Algorithm::RS256, Algorithm::PS256],
        AlgorithmParameters::EllipticCurve(p)
            if p.curve == jsonwebtoken::jwk::EllipticCurve::P256 =>
        {
            vec![Algorithm::ES256]
        }
        AlgorithmParameters::OctetKeyPair(p)
            if p.curve == jsonwebtoken::jwk::EllipticCurve::Ed25519 =>
        {
            vec![Algorithm::EdDSA]
        }
        _ => return None,
    };
    let algs = match jwk.common.key_algorithm {
        Some(declared) => {
            let alg: Algorithm = declared.to_string().parse().ok()?;
            if !by_type.contains(&alg) {
                return None;
            }
            vec![alg]
        }
        None => by_type,
    };
    let key = DecodingKey::from_jwk(jwk).ok()?;
    Some(Key {
        kid: jwk.common.key_id.clone(),
        algs,
        key,
    })
}

fn describe(kind: &jsonwebtoken::errors::ErrorKind) -> &'static str {
    use jsonwebtoken::errors::ErrorKind as K;
    match kind {
        K::ExpiredSignature => "the access token has expired",
        K::ImmatureSignature => "the access token is not valid yet (`nbf`)",
        K::InvalidIssuer => "the access token was issued by another authorization server",
        K::InvalidAudience => "the access token is not meant for this resource (`aud`)",
        K::MissingRequiredClaim(_) => "the access token lacks one of `exp`, `iss`, `aud`, `sub`",
        K::InvalidSignature => "the access token's signature does not verify",
        K::InvalidAlgorithm => "the access token's algorithm is not accepted",
        _ => "the access token cannot be read",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn jwk(v: serde_json::Value) -> Jwk {
        serde_json::from_value(v).unwrap()
    }

    const X: &str = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";

    #[test]
    fn only_signing_keys_of_asymmetric_types_are_used_each_for_what_it_declares() {
        let ed = key_of(&jwk(
            json!({ "kty": "OKP", "crv": "Ed25519", "x": X, "kid": "a" }),
        ))
        .expect("an Ed25519 key");
        assert_eq!(ed.algs, [Algorithm::EdDSA]);
        assert_eq!(ed.kid.as_deref(), Some("a"));
        // A key declaring an algorithm its type cannot do is dropped, not trusted for either.
        let lying = json!({ "kty": "OKP", "crv": "Ed25519", "x": X, "alg": "ES256" });
        assert!(key_of(&jwk(lying)).is_none());
        let encryption = json!({ "kty": "OKP", "crv": "Ed25519", "x": X, "use": "enc" });
        assert!(key_of(&jwk(encryption)).is_none());
        // A symmetric key in a JWKS would make its "secret" public: never used.
        let oct = json!({ "kty": "oct", "k": "c2VjcmV0", "alg": "HS256" });
        assert!(key_of(&jwk(oct)).is_none());
    }

    #[test]
    fn settings_are_checked_before_serving() {
        let ok = OAuthSettings {
            issuer: "https://as.example.test".into(),
            resource: "https://mcp.example.test/mcp".into(),
            jwks_url: None,
            user_claim: "smartcar_user_id".into(),
            tenants: None,
        };
        assert!(Verifier::new(&ok).is_ok());
        let bad = |edit: &dyn Fn(&mut OAuthSettings)| {
            let mut s = ok.clone();
            edit(&mut s);
            Verifier::new(&s)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
        };
        assert!(bad(&|s| s.issuer = "as.example.test".into()).contains("--oauth-issuer"));
        assert!(bad(&|s| s.resource = "ftp://x/mcp".into()).contains("--oauth-resource"));
        assert!(bad(&|s| s.resource = "https://x/mcp#f".into()).contains("fragment"));
        assert!(bad(&|s| s.user_claim = String::new()).contains("--oauth-user-claim"));
    }
}
