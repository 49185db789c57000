//! Charge schedules (the `schedules` toolset): daily, weekly and workweek bodies become LOCATION
//! timers in `charge-chargetimers`, which a delete removes
//! (https://smartcar.com/docs/api-reference/charge-schedules/set-daily-charge-schedule).

use axum::response::Response;
use serde_json::{Map, Value, json};

use super::RecordedRequest;
use super::commands::{command_attributes, number_attr, ranged};
use super::signals::{check_user, vehicle_not_found};
use crate::simulator::reply::{self, ApiError, json_response};
use crate::simulator::seed::Vehicle;
use crate::simulator::state::State;

const WEEK: [&str; 7] = [
    "MONDAY",
    "TUESDAY",
    "WEDNESDAY",
    "THURSDAY",
    "FRIDAY",
    "SATURDAY",
    "SUNDAY",
];

/// `at` is where `attrs` sits under `data.attributes`, for the messages (`days.monday.`).
pub(super) fn clock_attr(
    attrs: &Map<String, Value>,
    at: &str,
    name: &str,
) -> Result<String, ApiError> {
    let v = attrs.get(name).and_then(Value::as_str).ok_or_else(|| {
        ApiError::validation(
            "MISSING_PARAMETER",
            format!("data.attributes.{at}{name} is required (HH:MM)."),
        )
    })?;
    let ok = v.len() == 5
        && v.as_bytes()[2] == b':'
        && v[..2].parse::<u8>().is_ok_and(|h| h < 24)
        && v[3..].parse::<u8>().is_ok_and(|m| m < 60)
        && v.bytes()
            .enumerate()
            .all(|(i, b)| i == 2 || b.is_ascii_digit());
    if ok {
        Ok(v.to_string())
    } else {
        Err(ApiError::validation(
            "INVALID_INPUT_FORMAT",
            format!("data.attributes.{at}{name} must be HH:MM (got {v:?})."),
        ))
    }
}

/// Tesla only, as far as this stand-in goes (Smartcar: Tesla and Volvo; others answer 501).
pub(super) fn schedule_vehicle<'a>(
    st: &'a mut State,
    id: &str,
) -> Result<&'a mut Vehicle, ApiError> {
    let v = st
        .fleet
        .vehicle_mut(id)
        .ok_or_else(|| vehicle_not_found(id))?;
    if v.make != "Tesla" {
        return Err(ApiError::not_capable(format!(
            "{} {} {} does not support charge schedules.",
            v.year, v.make, v.model
        )));
    }
    Ok(v)
}

/// The vehicle's `charge-chargetimers` body to change, or an empty list when it reports none.
pub(super) fn charge_timers(v: &Vehicle) -> Value {
    v.signals
        .get("charge-chargetimers")
        .cloned()
        .unwrap_or_else(|| json!({"values": []}))
}

pub(super) fn schedule_execution(
    exec_id: String,
    action: &str,
    schedule_type: &str,
    vehicle: &str,
    schedule_id: &str,
    parameters: Value,
    now: u64,
) -> Response {
    json_response(
        200,
        &json!({"data": {
            "id": exec_id,
            "type": "charge-schedule-execution",
            "attributes": {"action": action, "scheduleType": schedule_type,
                           "status": {"value": "SUCCESS"}, "executionMode": "sync",
                           "scheduleId": schedule_id, "parameters": parameters},
            "links": {"schedule": format!("/vehicles/{vehicle}/charge-schedules/{schedule_id}")},
            "meta": {"executedAt": reply::iso8601(now.saturating_sub(1000)),
                     "completedAt": reply::iso8601(now)}
        }}),
    )
}

/// One charging window of a schedule body: `{startTime, stopTime}` under `data.attributes.{at}`.
pub(super) fn window(
    attrs: &Map<String, Value>,
    at: &str,
    days: &[&str],
) -> Result<Value, ApiError> {
    let start = clock_attr(attrs, at, "startTime")?;
    let stop = clock_attr(attrs, at, "stopTime")?;
    Ok(json!({"start": start, "end": stop, "days": days}))
}

pub(super) fn window_object<'a>(
    attrs: &'a Map<String, Value>,
    name: &str,
) -> Result<Option<&'a Map<String, Value>>, ApiError> {
    match attrs.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(o)) => Ok(Some(o)),
        Some(_) => Err(ApiError::validation(
            "INVALID_INPUT_FORMAT",
            format!("data.attributes.{name} must be an object {{startTime, stopTime}}."),
        )),
    }
}

/// The windows of a daily, weekly (`days` keyed by weekday) or workweek (`weekdays`, optional
/// `weekends`) body, in the `schedules` form `charge-chargetimers` reports.
pub(super) fn schedule_windows(
    attrs: &Map<String, Value>,
    kind: &str,
) -> Result<Vec<Value>, ApiError> {
    match kind {
        "daily" => Ok(vec![window(attrs, "", &WEEK)?]),
        "weekly" => {
            let Some(days) = window_object(attrs, "days")?.filter(|d| !d.is_empty()) else {
                return Err(ApiError::validation(
                    "MISSING_PARAMETER",
                    "data.attributes.days is required: an object keyed by weekday.",
                ));
            };
            let mut out = Vec::new();
            for (day, w) in days {
                let Some(upper) = WEEK.iter().find(|d| d.eq_ignore_ascii_case(day)) else {
                    return Err(ApiError::validation(
                        "INVALID_INPUT_FORMAT",
                        format!("data.attributes.days.{day} is not a weekday."),
                    ));
                };
                let Value::Object(w) = w else {
                    return Err(ApiError::validation(
                        "INVALID_INPUT_FORMAT",
                        format!("data.attributes.days.{day} must be {{startTime, stopTime}}."),
                    ));
                };
                out.push(window(w, &format!("days.{day}."), &[upper])?);
            }
            Ok(out)
        }
        _ => {
            let Some(weekdays) = window_object(attrs, "weekdays")? else {
                return Err(ApiError::validation(
                    "MISSING_PARAMETER",
                    "data.attributes.weekdays {startTime, stopTime} is required.",
                ));
            };
            let mut out = vec![window(weekdays, "weekdays.", &WEEK[..5])?];
            if let Some(weekends) = window_object(attrs, "weekends")? {
                out.push(window(weekends, "weekends.", &WEEK[5..])?);
            }
            Ok(out)
        }
    }
}

/// Adds a LOCATION timer with its scheduleId to `charge-chargetimers`.
pub(super) fn set_schedule(
    st: &mut State,
    req: &RecordedRequest,
    id: &str,
    kind: &str,
) -> Result<Response, ApiError> {
    check_user(st, req, id)?;
    let attrs = command_attributes(&req.body)?;
    let location = match attrs.get("location") {
        Some(Value::Object(l)) => l.clone(),
        _ => {
            return Err(ApiError::validation(
                "MISSING_PARAMETER",
                "data.attributes.location {latitude, longitude} is required.",
            ));
        }
    };
    let lat = ranged(
        "location.latitude",
        number_attr(&location, "latitude")?,
        -90.0,
        90.0,
    )?;
    let lon = ranged(
        "location.longitude",
        number_attr(&location, "longitude")?,
        -180.0,
        180.0,
    )?;
    let schedules = schedule_windows(&attrs, kind)?;
    let exec_id = st.next_exec_id();
    let schedule_id = format!("sched_{}", exec_id.trim_start_matches("exec_"));
    let now = reply::now_ms();
    let v = schedule_vehicle(st, id)?;
    let mut timers = charge_timers(v);
    if let Some(values) = timers.get_mut("values").and_then(Value::as_array_mut) {
        values.push(json!({
            "type": "LOCATION",
            "scheduleType": kind,
            "scheduleId": schedule_id,
            "condition": {"name": null, "address": null, "latitude": lat, "longitude": lon,
                          "connectorType": null},
            "schedules": schedules,
            "departureTimers": [],
            "isOEMOptimizationEnabled": false
        }));
    }
    v.set_signal("charge-chargetimers", timers, now);
    // What was asked, as Smartcar echoes it: the body's attributes.
    let parameters = Value::Object(attrs.clone());
    Ok(schedule_execution(
        exec_id,
        "create",
        kind,
        id,
        &schedule_id,
        parameters,
        now,
    ))
}

pub(super) fn delete_schedule(
    st: &mut State,
    req: &RecordedRequest,
    id: &str,
    schedule_id: &str,
) -> Result<Response, ApiError> {
    check_user(st, req, id)?;
    let exec_id = st.next_exec_id();
    let now = reply::now_ms();
    let v = schedule_vehicle(st, id)?;
    let mut timers = charge_timers(v);
    let values = timers.get_mut("values").and_then(Value::as_array_mut);
    let Some(at) = values
        .as_ref()
        .and_then(|vs| vs.iter().position(|t| t["scheduleId"] == schedule_id))
    else {
        return Err(ApiError::not_found_path(format!(
            "Charge schedule {schedule_id} was not found on vehicle {id}."
        )));
    };
    let removed = values.expect("found in it").remove(at);
    let kind = removed["scheduleType"]
        .as_str()
        .unwrap_or("daily")
        .to_string();
    v.set_signal("charge-chargetimers", timers, now);
    Ok(schedule_execution(
        exec_id,
        "delete",
        &kind,
        id,
        schedule_id,
        json!({}),
        now,
    ))
}
