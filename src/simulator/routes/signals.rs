//! Vehicles and signals (the `signals` toolset): a vehicle, its signal list and one signal, each
//! behind the `sc-user-id` check.

use axum::response::Response;
use serde_json::{Value, json};

use super::paging::parse_page;
use super::{RecordedRequest, sc_user_id};
use crate::catalogue::{SIGNALS, Signal};
use crate::simulator::reply::{ApiError, json_response};
use crate::simulator::seed::Vehicle;
use crate::simulator::state::State;

pub(super) fn vehicle_not_found(id: &str) -> ApiError {
    ApiError::not_found_path(format!("Vehicle {id} was not found."))
}

/// A vehicle the application is connected to; one whose connections were all removed is gone
/// as far as the application is concerned.
pub(super) fn connected_vehicle<'a>(st: &'a State, id: &str) -> Result<&'a Vehicle, ApiError> {
    match st.fleet.vehicle(id) {
        Some(v) if st.fleet.is_connected(id) => Ok(v),
        _ => Err(vehicle_not_found(id)),
    }
}

/// Checks `sc-user-id` and that this user holds a connection to the vehicle.
pub(super) fn check_user(
    st: &State,
    req: &RecordedRequest,
    vehicle_id: &str,
) -> Result<(), ApiError> {
    let Some(user) = sc_user_id(req) else {
        return Err(ApiError::validation(
            "MISSING_PARAMETER",
            "The sc-user-id header is required.",
        ));
    };
    if st.fleet.vehicle(vehicle_id).is_none() {
        return Err(vehicle_not_found(vehicle_id));
    }
    if !st.fleet.owns(user, vehicle_id) {
        return Err(ApiError::not_found_path(format!(
            "Vehicle {vehicle_id} is not connected for user {user}."
        )));
    }
    Ok(())
}

pub(super) fn vehicle_summary(v: &Vehicle) -> Value {
    json!({"id": v.id, "type": "vehicle",
           "attributes": {"make": v.make, "model": v.model, "year": v.year},
           "links": {"self": format!("/vehicles/{}", v.id)}})
}

pub(super) fn get_vehicle(st: &State, id: &str) -> Result<Response, ApiError> {
    let v = connected_vehicle(st, id)?;
    Ok(json_response(
        200,
        &json!({"data": {
            "id": v.id,
            "type": "vehicle",
            "attributes": {"make": v.make, "model": v.model, "year": v.year,
                           "powertrainType": v.powertrain.as_str(), "mode": v.mode},
            "links": {"self": format!("/vehicles/{}", v.id)}
        }}),
    ))
}

const NOT_CAPABLE: &str = "The vehicle is incapable of performing your request.";

pub(super) fn signal_resource(v: &Vehicle, sig: &Signal) -> Value {
    let links = json!({"self": format!("/vehicles/{}/signals/{}", v.id, sig.code),
                       "vehicle": format!("/vehicles/{}", v.id)});
    match v.signals.get(sig.code) {
        Some(body) => {
            let (retrieved, oem) = v.signal_times(sig.code);
            json!({
                "id": sig.code,
                "type": "signal",
                "attributes": {"code": sig.code, "name": sig.name, "group": sig.group_title,
                               "status": {"value": "SUCCESS"}, "body": body},
                "meta": {"retrievedAt": retrieved, "oemUpdatedAt": oem},
                "links": links
            })
        }
        None => json!({
            "id": sig.code,
            "type": "signal",
            "attributes": {"code": sig.code, "name": sig.name, "group": sig.group_title,
                           "status": {"value": "ERROR", "error": {
                               "type": "COMPATIBILITY", "code": "VEHICLE_NOT_CAPABLE",
                               "description": NOT_CAPABLE,
                               "resolution": {"type": "CONTACT_SUPPORT"}}}},
            "meta": {},
            "links": links
        }),
    }
}

/// With no page parameter the list holds every signal on one page, as the docs describe
/// ("one call returns every signal the vehicle has"); page parameters of either spelling
/// slice it.
pub(super) fn list_signals(
    st: &State,
    req: &RecordedRequest,
    id: &str,
) -> Result<Response, ApiError> {
    check_user(st, req, id)?;
    let v = connected_vehicle(st, id)?;
    let all: Vec<&Signal> = if st.unsubscribed.contains(id) {
        Vec::new()
    } else {
        SIGNALS.iter().collect()
    };
    let total = all.len();
    let page = parse_page(req, total, true)?;
    let data: Vec<Value> = page
        .slice(&all)
        .iter()
        .map(|s| signal_resource(v, s))
        .collect();
    let path = format!("/vehicles/{}/signals", v.id);
    Ok(json_response(
        200,
        &json!({
            "data": data,
            "meta": {"page": page.number, "pageSize": page.size, "totalCount": total},
            "links": page.links(&path, "", total),
            "included": {"vehicle": vehicle_summary(v)},
        }),
    ))
}

pub(super) fn get_signal(
    st: &State,
    req: &RecordedRequest,
    id: &str,
    code: &str,
) -> Result<Response, ApiError> {
    check_user(st, req, id)?;
    let v = connected_vehicle(st, id)?;
    let Some(sig) = SIGNALS.iter().find(|s| s.code == code) else {
        return Err(ApiError::new(
            404,
            "RESOURCE_NOT_FOUND",
            "SIGNAL_NOT_FOUND",
            format!(
                "Signal {code} was not found. Signal codes look like tractionbattery-stateofcharge."
            ),
        ));
    };
    if !v.signals.contains_key(sig.code) {
        return Err(ApiError::not_capable(format!(
            "{} {} {} cannot provide {}.",
            v.year, v.make, v.model, sig.code
        )));
    }
    let resource = signal_resource(v, sig);
    let body = if st.single_signal_wrapped {
        json!({"data": resource, "included": {"vehicle": vehicle_summary(v)}})
    } else {
        resource
    };
    Ok(json_response(200, &body))
}
