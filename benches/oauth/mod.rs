//! The http bench's OAuth issuer: one Ed25519 key made in the run, its JWKS served on 127.0.0.1,
//! and one access token for the bench's canonical resource with `app:admin` (so tenancy makes
//! no ownership call and the figure is the token check alone).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use ed25519_dalek::{Signer, SigningKey};
use serde_json::json;

/// The canonical URL the server is told it is (it need not be where it listens).
pub const RESOURCE: &str = "https://bench.example/mcp";

pub struct Issuer {
    pub url: String,
    pub token: String,
}

impl Issuer {
    /// Serves the JWKS on the current runtime until the process ends.
    pub async fn start() -> Issuer {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).expect("OS randomness");
        let key = SigningKey::from_bytes(&seed);
        let jwks = json!({ "keys": [{ "kty": "OKP", "crv": "Ed25519", "use": "sig", "alg": "EdDSA",
            "kid": "bench", "x": B64.encode(key.verifying_key().to_bytes()) }] });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("127.0.0.1 can be bound");
        let url = format!("http://{}", listener.local_addr().unwrap());
        let app = axum::Router::new().route(
            "/jwks",
            axum::routing::get(move || {
                let jwks = jwks.clone();
                async move { axum::Json(jwks) }
            }),
        );
        tokio::spawn(async move { axum::serve(listener, app).await.ok() });
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let header = json!({ "alg": "EdDSA", "typ": "at+jwt", "kid": "bench" });
        let claims = json!({ "iss": url, "sub": "bench", "aud": RESOURCE,
            "scope": "vehicle:read app:admin", "iat": now, "exp": now + 3600 });
        let input = format!(
            "{}.{}",
            B64.encode(header.to_string()),
            B64.encode(claims.to_string())
        );
        let sig = key.sign(input.as_bytes());
        let token = format!("{input}.{}", B64.encode(sig.to_bytes()));
        Issuer { url, token }
    }

    /// The flags that make `serve --http` a resource server trusting this issuer.
    pub fn flags(&self) -> Vec<String> {
        vec![
            "--oauth-issuer".into(),
            self.url.clone(),
            "--oauth-resource".into(),
            RESOURCE.into(),
            "--oauth-jwks-url".into(),
            format!("{}/jwks", self.url),
        ]
    }
}
