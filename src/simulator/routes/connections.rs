//! Connections and users (the `connections` toolset): list, get and remove connections, remove
//! a user with all of theirs.

use axum::response::Response;
use serde_json::{Value, json};

use super::LINK_VALUE;
use super::paging::parse_page;
use super::{RecordedRequest, query, sc_user_id};
use crate::simulator::reply::{ApiError, json_response, no_content};
use crate::simulator::seed::Connection;
use crate::simulator::state::State;
use percent_encoding::utf8_percent_encode;

pub(super) fn connection_json(st: &State, base: &str, c: &Connection) -> Value {
    let vehicle = st.fleet.vehicle(&c.vehicle_id).map(|v| {
        json!({"make": v.make, "model": v.model, "year": v.year, "mode": v.mode,
               "powertrainType": v.powertrain.as_str()})
    });
    json!({
        "id": c.id,
        "type": "connection",
        "attributes": {"permissions": c.permissions, "vehicle": vehicle},
        "relationships": {
            "vehicle": {"data": {"id": c.vehicle_id, "type": "vehicle"},
                        "links": {"related": format!("{base}/vehicles/{}", c.vehicle_id)}},
            "user": {"data": {"id": c.user_id, "type": "user"}}
        },
        "meta": {"createdAt": c.created_at, "updatedAt": c.updated_at},
        "links": {"self": format!("{base}/connections/{}", c.id)}
    })
}

pub(super) fn list_connections(
    st: &State,
    base: &str,
    req: &RecordedRequest,
) -> Result<Response, ApiError> {
    let user = query(req, &["filter[userId]"]);
    let vehicle = query(req, &["filter[vehicleId]"]);
    // Spelled two ways by third-party clients; each seeded user's external id is `ext-<id>`.
    let external = query(req, &["filter[user.externalId]", "filter[userExternalId]"]);
    let mode = query(req, &["filter[vehicle.mode]"]).map(str::to_ascii_lowercase);
    if let Some(m) = &mode
        && m != "live"
        && m != "simulated"
    {
        return Err(ApiError::validation(
            "BAD_REQUEST",
            format!("filter[vehicle.mode] must be live or simulated (got {m:?})."),
        ));
    }
    let header_user = sc_user_id(req);
    // No default mode filter: 3P-HA's "default live" is unconfirmed, and hiding the simulated
    // vehicle unless asked would make the demo fleet look smaller than it is.
    let matching: Vec<&Connection> = st
        .fleet
        .connections
        .iter()
        .filter(|c| user.is_none_or(|u| c.user_id == u))
        .filter(|c| header_user.is_none_or(|u| c.user_id == u))
        .filter(|c| vehicle.is_none_or(|v| c.vehicle_id == v))
        .filter(|c| external.is_none_or(|e| e.strip_prefix("ext-") == Some(c.user_id.as_str())))
        .filter(|c| {
            mode.as_deref()
                .is_none_or(|m| st.fleet.vehicle(&c.vehicle_id).is_some_and(|v| v.mode == m))
        })
        .collect();
    let total = matching.len();
    let page = parse_page(req, total, false)?;
    let data: Vec<Value> = page
        .slice(&matching)
        .iter()
        .map(|c| connection_json(st, base, c))
        .collect();
    let filters: String = req
        .query
        .iter()
        .filter(|(k, _)| k.starts_with("filter["))
        .map(|(k, v)| format!("{k}={}&", utf8_percent_encode(v, LINK_VALUE)))
        .collect();
    Ok(json_response(
        200,
        &json!({
            "data": data,
            "meta": {"pageNumber": page.number, "pageSize": page.size, "totalCount": total},
            "links": page.links("/connections", &filters, total),
        }),
    ))
}

/// The connection an id names, hidden when `sc-user-id` names someone else.
pub(super) fn visible_connection(
    st: &State,
    req: &RecordedRequest,
    id: &str,
) -> Result<usize, ApiError> {
    let not_found = || {
        ApiError::new(
            404,
            "RESOURCE_NOT_FOUND",
            "PATH",
            format!("Connection {id} was not found."),
        )
    };
    let i = st.fleet.find_connection(id).ok_or_else(not_found)?;
    match sc_user_id(req) {
        Some(u) if st.fleet.connections[i].user_id != u => Err(not_found()),
        _ => Ok(i),
    }
}

pub(super) fn get_connection(
    st: &State,
    base: &str,
    req: &RecordedRequest,
    id: &str,
) -> Result<Response, ApiError> {
    let i = visible_connection(st, req, id)?;
    Ok(json_response(
        200,
        &json!({"data": connection_json(st, base, &st.fleet.connections[i])}),
    ))
}

pub(super) fn delete_connection(
    st: &mut State,
    req: &RecordedRequest,
    id: &str,
) -> Result<Response, ApiError> {
    let i = visible_connection(st, req, id)?;
    st.fleet.connections.remove(i);
    Ok(no_content())
}

pub(super) fn delete_user(st: &mut State, id: &str) -> Result<Response, ApiError> {
    let Some(i) = st.fleet.users.iter().position(|u| u == id) else {
        return Err(ApiError::not_found_path(format!(
            "User {id} was not found."
        )));
    };
    st.fleet.users.remove(i);
    st.fleet.connections.retain(|c| c.user_id != id);
    Ok(no_content())
}
