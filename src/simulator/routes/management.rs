//! The undocumented `/applications` endpoints of the Management API (the `management` toolset).

use axum::response::Response;
use serde_json::{Value, json};

use crate::simulator::reply::{ApiError, json_response};
use crate::simulator::seed;
use crate::simulator::state::State;

pub(super) fn management(
    st: &State,
    method: &str,
    segs: &[&str],
) -> Option<Result<Response, ApiError>> {
    let app_json = |a: &seed::Application| {
        json!({"id": a.id, "type": "application",
               "attributes": {"name": a.name, "description": a.description,
                              "createdAt": a.created_at, "updatedAt": a.updated_at},
               "links": {"self": format!("/applications/{}", a.id)}})
    };
    let find = |id: &str| {
        st.fleet
            .application(id)
            .ok_or_else(|| ApiError::not_found_path(format!("Application {id} was not found.")))
    };
    Some(match (method, segs) {
        ("GET", ["applications"]) => {
            let data: Vec<Value> = st.fleet.applications.iter().map(app_json).collect();
            let total = data.len();
            Ok(json_response(
                200,
                &json!({"data": data, "meta": {"totalCount": total}}),
            ))
        }
        ("GET", ["applications", id]) => {
            find(id).map(|a| json_response(200, &json!({"data": app_json(a)})))
        }
        ("GET", ["applications", id, "secrets"]) => find(id).map(|a| {
            // Deliberately carries the secret value twice (`secret`, `clientSecret`) so tests
            // prove the MCP strips every spelling before a model sees it.
            let data: Vec<Value> = a
                .secrets
                .iter()
                .map(|s| {
                    let tail = &s.value[s.value.len().saturating_sub(4)..];
                    json!({"id": s.id, "type": "application-secret",
                           "attributes": {"name": s.name, "hint": format!("****{tail}"),
                                          "secret": s.value, "clientSecret": s.value,
                                          "createdAt": s.created_at},
                           "relationships": {"application": {"data": {"id": a.id, "type": "application"}}}})
                })
                .collect();
            let total = data.len();
            json_response(200, &json!({"data": data, "meta": {"totalCount": total}}))
        }),
        _ => return None,
    })
}
