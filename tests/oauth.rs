//! The OAuth resource server against an issuer made in the test: every hostile token and every
//! cross-driver attempt, each with its HTTP status, its `WWW-Authenticate` and the simulator's
//! count of Smartcar requests (zero where none is due).

use std::sync::Arc;

use serde_json::{Value, json};
use smartcar_mcp::mcp::Shared;
use smartcar_mcp::settings::OAuthSettings;
use smartcar_mcp::simulator::{ALICE, BOB, EV, ICE, PHEV, Simulator};

use crate::common::issuer::{Issuer, now};
use crate::common::{self, Served};

pub const RESOURCE: &str = "https://mcp.example.test/mcp";
const METADATA: &str = "https://mcp.example.test/.well-known/oauth-protected-resource/mcp";
pub const DRIVER_SCOPES: &str = "vehicle:read vehicle:command vehicle:unlock account:delete";

pub struct Rig {
    pub sim: Simulator,
    pub issuer: Issuer,
    pub shared: Arc<Shared>,
    pub served: Served,
    pub http: reqwest::Client,
}

/// What an answer to one POST came to.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub challenge: Option<String>,
    pub session: Option<String>,
    pub body: Value,
}

impl Answer {
    pub fn tool_error(&self) -> Option<&str> {
        self.body["result"]["structuredContent"]["error"]["type"].as_str()
    }
}

pub async fn rig_with(edit: impl FnOnce(&mut smartcar_mcp::settings::Settings)) -> Rig {
    let sim = common::simulator().await;
    let issuer = Issuer::start().await;
    let mut settings = common::settings(&sim);
    settings.serving.oauth = Some(OAuthSettings {
        issuer: issuer.url(),
        resource: RESOURCE.into(),
        jwks_url: None,
        user_claim: "smartcar_user_id".into(),
        tenants: None,
    });
    edit(&mut settings);
    let shared = common::shared(settings);
    let served = common::serve_http(shared.clone()).await;
    Rig {
        sim,
        issuer,
        shared,
        served,
        http: reqwest::Client::new(),
    }
}

pub async fn rig() -> Rig {
    rig_with(|_| {}).await
}

impl Rig {
    /// A good token for `sub` acting for `users` with `scope`.
    pub fn token(&self, sub: &str, users: &[&str], scope: &str) -> String {
        let mut c = self.issuer.claims(RESOURCE, sub, scope);
        c["smartcar_user_id"] = json!(users);
        self.issuer.sign("k1", &c)
    }

    pub fn driver_a(&self) -> String {
        self.token("driver-a", &[ALICE], DRIVER_SCOPES)
    }

    pub fn driver_b(&self) -> String {
        self.token("driver-b", &[BOB], DRIVER_SCOPES)
    }

    /// One POST to /mcp: stateless 2026-07-28 unless a session is given.
    pub async fn post(&self, token: Option<&str>, session: Option<&str>, msg: &Value) -> Answer {
        self.post_to(&self.served.mcp(), token, session, msg).await
    }

    /// `post` to another server's MCP endpoint (another replica).
    pub async fn post_to(
        &self,
        mcp: &str,
        token: Option<&str>,
        session: Option<&str>,
        msg: &Value,
    ) -> Answer {
        let mut msg = msg.clone();
        let mut rq = self
            .http
            .post(mcp)
            .header("accept", "application/json, text/event-stream")
            .header("content-type", "application/json");
        match session {
            Some(s) => {
                rq = rq
                    .header("mcp-session-id", s)
                    .header("mcp-protocol-version", "2025-11-25");
            }
            None if msg["method"] != "initialize" && msg.get("id").is_some() => {
                let method = msg["method"].as_str().unwrap_or("").to_string();
                rq = rq
                    .header("mcp-protocol-version", "2026-07-28")
                    .header("mcp-method", &method);
                if let Some(n) = msg["params"]["name"]
                    .as_str()
                    .or(msg["params"]["uri"].as_str())
                {
                    rq = rq.header("mcp-name", n);
                }
                let params = msg["params"].as_object_mut().expect("params");
                let meta = params.entry("_meta").or_insert_with(|| json!({}));
                meta["io.modelcontextprotocol/protocolVersion"] = json!("2026-07-28");
                meta["io.modelcontextprotocol/clientCapabilities"] = json!({ "elicitation": {} });
                meta["io.modelcontextprotocol/clientInfo"] =
                    json!({ "name": "oauth-test", "version": "1" });
            }
            None => {}
        }
        if let Some(t) = token {
            rq = rq.header("authorization", format!("Bearer {t}"));
        }
        let r = rq.body(msg.to_string()).send().await.unwrap();
        let status = r.status().as_u16();
        let header = |n: &str| {
            r.headers()
                .get(n)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let challenge = header("www-authenticate");
        let session = header("mcp-session-id");
        let text = r.text().await.unwrap_or_default();
        let body = common::messages(&text)
            .into_iter()
            .find(|m| m.get("id").is_some())
            .or_else(|| serde_json::from_str(&text).ok())
            .unwrap_or(Value::Null);
        Answer {
            status,
            challenge,
            session,
            body,
        }
    }

    pub async fn call(&self, token: &str, tool: &str, args: Value) -> Answer {
        let msg = json!({ "jsonrpc": "2.0", "id": 7, "method": "tools/call",
            "params": { "name": tool, "arguments": args } });
        self.post(Some(token), None, &msg).await
    }

    pub fn upstream(&self) -> usize {
        self.sim.requests().len()
    }

    /// Smartcar requests other than `/connections` (the ownership check's own).
    pub fn upstream_beyond_connections(&self) -> Vec<String> {
        self.sim
            .requests()
            .iter()
            .filter(|r| !r.path.starts_with("/connections"))
            .map(|r| format!("{} {}", r.method, r.path))
            .collect()
    }
}

fn invalid(a: &Answer, why: &str) {
    assert_eq!(a.status, 401, "{why}: {a:?}");
    let c = a
        .challenge
        .as_deref()
        .unwrap_or_else(|| panic!("{why}: no challenge"));
    assert!(c.starts_with("Bearer "), "{why}: {c}");
    assert!(c.contains(r#"error="invalid_token""#), "{why}: {c}");
    assert!(
        c.contains(&format!(r#"resource_metadata="{METADATA}""#)),
        "{why}: {c}"
    );
}

fn list_tools() -> Value {
    json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {} })
}

#[tokio::test]
async fn the_metadata_is_public_and_names_the_resource_and_issuer() {
    let rig = rig().await;
    for path in [
        "/.well-known/oauth-protected-resource/mcp",
        "/.well-known/oauth-protected-resource",
    ] {
        let r = rig
            .http
            .get(format!("{}{path}", rig.served.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
        let m: Value = r.json().await.unwrap();
        assert_eq!(m["resource"], RESOURCE);
        assert_eq!(m["authorization_servers"], json!([rig.issuer.url()]));
        assert_eq!(m["bearer_methods_supported"], json!(["header"]));
        let scopes = m["scopes_supported"].as_array().unwrap();
        assert!(scopes.contains(&json!("vehicle:read")), "{m}");
        assert!(
            !scopes.contains(&json!("app:admin")),
            "the operator's scope is not offered: {m}"
        );
    }
    assert_eq!(rig.upstream(), 0);
}

#[tokio::test]
async fn no_token_gets_401_naming_the_metadata_and_the_least_scope() {
    let rig = rig().await;
    let a = rig.post(None, None, &list_tools()).await;
    assert_eq!(a.status, 401);
    assert_eq!(
        a.challenge.as_deref(),
        Some(format!(r#"Bearer resource_metadata="{METADATA}", scope="vehicle:read""#).as_str())
    );
    // A tool call without a token sends nothing either.
    let msg = json!({ "jsonrpc": "2.0", "id": 2, "method": "tools/call",
        "params": { "name": "get_vehicle", "arguments": { "vehicle_id": EV } } });
    let a = rig.post(None, None, &msg).await;
    assert_eq!(a.status, 401);
    assert_eq!(rig.upstream(), 0);
    assert_eq!(rig.issuer.jwks_fetches(), 0, "no token, no key fetch");
}

#[tokio::test]
async fn every_malformed_or_forged_token_is_401_invalid_token_and_sends_nothing() {
    let rig = rig().await;
    let good = rig.issuer.claims(RESOURCE, "driver-a", DRIVER_SCOPES);
    let at = |edit: &dyn Fn(&mut Value)| {
        let mut c = good.clone();
        edit(&mut c);
        rig.issuer.sign("k1", &c)
    };
    let hs_header = json!({ "alg": "HS256", "typ": "JWT", "kid": "k1" });
    let cases: Vec<(&str, String)> = vec![
        ("malformed", "not.a-jwt".into()),
        ("garbage", "Zm9v".into()),
        ("alg none", Issuer::unsigned(&good)),
        (
            "HS256 signed with the public key",
            Issuer::sign_hs256(&hs_header, &good, &rig.issuer.key("k1").public_bytes()),
        ),
        (
            "expired beyond the leeway",
            at(&|c| c["exp"] = json!(now() - 120)),
        ),
        ("nbf ahead", at(&|c| c["nbf"] = json!(now() + 600))),
        (
            "wrong iss",
            at(&|c| c["iss"] = json!("https://evil.example.test")),
        ),
        (
            "no aud",
            at(&|c| {
                c.as_object_mut().unwrap().remove("aud");
            }),
        ),
        (
            "another aud",
            at(&|c| c["aud"] = json!("https://other.example.test/mcp")),
        ),
        (
            "no sub",
            at(&|c| {
                c.as_object_mut().unwrap().remove("sub");
            }),
        ),
        (
            "no exp",
            at(&|c| {
                c.as_object_mut().unwrap().remove("exp");
            }),
        ),
        ("tampered payload", {
            let t = rig.driver_a();
            let mut parts: Vec<String> = t.split('.').map(str::to_string).collect();
            let mut c = good.clone();
            c["sub"] = json!("driver-b");
            use base64::Engine;
            parts[1] = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(c.to_string());
            parts.join(".")
        }),
    ];
    for (why, token) in &cases {
        let a = rig
            .call(token, "get_vehicle", json!({ "vehicle_id": EV }))
            .await;
        invalid(&a, why);
    }
    assert_eq!(rig.upstream(), 0, "no Smartcar call for any of them");
    // An expired token's refusal says so (safe words, never the token).
    let a = rig
        .call(
            &at(&|c| c["exp"] = json!(now() - 120)),
            "get_vehicle",
            json!({ "vehicle_id": EV }),
        )
        .await;
    assert!(a.challenge.unwrap().contains("expired"));
}

#[tokio::test]
async fn leeway_is_at_most_a_minute() {
    let rig = rig().await;
    let mut c = rig.issuer.claims(RESOURCE, "driver-a", DRIVER_SCOPES);
    c["smartcar_user_id"] = json!(ALICE);
    c["exp"] = json!(now() - 30);
    let a = rig
        .post(Some(&rig.issuer.sign("k1", &c)), None, &list_tools())
        .await;
    assert_eq!(a.status, 200, "30 s past exp is within the leeway: {a:?}");
    c["exp"] = json!(now() - 90);
    let a = rig
        .post(Some(&rig.issuer.sign("k1", &c)), None, &list_tools())
        .await;
    invalid(&a, "90 s past exp");
}

#[tokio::test]
async fn an_oversized_token_is_refused_before_it_is_read() {
    let rig = rig().await;
    let mut c = rig.issuer.claims(RESOURCE, "driver-a", DRIVER_SCOPES);
    c["padding"] = json!("x".repeat(9 * 1024));
    let token = rig.issuer.sign("k1", &c);
    assert!(token.len() > 8 * 1024);
    let a = rig
        .call(&token, "get_vehicle", json!({ "vehicle_id": EV }))
        .await;
    invalid(&a, "oversized");
    assert!(a.challenge.unwrap().contains("8 KiB"));
    assert_eq!(
        rig.issuer.jwks_fetches(),
        0,
        "not even the keys were fetched"
    );
    assert_eq!(rig.upstream(), 0);
}

#[tokio::test]
async fn an_unknown_kid_fetches_the_keys_once_then_refuses() {
    let rig = rig().await;
    // k3 is never published: the keys are fetched for it once, and within 30 s not again.
    let mut c = rig.issuer.claims(RESOURCE, "driver-a", DRIVER_SCOPES);
    c["smartcar_user_id"] = json!(ALICE);
    let unknown = rig.issuer.sign("k3", &c);
    for _ in 0..3 {
        let a = rig.post(Some(&unknown), None, &list_tools()).await;
        invalid(&a, "unknown kid");
        assert!(a.challenge.unwrap().contains("does not publish"));
    }
    assert_eq!(
        rig.issuer.jwks_fetches(),
        1,
        "one fetch, then refusals at most every 30 s"
    );
    // The keys fetched then serve a known kid without another fetch.
    let a = rig.post(Some(&rig.driver_a()), None, &list_tools()).await;
    assert_eq!(a.status, 200);
    assert_eq!(rig.issuer.jwks_fetches(), 1);
    assert_eq!(rig.upstream(), 0);
}

#[tokio::test]
async fn a_new_key_is_fetched_and_an_issuer_that_is_down_keeps_cached_keys_working() {
    let rig = rig().await;
    rig.issuer.rotate();
    let mut c = rig.issuer.claims(RESOURCE, "driver-a", DRIVER_SCOPES);
    c["smartcar_user_id"] = json!(ALICE);
    let by_k2 = rig.issuer.sign("k2", &c);
    let a = rig.post(Some(&by_k2), None, &list_tools()).await;
    assert_eq!(a.status, 200, "k2 is published: {a:?}");
    rig.issuer.set_down(true);
    // A fresh token (not remembered) signed by a cached key still passes.
    c["jti"] = json!("fresh");
    let a = rig
        .post(Some(&rig.issuer.sign("k1", &c)), None, &list_tools())
        .await;
    assert_eq!(a.status, 200, "cached keys keep working: {a:?}");
    let a = rig
        .post(Some(&rig.issuer.sign("k3", &c)), None, &list_tools())
        .await;
    invalid(&a, "a new key while the issuer is down");
    assert_eq!(rig.upstream(), 0);
}

#[tokio::test]
async fn too_small_a_scope_is_403_naming_every_scope_the_call_needs() {
    let rig = rig().await;
    let reader = rig.token("driver-a", &[ALICE], "vehicle:read");
    let a = rig
        .call(
            &reader,
            "unlock_vehicle",
            json!({ "vehicle_id": EV, "user_id": ALICE }),
        )
        .await;
    assert_eq!(a.status, 403, "{a:?}");
    let c = a.challenge.unwrap();
    assert!(c.contains(r#"error="insufficient_scope""#), "{c}");
    assert!(c.contains(r#"scope="vehicle:unlock""#), "{c}");
    assert!(
        c.contains(&format!(r#"resource_metadata="{METADATA}""#)),
        "{c}"
    );
    let a = rig.call(&reader, "list_webhooks", json!({})).await;
    assert_eq!(a.status, 403);
    assert!(a.challenge.unwrap().contains(r#"scope="app:admin""#));
    assert_eq!(rig.upstream(), 0);
    // tools/list shows the reader only what it may call.
    let a = rig.post(Some(&reader), None, &list_tools()).await;
    let names: Vec<&str> = a.body["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert!(
        names.contains(&"get_vehicle") && names.contains(&"list_connections"),
        "{names:?}"
    );
    for hidden in [
        "unlock_vehicle",
        "lock_vehicle",
        "delete_user",
        "list_webhooks",
    ] {
        assert!(!names.contains(&hidden), "{hidden} in {names:?}");
    }
    assert_eq!(
        a.body["result"]["_meta"]["io.modelcontextprotocol/cacheScope"]
            .as_str()
            .or(a.body["result"]["cacheScope"].as_str())
            .unwrap_or("private"),
        "private"
    );
}

#[tokio::test]
async fn a_token_for_driver_a_cannot_name_driver_bs_user_vehicle_or_connections() {
    let rig = rig().await;
    let a_token = rig.driver_a();
    // A's token with B's user_id: refused before anything is sent.
    let a = rig
        .call(
            &a_token,
            "get_signals",
            json!({ "vehicle_id": ICE, "user_id": BOB }),
        )
        .await;
    assert_eq!((a.status, a.challenge.as_deref()), (200, None));
    assert_eq!(a.tool_error(), Some("FORBIDDEN"), "{a:?}");
    assert_eq!(rig.upstream(), 0, "B's user id costs no Smartcar call");
    // list_connections filtered to B.
    let a = rig
        .call(&a_token, "list_connections", json!({ "userId": BOB }))
        .await;
    assert_eq!(a.tool_error(), Some("FORBIDDEN"), "{a:?}");
    assert_eq!(rig.upstream(), 0);
    // A's user_id with B's vehicle: only A's own /connections is read.
    let a = rig
        .call(
            &a_token,
            "lock_vehicle",
            json!({ "vehicle_id": ICE, "user_id": ALICE }),
        )
        .await;
    assert_eq!((a.status, a.challenge.as_deref()), (200, None));
    assert_eq!(a.tool_error(), Some("FORBIDDEN"), "{a:?}");
    assert_eq!(rig.upstream_beyond_connections(), Vec::<String>::new());
    assert_eq!(rig.sim.hits("GET", "/connections"), 1);
    // get_vehicle of B's car, and of a car that does not exist: the same words, no more calls
    // (A's connections are cached).
    let theirs = rig
        .call(&a_token, "get_vehicle", json!({ "vehicle_id": ICE }))
        .await;
    let nobodys = rig
        .call(
            &a_token,
            "get_vehicle",
            json!({ "vehicle_id": "veh-nope-9999" }),
        )
        .await;
    assert_eq!(theirs.tool_error(), Some("FORBIDDEN"));
    let words = |a: &Answer| {
        a.body["result"]["structuredContent"]["error"]["detail"]
            .as_str()
            .unwrap()
            .replace(ICE, "ID")
            .replace("veh-nope-9999", "ID")
    };
    assert_eq!(
        words(&theirs),
        words(&nobodys),
        "a refusal does not tell whether the car exists"
    );
    assert_eq!(rig.upstream_beyond_connections(), Vec::<String>::new());
    assert_eq!(
        rig.sim.hits("GET", "/connections"),
        1,
        "ownership is cached"
    );
    // delete_user of B, delete_connection of B's.
    let a = rig
        .call(&a_token, "delete_user", json!({ "id": BOB }))
        .await;
    assert_eq!(a.tool_error(), Some("FORBIDDEN"));
    let a = rig
        .call(
            &a_token,
            "delete_connection",
            json!({ "id": "conn-bob-ice-03" }),
        )
        .await;
    assert_eq!(a.tool_error(), Some("FORBIDDEN"));
    assert_eq!(rig.upstream_beyond_connections(), Vec::<String>::new());
}

#[tokio::test]
async fn driver_a_reaches_its_own_cars_and_its_user_id_is_filled_in() {
    let rig = rig().await;
    let a_token = rig.driver_a();
    let a = rig.call(&a_token, "list_connections", json!({})).await;
    assert_eq!(a.status, 200);
    let text = a.body["result"]["structuredContent"].to_string();
    assert!(text.contains(EV) && text.contains(PHEV), "{text}");
    assert!(
        !text.contains(ICE) && !text.contains(BOB),
        "only A's: {text}"
    );
    let sent = rig.sim.requests();
    assert!(
        sent[0]
            .query
            .iter()
            .any(|(k, v)| k == "filter[userId]" && v == ALICE),
        "{:?}",
        sent[0]
    );
    rig.sim.clear_requests();
    let a = rig
        .call(&a_token, "lock_vehicle", json!({ "vehicle_id": EV }))
        .await;
    assert!(a.tool_error().is_none(), "{a:?}");
    let lock = rig
        .sim
        .requests()
        .into_iter()
        .find(|r| r.path.contains("/commands/security/lock"))
        .expect("the lock was sent");
    assert_eq!(
        lock.header("sc-user-id"),
        Some(ALICE),
        "user_id filled in from A's token"
    );
    // The application's token went upstream, never A's.
    let auth = lock.header("authorization").unwrap_or_default().to_string();
    assert!(
        !auth.contains(&a_token) && auth.starts_with("Bearer "),
        "{auth}"
    );
}

#[tokio::test]
async fn a_caller_with_no_smartcar_user_is_told_why_and_reaches_nothing() {
    let rig = rig().await;
    let nobody = rig.token("driver-c", &[], DRIVER_SCOPES);
    let a = rig
        .call(&nobody, "get_vehicle", json!({ "vehicle_id": EV }))
        .await;
    assert_eq!(a.tool_error(), Some("FORBIDDEN"));
    let detail = a.body["result"]["structuredContent"]["error"]["detail"]
        .as_str()
        .unwrap();
    assert!(detail.contains("names no Smartcar user"), "{detail}");
    let a = rig.call(&nobody, "list_connections", json!({})).await;
    assert_eq!(a.tool_error(), Some("FORBIDDEN"));
    assert_eq!(rig.upstream(), 0);
}

#[tokio::test]
async fn app_admin_reaches_every_users_connections() {
    let rig = rig().await;
    let admin = rig.token("ops", &[], "vehicle:read app:admin");
    let a = rig.call(&admin, "list_connections", json!({})).await;
    let text = a.body["result"]["structuredContent"].to_string();
    assert!(text.contains(ICE) && text.contains(EV), "{text}");
    let a = rig
        .call(&admin, "get_vehicle", json!({ "vehicle_id": ICE }))
        .await;
    assert!(a.tool_error().is_none(), "{a:?}");
}

#[tokio::test]
async fn a_delete_and_a_webhook_event_drop_the_cached_ownership() {
    let rig = rig_with(|s| {
        s.serving.management_token = Some(smartcar_mcp::secret::Secret::new(crate::webhooks::AMT));
    })
    .await;
    let a_token = rig.driver_a();
    let read = |v: &str| json!({ "vehicle_id": v });
    rig.call(&a_token, "get_vehicle", read(EV)).await;
    rig.call(&a_token, "get_vehicle", read(EV)).await;
    assert_eq!(
        rig.sim.hits("GET", "/connections"),
        1,
        "cached between calls"
    );
    let a = rig
        .call(
            &a_token,
            "delete_connection",
            json!({ "id": "conn-alice-phev-02" }),
        )
        .await;
    assert!(a.tool_error().is_none(), "{a:?}");
    assert_eq!(rig.sim.hits("DELETE", "/connections/conn-alice-phev-02"), 1);
    let before = rig.sim.hits("GET", "/connections");
    let a = rig.call(&a_token, "get_vehicle", read(PHEV)).await;
    assert_eq!(
        a.tool_error(),
        Some("FORBIDDEN"),
        "the deleted connection no longer counts"
    );
    assert_eq!(
        rig.sim.hits("GET", "/connections"),
        before + 1,
        "read again after the delete"
    );
    rig.call(&a_token, "get_vehicle", read(EV)).await;
    assert_eq!(rig.sim.hits("GET", "/connections"), before + 1);
    // A signed event through the webhook route.
    let (status, _) = crate::webhooks::post_signed(
        &rig.served.base,
        &crate::webhooks::event("e-1", EV, crate::webhooks::locked(true, 1)),
    )
    .await;
    assert_eq!(status, 200);
    rig.call(&a_token, "get_vehicle", read(EV)).await;
    assert_eq!(rig.sim.hits("GET", "/connections"), before + 2);
}

#[tokio::test]
async fn resources_and_subscriptions_show_only_the_callers_vehicles() {
    let rig = rig().await;
    for v in [EV, ICE] {
        rig.shared
            .app
            .store
            .ingest(&crate::webhooks::event(
                &format!("e-{v}"),
                v,
                crate::webhooks::locked(true, 1),
            ))
            .await;
    }
    let a_token = rig.driver_a();
    let read = |uri: &str| json!({ "jsonrpc": "2.0", "id": 3, "method": "resources/read", "params": { "uri": uri } });
    let mine = rig
        .post(
            Some(&a_token),
            None,
            &read(&format!("smartcar://vehicles/{EV}/state")),
        )
        .await;
    assert!(mine.body["result"]["contents"].is_array(), "{mine:?}");
    let theirs = rig
        .post(
            Some(&a_token),
            None,
            &read(&format!("smartcar://vehicles/{ICE}/state")),
        )
        .await;
    let nobodys = rig
        .post(
            Some(&a_token),
            None,
            &read("smartcar://vehicles/veh-nope-9999/state"),
        )
        .await;
    assert!(theirs.body["error"].is_object(), "{theirs:?}");
    assert_eq!(
        theirs.body["error"]["message"]
            .as_str()
            .unwrap()
            .replace(ICE, "ID"),
        nobodys.body["error"]["message"]
            .as_str()
            .unwrap()
            .replace("veh-nope-9999", "ID"),
        "B's car reads as a car with no state"
    );
    let list = rig
        .post(
            Some(&a_token),
            None,
            &json!({ "jsonrpc": "2.0", "id": 4, "method": "resources/list", "params": {} }),
        )
        .await;
    let uris = list.body["result"]["resources"].to_string();
    assert!(uris.contains(EV) && !uris.contains(ICE), "{uris}");
    // Subscribing to B's state, in a handshake session opened by A.
    let init = json!({ "jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": { "name": "oauth-test", "version": "1" } } });
    let opened = rig.post(Some(&a_token), None, &init).await;
    let session = opened.session.expect("a session");
    rig.post(
        Some(&a_token),
        Some(&session),
        &json!({ "jsonrpc": "2.0", "method": "notifications/initialized" }),
    )
    .await;
    let sub = |v: &str| json!({ "jsonrpc": "2.0", "id": 5, "method": "resources/subscribe", "params": { "uri": format!("smartcar://vehicles/{v}/state") } });
    let theirs = rig.post(Some(&a_token), Some(&session), &sub(ICE)).await;
    assert_eq!(theirs.status, 200);
    assert!(
        theirs.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not one of your vehicles"),
        "{theirs:?}"
    );
    let ours = rig.post(Some(&a_token), Some(&session), &sub(EV)).await;
    assert!(ours.body["result"].is_object(), "{ours:?}");
    assert_eq!(rig.shared.subscriptions(), 1);
    assert_eq!(rig.upstream_beyond_connections(), Vec::<String>::new());
    // Completing a prompt's vehicle_id offers only A's (B's car was seen by the admin listing).
    rig.shared.app.seen.record(&json!({ "connections": [
        { "vehicle_id": ICE, "user_id": BOB }, { "vehicle_id": EV, "user_id": ALICE } ] }));
    let complete = json!({ "jsonrpc": "2.0", "id": 6, "method": "completion/complete", "params": {
        "ref": { "type": "ref/prompt", "name": "vehicle_health" },
        "argument": { "name": "vehicle_id", "value": "veh" } } });
    let c = rig.post(Some(&a_token), Some(&session), &complete).await;
    let values = c.body["result"]["completion"]["values"].to_string();
    assert!(values.contains(EV) && !values.contains(ICE), "{c:?}");
    // A prompt about B's car would name B's user: refused.
    let prompt = |v: &str| {
        json!({ "jsonrpc": "2.0", "id": 8, "method": "prompts/get", "params": {
        "name": "vehicle_health", "arguments": { "vehicle_id": v } } })
    };
    let theirs = rig.post(Some(&a_token), Some(&session), &prompt(ICE)).await;
    assert!(
        theirs.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not one of your vehicles"),
        "{theirs:?}"
    );
    assert!(!theirs.body.to_string().contains(BOB));
    let ours = rig.post(Some(&a_token), Some(&session), &prompt(EV)).await;
    assert!(ours.body["result"]["messages"].is_array(), "{ours:?}");
}

#[tokio::test]
async fn a_session_opened_by_a_is_refused_under_bs_token() {
    let rig = rig().await;
    let init = json!({ "jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": { "name": "oauth-test", "version": "1" } } });
    let opened = rig.post(Some(&rig.driver_a()), None, &init).await;
    let session = opened.session.expect("a session");
    let b = rig
        .post(
            Some(&rig.driver_b()),
            Some(&session),
            &json!({ "jsonrpc": "2.0", "id": 2, "method": "tools/call",
            "params": { "name": "get_vehicle", "arguments": { "vehicle_id": EV } } }),
        )
        .await;
    assert_eq!((b.status, b.challenge.as_deref()), (404, None), "{b:?}");
    let unknown = rig
        .post(
            Some(&rig.driver_b()),
            Some("no-such-session"),
            &list_tools(),
        )
        .await;
    assert_eq!(
        unknown.status, 404,
        "the same answer as a session that does not exist"
    );
    assert_eq!(rig.upstream(), 0);
    // A still uses it.
    let a = rig
        .post(
            Some(&rig.driver_a()),
            Some(&session),
            &json!({ "jsonrpc": "2.0", "method": "notifications/initialized" }),
        )
        .await;
    assert_eq!(a.status, 202);
}

#[tokio::test]
async fn a_confirmation_answer_replayed_under_another_callers_token_does_not_open() {
    let rig = rig_with(|s| s.serving.confirm = smartcar_mcp::settings::ConfirmMode::Required).await;
    let unlock = |extra: Value| {
        let mut params = json!({ "name": "unlock_vehicle", "arguments": { "vehicle_id": EV, "user_id": ALICE } });
        params
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        json!({ "jsonrpc": "2.0", "id": 9, "method": "tools/call", "params": params })
    };
    let asked = rig
        .post(Some(&rig.driver_a()), None, &unlock(json!({})))
        .await;
    let state = asked.body["result"]["requestState"]
        .as_str()
        .unwrap_or_else(|| panic!("{asked:?}"))
        .to_string();
    let yes = json!({ "inputResponses": { "confirm": { "action": "accept", "content": { "confirm": true } } }, "requestState": state });
    // B holds every scope and even Alice's user id: only the caller differs.
    let b = rig.token("driver-b", &[ALICE], DRIVER_SCOPES);
    let replayed = rig.post(Some(&b), None, &unlock(yes.clone())).await;
    assert_eq!(replayed.status, 200);
    assert_eq!(replayed.tool_error(), Some("NOT_CONFIRMED"), "{replayed:?}");
    assert_eq!(rig.sim.hits("POST", "/unlock"), 0);
    let answered = rig.post(Some(&rig.driver_a()), None, &unlock(yes)).await;
    assert!(answered.tool_error().is_none(), "{answered:?}");
    assert_eq!(rig.sim.hits("POST", "/unlock"), 1);
}

#[tokio::test]
async fn the_audit_log_records_the_caller_and_filters_by_it() {
    let rig = rig().await;
    rig.call(&rig.driver_a(), "lock_vehicle", json!({ "vehicle_id": EV }))
        .await;
    rig.call(
        &rig.driver_b(),
        "lock_vehicle",
        json!({ "vehicle_id": ICE }),
    )
    .await;
    let rows = rig
        .shared
        .app
        .store
        .rows(&smartcar_mcp::store::RowFilter {
            principal: Some("driver-a"),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].vehicle_id.as_deref(), Some(EV));
    assert_eq!(
        rows[0].principal_issuer.as_deref(),
        Some(rig.issuer.url().as_str())
    );
}

#[tokio::test]
async fn oauth_and_the_static_token_are_exclusive_and_a_resource_is_required() {
    let sim = common::simulator().await;
    let mut s = common::settings(&sim);
    s.serving.http_token = Some(smartcar_mcp::secret::Secret::new("t0ken"));
    s.serving.oauth = Some(OAuthSettings {
        issuer: "http://127.0.0.1:1".into(),
        resource: RESOURCE.into(),
        jwks_url: None,
        user_claim: "smartcar_user_id".into(),
        tenants: None,
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let e = smartcar_mcp::mcp::http::serve_on(listener, common::shared(s.clone()), &[], async {})
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("exclusive"), "{e}");
    s.serving.http_token = None;
    s.serving.oauth.as_mut().unwrap().resource = String::new();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let e = smartcar_mcp::mcp::http::serve_on(listener, common::shared(s), &[], async {})
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("--oauth-resource"), "{e}");
}

#[tokio::test]
async fn audit_caller_reads_one_callers_commands_from_the_sqlite_file() {
    let dir = std::env::temp_dir().join(format!("oauth-audit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("audit.db");
    let rig = rig_with(|s| s.serving.audit_db = Some(db.clone())).await;
    rig.call(&rig.driver_a(), "lock_vehicle", json!({ "vehicle_id": EV }))
        .await;
    rig.call(
        &rig.driver_b(),
        "lock_vehicle",
        json!({ "vehicle_id": ICE }),
    )
    .await;
    let out = common::command()
        .args(["audit", "--caller", "driver-b", "--json", "--audit-db"])
        .arg(&db)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let rows: Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["vehicle_id"], ICE);
    assert_eq!(rows[0]["principal"], "driver-b");
    let text = common::command()
        .args(["audit", "--audit-db"])
        .arg(&db)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("sub=driver-a") && text.contains("sub=driver-b"),
        "{text}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// Replicas sharing one PostgreSQL: a session opened by driver A on one replica is restored on
/// another for A, and refused there under B's token as an unknown session.
#[tokio::test]
async fn a_sessions_caller_binding_holds_on_every_replica() {
    let Some(url) = crate::common::postgres::url("oauth_session_binding") else {
        return;
    };
    let db = crate::common::postgres::fresh_database(&url).await;
    let shared_db = db.clone();
    let rig = rig_with(move |s| {
        s.serving.postgres = Some(smartcar_mcp::secret::Secret::new(shared_db));
        s.serving.replica_id = "oauth-a".into();
    })
    .await;
    rig.shared.app.store.ready().await.unwrap();
    let mut s = common::settings(&rig.sim);
    s.serving.oauth = rig.shared.app.serving.oauth.clone();
    s.serving.postgres = Some(smartcar_mcp::secret::Secret::new(db));
    s.serving.replica_id = "oauth-b".into();
    let b = common::shared(s);
    b.app.store.ready().await.unwrap();
    let served_b = common::serve_http(b).await;

    let init = json!({ "jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": { "name": "oauth-test", "version": "1" } } });
    let opened = rig.post(Some(&rig.driver_a()), None, &init).await;
    let session = opened.session.expect("a session");
    let initialized = json!({ "jsonrpc": "2.0", "method": "notifications/initialized" });
    let a = rig
        .post(Some(&rig.driver_a()), Some(&session), &initialized)
        .await;
    assert_eq!(a.status, 202);
    let on_b = |token: String| {
        let (rig, mcp, session) = (&rig, served_b.mcp(), session.clone());
        async move {
            rig.post_to(&mcp, Some(&token), Some(&session), &list_tools())
                .await
        }
    };
    let b_token = on_b(rig.driver_b()).await;
    assert_eq!(
        (b_token.status, b_token.challenge.as_deref()),
        (404, None),
        "B's token on the other replica: {b_token:?}"
    );
    let a_token = on_b(rig.driver_a()).await;
    assert_eq!(
        a_token.status, 200,
        "A's session restored on B: {a_token:?}"
    );
    assert!(
        a_token.body["result"]["tools"]
            .as_array()
            .is_some_and(|t| !t.is_empty()),
        "{a_token:?}"
    );
    assert_eq!(rig.upstream(), 0);
}
