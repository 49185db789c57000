//! Tests of the simulator over real HTTP: token, connections, signals, commands, faults.

use serde_json::{Value, json};

use super::seed::{ALICE, BOB, EV, ICE, PHEV};
use super::*;
use crate::catalogue::SIGNALS;

struct Stand {
    sim: Simulator,
    http: reqwest::Client,
    token: String,
}

impl Stand {
    async fn new() -> Stand {
        let sim = Simulator::start(SimConfig::default()).await.unwrap();
        let http = reqwest::Client::new();
        let resp = http
            .post(format!("{}/oauth2/token", sim.auth_url()))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("grant_type=client_credentials&client_id=client_abc&client_secret=s3cr3t")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let token = resp.json::<Value>().await.unwrap()["access_token"]
            .as_str()
            .unwrap()
            .to_string();
        Stand { sim, http, token }
    }

    /// (status, body or Null, sc-request-id)
    async fn call(
        &self,
        method: &str,
        path: &str,
        user: Option<&str>,
        body: Option<&str>,
    ) -> (u16, Value, Option<String>) {
        let url = if path.starts_with("/management/") {
            format!("{}{}", self.sim.auth_url(), path)
        } else {
            format!("{}{}", self.sim.api_url(), path)
        };
        let mut rb = self
            .http
            .request(method.parse().unwrap(), url)
            .bearer_auth(&self.token);
        if let Some(u) = user {
            rb = rb.header("sc-user-id", u);
        }
        if let Some(b) = body {
            rb = rb
                .header("content-type", "application/json")
                .body(b.to_string());
        }
        let resp = rb.send().await.unwrap();
        let status = resp.status().as_u16();
        let request_id = resp
            .headers()
            .get("sc-request-id")
            .map(|v| v.to_str().unwrap().to_string());
        let text = resp.text().await.unwrap();
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        (status, json, request_id)
    }

    async fn get(&self, path: &str, user: Option<&str>) -> (u16, Value) {
        let (s, b, _) = self.call("GET", path, user, None).await;
        (s, b)
    }

    async fn post(&self, path: &str, user: &str, body: Option<&str>) -> (u16, Value) {
        let (s, b, _) = self.call("POST", path, Some(user), body).await;
        (s, b)
    }

    async fn signal_value(&self, vehicle: &str, user: &str, code: &str) -> Value {
        let (status, body) = self
            .get(&format!("/vehicles/{vehicle}/signals/{code}"), Some(user))
            .await;
        assert_eq!(status, 200, "{body}");
        body["attributes"]["body"].clone()
    }
}

fn error0(body: &Value) -> (&str, &str) {
    let e = &body["errors"][0];
    (
        e["type"].as_str().unwrap_or(""),
        e["code"].as_str().unwrap_or(""),
    )
}

#[tokio::test]
async fn token_is_issued_and_api_needs_it() {
    let st = Stand::new().await;
    let token_url = format!("{}/oauth2/token", st.sim.auth_url());

    let resp = st
        .http
        .get(format!("{}/vehicles/{EV}", st.sim.api_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert!(resp.headers().contains_key("sc-request-id"));
    let body: Value = resp.json().await.unwrap();
    assert_eq!(error0(&body), ("AUTHENTICATION", "UNAUTHORIZED"));
    assert_eq!(body["errors"][0]["status"], "401");

    let (status, body, request_id) = st.call("GET", &format!("/vehicles/{EV}"), None, None).await;
    assert_eq!(status, 200);
    assert!(request_id.is_some());
    assert_eq!(body["data"]["attributes"]["powertrainType"], "BEV");
    assert_eq!(body["data"]["attributes"]["make"], "Tesla");

    // JSON bodies are accepted as well as forms.
    let resp = st
        .http
        .post(&token_url)
        .json(&json!({"grant_type": "client_credentials", "client_id": "c", "client_secret": "s"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);

    for (form, status, error) in [
        ("client_id=c&client_secret=s", 400, "invalid_request"),
        (
            "grant_type=authorization_code&client_id=c&client_secret=s",
            400,
            "unsupported_grant_type",
        ),
        (
            "grant_type=client_credentials&client_id=c",
            401,
            "invalid_client",
        ),
    ] {
        let resp = st
            .http
            .post(&token_url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), status, "{form}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"], error, "{form}");
    }
    assert_eq!(st.sim.token_requests().len(), 5);
    let first = &st.sim.token_requests()[0];
    assert_eq!(first.path, "/oauth2/token");
    assert_eq!(first.api, "auth");

    st.sim.revoke_tokens();
    let (status, _) = st.get(&format!("/vehicles/{EV}"), None).await;
    assert_eq!(status, 401);

    st.sim.set_token_ttl(0);
    let resp = st
        .http
        .post(&token_url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials&client_id=c&client_secret=s")
        .send()
        .await
        .unwrap();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["expires_in"], 0);
    let expired = body["access_token"].as_str().unwrap();
    let resp = st
        .http
        .get(format!("{}/vehicles/{EV}", st.sim.api_url()))
        .bearer_auth(expired)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    st.sim.shutdown();
}

#[tokio::test]
async fn connections_filter_and_paginate() {
    let st = Stand::new().await;
    let (status, body) = st.get("/connections", None).await;
    assert_eq!(status, 200);
    assert_eq!(
        body["meta"],
        json!({"pageNumber": 1, "pageSize": 10, "totalCount": 3})
    );
    assert_eq!(body["links"]["prev"], Value::Null);
    assert_eq!(body["links"]["next"], Value::Null);
    let first = &body["data"][0];
    assert_eq!(first["type"], "connection");
    assert_ne!(first["id"], first["relationships"]["vehicle"]["data"]["id"]);

    let (status, body) = st
        .get(
            &format!("/connections?filter%5BuserId%5D={ALICE}&page%5Bnumber%5D=1&page%5Bsize%5D=1"),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        body["meta"],
        json!({"pageNumber": 1, "pageSize": 1, "totalCount": 2})
    );
    assert_eq!(body["data"].as_array().unwrap().len(), 1);
    assert_eq!(
        body["data"][0]["relationships"]["vehicle"]["data"]["id"],
        EV
    );
    assert_eq!(
        body["links"]["next"],
        format!("/connections?filter[userId]={ALICE}&page[number]=2&page[size]=1")
    );
    let recorded = st.sim.requests().pop().unwrap();
    assert_eq!(recorded.path, "/connections");
    assert_eq!(recorded.api, "vehicle");
    assert_eq!(recorded.query_value("filter[userId]"), Some(ALICE));

    let (_, body) = st
        .get(
            "/connections?filter[userId]=usr-alice-01&page[number]=2&page[size]=1",
            None,
        )
        .await;
    assert_eq!(
        body["data"][0]["relationships"]["vehicle"]["data"]["id"],
        PHEV
    );
    assert_eq!(body["links"]["next"], Value::Null);
    assert!(body["links"]["prev"].is_string());

    let (_, body) = st.get("/connections", Some(BOB)).await;
    assert_eq!(body["meta"]["totalCount"], 1);
    let (_, body) = st
        .get("/connections?filter[vehicle.mode]=simulated", None)
        .await;
    assert_eq!(body["data"][0]["attributes"]["vehicle"]["model"], "F-150");
    assert_eq!(body["meta"]["totalCount"], 1);

    let (status, body) = st.get("/connections?page[size]=101", None).await;
    assert_eq!(status, 400);
    assert_eq!(error0(&body).0, "VALIDATION");

    let (status, body) = st.get(&format!("/connections/{EV}"), None).await;
    assert_eq!(status, 200, "a vehicle id with one connection resolves");
    assert_eq!(body["data"]["id"], "conn-alice-ev-01");
}

#[tokio::test]
async fn signal_list_covers_the_catalogue_with_compatibility_errors() {
    let st = Stand::new().await;
    let (status, body) = st
        .get(&format!("/vehicles/{EV}/signals"), Some(ALICE))
        .await;
    assert_eq!(status, 200);
    let data = body["data"].as_array().unwrap();
    assert_eq!(data.len(), SIGNALS.len());
    assert_eq!(body["meta"]["totalCount"], SIGNALS.len());
    assert_eq!(
        body["included"]["vehicle"]["attributes"]["model"],
        "Model 3"
    );
    for (s, item) in SIGNALS.iter().zip(data) {
        assert_eq!(item["id"], s.code);
        assert_eq!(item["attributes"]["group"], s.group_title);
        let status = &item["attributes"]["status"];
        if s.group == "internalcombustionengine" {
            assert_eq!(status["value"], "ERROR", "{}", s.code);
            assert_eq!(status["error"]["type"], "COMPATIBILITY");
            assert_eq!(status["error"]["code"], "VEHICLE_NOT_CAPABLE");
        }
        if s.group == "tractionbattery" {
            assert_eq!(status["value"], "SUCCESS", "{}", s.code);
            assert!(item["meta"]["retrievedAt"].as_u64().unwrap() > 1_000_000_000_000);
        }
    }
    let soc = data
        .iter()
        .find(|d| d["id"] == "tractionbattery-stateofcharge")
        .unwrap();
    assert_eq!(
        soc["attributes"]["body"],
        json!({"unit": "percent", "value": 72})
    );

    // The petrol car is the mirror image.
    let (_, body) = st.get(&format!("/vehicles/{ICE}/signals"), Some(BOB)).await;
    let fuel = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["id"] == "internalcombustionengine-fuellevel")
        .unwrap();
    assert_eq!(fuel["attributes"]["status"]["value"], "SUCCESS");

    let (_, body) = st
        .get(
            &format!("/vehicles/{EV}/signals?page=2&pageSize=10"),
            Some(ALICE),
        )
        .await;
    assert_eq!(body["data"].as_array().unwrap().len(), 10);
    assert_eq!(body["meta"]["page"], 2);
    assert!(body["meta"].get("pageNumber").is_none());
    assert!(body["links"]["previous"].is_string());

    let (status, body) = st.get(&format!("/vehicles/{EV}/signals"), None).await;
    assert_eq!(status, 400);
    assert_eq!(error0(&body), ("VALIDATION", "MISSING_PARAMETER"));
    let (status, body) = st.get(&format!("/vehicles/{EV}/signals"), Some(BOB)).await;
    assert_eq!(status, 404);
    assert_eq!(error0(&body).0, "RESOURCE_NOT_FOUND");
}

#[tokio::test]
async fn single_signal_shapes_and_errors() {
    let st = Stand::new().await;
    let (status, body) = st
        .get(
            &format!("/vehicles/{EV}/signals/location-preciselocation"),
            Some(ALICE),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["type"], "signal");
    assert_eq!(body["attributes"]["body"]["locationType"], "CURRENT");

    let (status, body) = st
        .get(
            &format!("/vehicles/{EV}/signals/charge.ischarging"),
            Some(ALICE),
        )
        .await;
    assert_eq!(status, 404);
    assert_eq!(error0(&body), ("RESOURCE_NOT_FOUND", "SIGNAL_NOT_FOUND"));

    let (status, body) = st
        .get(
            &format!("/vehicles/{EV}/signals/internalcombustionengine-fuellevel"),
            Some(ALICE),
        )
        .await;
    assert_eq!(status, 501);
    assert_eq!(error0(&body), ("COMPATIBILITY", "VEHICLE_NOT_CAPABLE"));

    st.sim.set_single_signal_wrapped(true);
    let (_, body) = st
        .get(
            &format!("/vehicles/{EV}/signals/closure-islocked"),
            Some(ALICE),
        )
        .await;
    assert_eq!(body["data"]["attributes"]["body"], json!({"value": true}));
    assert_eq!(body["included"]["vehicle"]["id"], EV);

    st.sim.set_error_format(ErrorFormat::V2);
    let (status, body, request_id) = st
        .call(
            "GET",
            &format!("/vehicles/{EV}/signals/nope"),
            Some(ALICE),
            None,
        )
        .await;
    assert_eq!(status, 404);
    assert_eq!(body["type"], "RESOURCE_NOT_FOUND");
    assert_eq!(body["statusCode"], 404);
    assert_eq!(body["requestId"].as_str(), request_id.as_deref());
}

#[tokio::test]
async fn lock_and_unlock_flip_closure_islocked() {
    let st = Stand::new().await;
    let lock = format!("/vehicles/{EV}/commands/security/lock");
    let unlock = format!("/vehicles/{EV}/commands/security/unlock");

    let (status, body) = st.post(&lock, ALICE, None).await;
    assert_eq!(status, 200, "{body}");
    let data = &body["data"];
    assert_eq!(data["type"], "command-execution");
    assert!(data["id"].as_str().unwrap().starts_with("exec_"));
    assert_eq!(data["attributes"]["commandType"], "security-lock");
    assert_eq!(data["attributes"]["status"]["value"], "SUCCESS");
    assert_eq!(data["attributes"]["executionMode"], "sync");
    assert!(data["meta"]["completedAt"].as_str().unwrap().ends_with('Z'));
    assert_eq!(
        st.signal_value(EV, ALICE, "closure-islocked").await,
        json!({"value": true})
    );

    let (status, body) = st.post(&unlock, ALICE, None).await;
    assert_eq!(status, 200);
    assert_ne!(body["data"]["id"], data["id"]);
    assert_eq!(
        st.signal_value(EV, ALICE, "closure-islocked").await,
        json!({"value": false})
    );
    let doors = st.signal_value(EV, ALICE, "closure-doors").await;
    assert_eq!(doors["values"][0]["isLocked"], false);

    let (status, body) = st.post(&lock, BOB, None).await;
    assert_eq!(status, 404, "{body}");
    let (status, _, _) = st.call("POST", &lock, None, None).await;
    assert_eq!(status, 400, "sc-user-id is required on commands");
}

#[tokio::test]
async fn charge_start_stop_follow_vehicle_state() {
    let st = Stand::new().await;
    let start = format!("/vehicles/{EV}/commands/charge/start");
    let stop = format!("/vehicles/{EV}/commands/charge/stop");

    let (status, body) = st.post(&stop, ALICE, None).await;
    assert_eq!(status, 409);
    assert_eq!(error0(&body), ("VEHICLE_STATE", "NOT_CHARGING"));

    let (status, _) = st.post(&start, ALICE, None).await;
    assert_eq!(status, 200);
    assert_eq!(
        st.signal_value(EV, ALICE, "charge-ischarging").await,
        json!({"value": true})
    );
    let (status, body) = st.post(&start, ALICE, None).await;
    assert_eq!(status, 409);
    assert_eq!(error0(&body).1, "CHARGING_IN_PROGRESS");

    let (status, body) = st
        .post(&format!("/vehicles/{ICE}/commands/charge/start"), BOB, None)
        .await;
    assert_eq!(status, 501);
    assert_eq!(error0(&body), ("COMPATIBILITY", "VEHICLE_NOT_CAPABLE"));
}

#[tokio::test]
async fn set_limit_validates_and_updates_charge_limits() {
    let st = Stand::new().await;
    let path = format!("/vehicles/{EV}/commands/charge/set-limit");
    for body in [
        r#"{"data":{"attributes":{"percent":101}}}"#,
        r#"{"data":{"attributes":{"percent":49}}}"#,
        r#"{"data":{"attributes":{"percent":80.5}}}"#,
        r#"{"data":{"attributes":{"percent":"80"}}}"#,
        r#"{"data":{"attributes":{}}}"#,
        r#"{"percent":80}"#,
        "{not json",
    ] {
        let (status, resp) = st.post(&path, ALICE, Some(body)).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(error0(&resp).0, "VALIDATION", "{body}");
    }
    let (status, resp) = st
        .post(
            &path,
            ALICE,
            Some(r#"{"data":{"attributes":{"percent":65}}}"#),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        resp["data"]["attributes"]["parameters"],
        json!({"percent": 65})
    );
    let limits = st.signal_value(EV, ALICE, "charge-chargelimits").await;
    assert_eq!(limits["values"][0]["limit"], 65);
    assert_eq!(limits["activeLimit"], 65);

    let nav = format!("/vehicles/{ICE}/commands/navigation/set-destination");
    let (status, _) = st
        .post(
            &nav,
            BOB,
            Some(r#"{"data":{"attributes":{"latitude":91,"longitude":0}}}"#),
        )
        .await;
    assert_eq!(status, 400);
    let (status, resp) = st
        .post(
            &nav,
            BOB,
            Some(r#"{"data":{"attributes":{"latitude":30.5,"longitude":-97.5}}}"#),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        resp["data"]["attributes"]["commandType"],
        "navigation-set-destination"
    );
    assert_eq!(st.sim.destinations(), vec![(ICE.to_string(), 30.5, -97.5)]);
}

#[tokio::test]
async fn injected_fault_answers_once_then_normal_service_resumes() {
    let st = Stand::new().await;
    st.sim.inject(
        Fault::smartcar(429, "RATE_LIMIT", "VEHICLE", "Slow down.")
            .on("get", "/signals")
            .header("retry-after", "3"),
    );
    let path = format!("/vehicles/{EV}/signals/closure-islocked");
    let resp = st
        .http
        .get(format!("{}{path}", st.sim.api_url()))
        .bearer_auth(&st.token)
        .header("sc-user-id", ALICE)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["retry-after"], "3");
    assert!(resp.headers().contains_key("sc-request-id"));
    let body: Value = resp.json().await.unwrap();
    assert_eq!(error0(&body), ("RATE_LIMIT", "VEHICLE"));
    assert_eq!(body["errors"][0]["status"], "429");

    let (status, _) = st.get(&path, Some(ALICE)).await;
    assert_eq!(status, 200);
    assert_eq!(st.sim.hits("GET", "/signals/closure-islocked"), 2);
    let recorded = st.sim.requests();
    assert_eq!(recorded[0].path, path);
    assert_eq!(recorded[0].header("sc-user-id"), Some(ALICE));

    // A fault without a path is not spent on the token endpoint...
    st.sim.inject(Fault::new(503, "").times(2));
    let resp = st
        .http
        .post(format!("{}/oauth2/token", st.sim.auth_url()))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials&client_id=c&client_secret=s")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(st.get(&path, Some(ALICE)).await.0, 503);
    assert_eq!(st.get(&path, Some(ALICE)).await.0, 503);
    assert_eq!(st.get(&path, Some(ALICE)).await.0, 200);
    // Faults answer in the order queued, so an unused rest must be cleared to let a later
    // one through.
    st.sim.inject(Fault::new(502, "").times(5));
    st.sim.inject(Fault::new(504, ""));
    assert_eq!(st.get(&path, Some(ALICE)).await.0, 502);
    assert_eq!(st.sim.pending_faults(), 2);
    st.sim.clear_faults();
    assert_eq!(st.get(&path, Some(ALICE)).await.0, 200);
    // ...but one naming it is.
    st.sim
        .inject(Fault::new(500, r#"{"error":"server_error"}"#).on("POST", "/oauth2/token"));
    let resp = st
        .http
        .post(format!("{}/oauth2/token", st.sim.auth_url()))
        .body("grant_type=client_credentials&client_id=c&client_secret=s")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 500);

    st.sim.clear_requests();
    assert!(st.sim.requests().is_empty());
    assert_eq!(
        st.sim.token_requests().len(),
        3,
        "clear_requests keeps the token log"
    );
    st.sim.clear_token_requests();
    assert!(st.sim.token_requests().is_empty());
}

#[tokio::test]
async fn deleting_a_user_removes_their_access() {
    let st = Stand::new().await;
    let (status, body, _) = st
        .call("DELETE", &format!("/users/{ALICE}"), None, None)
        .await;
    assert_eq!(status, 204);
    assert_eq!(body, Value::Null);
    let (_, body) = st
        .get(&format!("/connections?filter[userId]={ALICE}"), None)
        .await;
    assert_eq!(body["meta"]["totalCount"], 0);
    let (status, _) = st
        .get(&format!("/vehicles/{EV}/signals"), Some(ALICE))
        .await;
    assert_eq!(status, 404);
    let (status, _) = st
        .post(
            &format!("/vehicles/{PHEV}/commands/security/lock"),
            ALICE,
            None,
        )
        .await;
    assert_eq!(status, 404);
    let (status, _, _) = st
        .call("DELETE", &format!("/users/{ALICE}"), None, None)
        .await;
    assert_eq!(status, 404);

    let (status, _, _) = st
        .call("DELETE", "/connections/conn-bob-ice-03", None, None)
        .await;
    assert_eq!(status, 204);
    let (status, _) = st.get(&format!("/vehicles/{ICE}/signals"), Some(BOB)).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn management_serves_applications_and_secrets() {
    let st = Stand::new().await;
    let (status, body) = st.get("/management/v3/applications", None).await;
    assert_eq!(status, 200);
    let apps = body["data"].as_array().unwrap();
    assert_eq!(apps.len(), 2);
    let id = apps[0]["id"].as_str().unwrap();
    let (status, body) = st
        .get(&format!("/management/v3/applications/{id}"), None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["data"]["attributes"]["name"], "Fleet Console");
    let (_, body) = st
        .get(&format!("/management/v3/applications/{id}/secrets"), None)
        .await;
    let secret = &body["data"][0]["attributes"];
    let value = secret["secret"].as_str().unwrap();
    assert_eq!(secret["clientSecret"], value);
    assert_eq!(secret["hint"], format!("****{}", &value[value.len() - 4..]));
    assert_eq!(st.sim.management_secrets().len(), 4);
    assert!(st.sim.management_secrets().contains(&value.to_string()));
    assert_eq!(st.sim.requests()[0].api, "management");
    assert_eq!(st.sim.requests()[0].path, "/applications");

    let (status, body) = st.get("/management/v3/applications/nope", None).await;
    assert_eq!(status, 404);
    assert_eq!(error0(&body), ("RESOURCE_NOT_FOUND", "PATH"));
}

#[tokio::test]
async fn odd_requests_get_errors_not_panics() {
    let st = Stand::new().await;
    for (method, path) in [
        ("GET", "/nowhere"),
        ("PUT", "/connections"),
        ("GET", "/vehicles/%FF%00/signals/%2F"),
        ("POST", "/vehicles/veh-ev-0001/commands/security/honk"),
        ("GET", "/vehicles//signals"),
        ("GET", "/connections?page[number]=0"),
        ("GET", "/connections?page[number]=abc&page[size]=-1"),
        ("GET", "/connections?filter[vehicle.mode]=banana"),
    ] {
        let (status, body, request_id) = st.call(method, path, Some(ALICE), Some("\u{0}{")).await;
        assert!((400..500).contains(&status), "{method} {path} -> {status}");
        assert!(body["errors"][0]["type"].is_string(), "{method} {path}");
        assert!(request_id.is_some());
    }
    let resp = st
        .http
        .get(format!("{}/vehicles/{EV}", st.sim.auth_url()))
        .bearer_auth(&st.token)
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        404,
        "a path without /v3 is not the vehicle API"
    );
    assert_eq!(st.sim.requests().last().unwrap().api, "other");
}

#[tokio::test]
async fn shutdown_stops_serving() {
    let sim = Simulator::start(SimConfig::default()).await.unwrap();
    assert!(sim.api_url().starts_with("http://127.0.0.1:"));
    sim.shutdown();
    let mut refused = false;
    for _ in 0..50 {
        let fresh = reqwest::Client::new();
        if fresh.get(sim.api_url()).send().await.is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(refused, "the server still answers after shutdown");
}

#[tokio::test]
async fn charge_port_open_and_close_flip_the_flap_signal() {
    let st = Stand::new().await;
    let close = format!("/vehicles/{EV}/commands/charge-port/close");
    let open = format!("/vehicles/{EV}/commands/charge-port/open");
    let (status, body) = st.post(&close, ALICE, None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["data"]["attributes"]["commandType"],
        "charge-port-close"
    );
    assert_eq!(
        st.signal_value(EV, ALICE, "charge-ischargingportflapopen")
            .await,
        json!({"value": false})
    );
    let (status, _) = st.post(&open, ALICE, None).await;
    assert_eq!(status, 200);
    assert_eq!(
        st.signal_value(EV, ALICE, "charge-ischargingportflapopen")
            .await,
        json!({"value": true})
    );
    let (status, body) = st
        .post(
            &format!("/vehicles/{ICE}/commands/charge-port/open"),
            BOB,
            None,
        )
        .await;
    assert_eq!(status, 501, "a petrol car has no charge port: {body}");
}
