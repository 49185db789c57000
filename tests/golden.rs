//! Every tool sends exactly the request Smartcar documents (tests/golden/requests.json).

use std::collections::BTreeSet;

use serde_json::Value;
use smartcar_mcp::catalogue::TOOLS;

use crate::common;

fn golden() -> Vec<Value> {
    let text = include_str!("golden/requests.json");
    let doc: Value = serde_json::from_str(text).expect("golden file is JSON");
    doc["rows"].as_array().expect("rows").clone()
}

#[test]
fn every_tool_has_a_golden_row() {
    let covered: BTreeSet<String> = golden()
        .iter()
        .map(|r| r["tool"].as_str().unwrap().to_string())
        .collect();
    let missing: Vec<&str> = TOOLS
        .iter()
        .map(|t| t.name)
        .filter(|n| !covered.contains(*n))
        .collect();
    assert!(
        missing.is_empty(),
        "tools without a golden request row: {missing:?}"
    );
    for name in &covered {
        assert!(
            TOOLS.iter().any(|t| t.name == name),
            "golden row for unknown tool {name}"
        );
    }
}

#[tokio::test]
async fn every_tool_sends_the_documented_request() {
    let sim = common::simulator().await;
    let shared = common::shared(common::settings(&sim));
    for row in golden() {
        let tool = row["tool"].as_str().unwrap();
        sim.clear_requests();
        let result = common::execute_only(&shared, tool, row["args"].clone()).await;
        let sent = sim.requests();
        assert_eq!(
            sent.len(),
            1,
            "{tool} {}: expected one request, got {sent:?}; result {result:?}",
            row["args"]
        );
        let req = &sent[0];
        let ctx = format!("{tool} {}", row["args"]);
        assert_eq!(req.api, row["api"].as_str().unwrap(), "{ctx}: base URL");
        assert_eq!(req.method, row["method"].as_str().unwrap(), "{ctx}: method");
        assert_eq!(req.path, row["path"].as_str().unwrap(), "{ctx}: path");
        let query: Vec<(String, String)> = row["query"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p[0].as_str().unwrap().to_string(),
                    p[1].as_str().unwrap().to_string(),
                )
            })
            .collect();
        assert_eq!(req.query, query, "{ctx}: query");
        assert_eq!(
            req.header("sc-user-id"),
            row["sc_user_id"].as_str(),
            "{ctx}: sc-user-id"
        );
        let auth = req.header("authorization").unwrap_or("");
        if req.api == "compatibility" {
            // Smartcar's Compatibility API is public: its official example sends no credentials.
            assert_eq!(auth, "", "{ctx}: no credentials to the Compatibility API");
        } else {
            assert!(
                auth.starts_with("Bearer ") && auth.len() > 8,
                "{ctx}: bearer token missing"
            );
        }
        match &row["body"] {
            Value::Null => assert!(req.body.is_empty(), "{ctx}: unexpected body {}", req.body),
            expected => {
                assert_eq!(req.json().as_ref(), Some(expected), "{ctx}: body");
                assert_eq!(
                    req.header("content-type"),
                    Some("application/json"),
                    "{ctx}: content type"
                );
            }
        }
    }
    sim.shutdown();
}
