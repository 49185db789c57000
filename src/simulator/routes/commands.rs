//! Vehicle commands (the `commands` toolset): body checks, then the state change a real car
//! would make, so later reads and pushed webhooks show it.

use axum::response::Response;
use serde_json::{Map, Value, json};

use super::push::vehicle_state_event;
use super::signals::{check_user, vehicle_not_found};
use super::{RecordedRequest, catalogue_signal};
use crate::simulator::reply::{self, ApiError, json_response};
use crate::simulator::seed::{self, Vehicle};
use crate::simulator::state::State;

#[derive(Clone, Copy, PartialEq)]
pub(super) enum Command {
    Lock,
    Unlock,
    ChargeStart,
    ChargeStop,
    SetLimit,
    SetDestination,
    ChargePortOpen,
    ChargePortClose,
}

impl Command {
    fn parse(group: &str, action: &str) -> Option<Self> {
        Some(match (group, action) {
            ("security", "lock") => Command::Lock,
            ("security", "unlock") => Command::Unlock,
            ("charge", "start") => Command::ChargeStart,
            ("charge", "stop") => Command::ChargeStop,
            ("charge", "set-limit") => Command::SetLimit,
            ("navigation", "set-destination") => Command::SetDestination,
            // Not a tool of the shipped catalogue: here so CONTRIBUTING's worked example of a
            // YAML-only tool runs end to end against the simulator.
            ("charge-port", "open") => Command::ChargePortOpen,
            ("charge-port", "close") => Command::ChargePortClose,
            _ => return None,
        })
    }

    fn command_type(self) -> &'static str {
        match self {
            Command::Lock => "security-lock",
            Command::Unlock => "security-unlock",
            Command::ChargeStart => "charge-start",
            Command::ChargeStop => "charge-stop",
            Command::SetLimit => "charge-set-limit",
            Command::SetDestination => "navigation-set-destination",
            Command::ChargePortOpen => "charge-port-open",
            Command::ChargePortClose => "charge-port-close",
        }
    }

    fn is_charge(self) -> bool {
        matches!(
            self,
            Command::ChargeStart
                | Command::ChargeStop
                | Command::SetLimit
                | Command::ChargePortOpen
                | Command::ChargePortClose
        )
    }
}

/// `data.attributes` of a command body.
pub(super) fn command_attributes(body: &str) -> Result<Map<String, Value>, ApiError> {
    if body.trim().is_empty() {
        return Err(ApiError::validation(
            "MISSING_PARAMETER",
            "The request body is required: {\"data\":{\"attributes\":{...}}}.",
        ));
    }
    let json: Value = serde_json::from_str(body).map_err(|e| {
        ApiError::validation(
            "INVALID_INPUT_FORMAT",
            format!("The request body is not valid JSON: {e}."),
        )
    })?;
    match json.pointer("/data/attributes") {
        Some(Value::Object(attrs)) => Ok(attrs.clone()),
        _ => Err(ApiError::validation(
            "MISSING_PARAMETER",
            "The request body must be {\"data\":{\"attributes\":{...}}}.",
        )),
    }
}

pub(super) fn number_attr(attrs: &Map<String, Value>, name: &str) -> Result<f64, ApiError> {
    match attrs.get(name) {
        None | Some(Value::Null) => Err(ApiError::validation(
            "MISSING_PARAMETER",
            format!("data.attributes.{name} is required."),
        )),
        Some(v) => v.as_f64().ok_or_else(|| {
            ApiError::validation(
                "INVALID_INPUT_FORMAT",
                format!("data.attributes.{name} must be a number (got {v})."),
            )
        }),
    }
}

pub(super) fn ranged(name: &str, value: f64, min: f64, max: f64) -> Result<f64, ApiError> {
    if (min..=max).contains(&value) {
        Ok(value)
    } else {
        Err(ApiError::validation(
            "BAD_REQUEST",
            format!("data.attributes.{name} must be between {min} and {max} (got {value})."),
        ))
    }
}

/// `None` for an unknown command path, so it falls through to the 404 route answer.
pub(super) fn command(
    st: &mut State,
    req: &RecordedRequest,
    id: &str,
    group: &str,
    action: &str,
) -> Option<Result<Response, ApiError>> {
    let cmd = Command::parse(group, action)?;
    Some(run_command(st, req, id, cmd))
}

pub(super) fn run_command(
    st: &mut State,
    req: &RecordedRequest,
    id: &str,
    cmd: Command,
) -> Result<Response, ApiError> {
    check_user(st, req, id)?;
    let parameters = match cmd {
        Command::SetLimit => {
            let attrs = command_attributes(&req.body)?;
            let percent = number_attr(&attrs, "percent")?;
            if percent.fract() != 0.0 {
                return Err(ApiError::validation(
                    "INVALID_INPUT_FORMAT",
                    format!("data.attributes.percent must be an integer (got {percent})."),
                ));
            }
            let percent = ranged("percent", percent, 50.0, 100.0)? as i64;
            Some(json!({"percent": percent}))
        }
        Command::SetDestination => {
            let attrs = command_attributes(&req.body)?;
            let lat = ranged("latitude", number_attr(&attrs, "latitude")?, -90.0, 90.0)?;
            let lon = ranged(
                "longitude",
                number_attr(&attrs, "longitude")?,
                -180.0,
                180.0,
            )?;
            Some(json!({"latitude": lat, "longitude": lon}))
        }
        _ => None,
    };
    let now = reply::now_ms();
    let ignore = st.ignore_commands;
    let Some(v) = st.fleet.vehicle_mut(id) else {
        return Err(vehicle_not_found(id));
    };
    if cmd.is_charge() && !v.powertrain.can_charge() {
        return Err(ApiError::not_capable(format!(
            "{} {} {} has no traction battery to charge.",
            v.year, v.make, v.model
        )));
    }
    match cmd {
        // A car that says yes and does nothing: no state changes, no webhook.
        _ if ignore => {}
        Command::Lock | Command::Unlock => set_locked(v, cmd == Command::Lock, now),
        Command::ChargeStart | Command::ChargeStop => {
            set_charging(v, cmd == Command::ChargeStart, now)?
        }
        Command::SetLimit => {
            let percent = parameters
                .as_ref()
                .and_then(|p| p["percent"].as_i64())
                .unwrap_or(80);
            set_limit(v, percent, now);
        }
        Command::ChargePortOpen | Command::ChargePortClose => set_scalar(
            v,
            "charge-ischargingportflapopen",
            json!(cmd == Command::ChargePortOpen),
            now,
        ),
        Command::SetDestination => {
            let lat = parameters.as_ref().and_then(|p| p["latitude"].as_f64());
            let lon = parameters.as_ref().and_then(|p| p["longitude"].as_f64());
            if let (Some(lat), Some(lon)) = (lat, lon) {
                st.destinations.push((id.to_string(), lat, lon));
            }
        }
    }
    if st.webhook.is_some() && !ignore {
        let event = vehicle_state_event(st, id, req.header("sc-user-id"), now);
        st.outbox.push(event);
    }
    let mut attributes = json!({
        "commandType": cmd.command_type(),
        "status": {"value": "SUCCESS"},
        "executionMode": "sync",
    });
    if let Some(p) = parameters {
        attributes["parameters"] = p;
    }
    let exec_id = st.next_exec_id();
    Ok(json_response(
        200,
        &json!({"data": {
            "id": exec_id,
            "type": "command-execution",
            "attributes": attributes,
            "meta": {"executedAt": reply::iso8601(now.saturating_sub(1000)),
                     "completedAt": reply::iso8601(now),
                     "durationInSeconds": 1}
        }}),
    ))
}

/// Sets a scalar signal the way the seed shapes it (`{value}` plus the documented unit).
pub(super) fn set_scalar(v: &mut Vehicle, code: &'static str, value: Value, now: u64) {
    if let Some(sig) = catalogue_signal(code) {
        let body = seed::scalar_body(sig.code, v.powertrain, value);
        v.set_signal(sig.code, body, now);
    }
}

pub(super) fn set_locked(v: &mut Vehicle, locked: bool, now: u64) {
    set_scalar(v, "closure-islocked", json!(locked), now);
    for code in [
        "closure-doors",
        "closure-fronttrunk",
        "closure-reartrunk",
        "closure-tailgate",
    ] {
        let Some(mut body) = v.signals.get(code).cloned() else {
            continue;
        };
        if let Some(values) = body.get_mut("values").and_then(Value::as_array_mut) {
            for door in values {
                door["isLocked"] = json!(locked);
            }
        } else if body.get("isLocked").is_some() {
            body["isLocked"] = json!(locked);
        }
        v.set_signal(code, body, now);
    }
}

pub(super) fn set_charging(v: &mut Vehicle, start: bool, now: u64) -> Result<(), ApiError> {
    let charging = v.bool_signal("charge-ischarging").unwrap_or(false);
    if start {
        if v.bool_signal("charge-ischargingcableconnected") == Some(false) {
            return Err(ApiError::vehicle_state(
                "CHARGING_PLUG_NOT_CONNECTED",
                "The charging cable is not plugged in.",
            ));
        }
        if charging {
            return Err(ApiError::vehicle_state(
                "CHARGING_IN_PROGRESS",
                "The vehicle is already charging.",
            ));
        }
    } else if !charging {
        return Err(ApiError::vehicle_state(
            "NOT_CHARGING",
            "The vehicle is not charging.",
        ));
    }
    let live = if start {
        seed::charging_figures(v.powertrain)
    } else {
        seed::Charging::default()
    };
    set_scalar(v, "charge-ischarging", json!(start), now);
    let status = if start { "CHARGING" } else { "NOT_CHARGING" };
    set_scalar(v, "charge-detailedchargingstatus", json!(status), now);
    let color = if start { "GREEN" } else { "BLUE" };
    set_scalar(v, "charge-chargeportstatuscolor", json!(color), now);
    set_scalar(v, "charge-amperage", json!(live.amperes), now);
    set_scalar(v, "charge-chargerate", json!(live.miles_per_hour), now);
    set_scalar(v, "charge-wattage", json!(live.watts), now);
    set_scalar(
        v,
        "charge-timetocomplete",
        json!(live.minutes_to_complete),
        now,
    );
    Ok(())
}

pub(super) fn set_limit(v: &mut Vehicle, percent: i64, now: u64) {
    let Some(mut body) = v.signals.get("charge-chargelimits").cloned() else {
        return;
    };
    let mut found = false;
    if let Some(values) = body.get_mut("values").and_then(Value::as_array_mut) {
        for limit in values.iter_mut().filter(|l| l["type"] == "GLOBAL") {
            limit["limit"] = json!(percent);
            found = true;
        }
        if !found {
            values.push(json!({"type": "GLOBAL", "limit": percent, "condition": null}));
        }
    }
    body["activeLimit"] = json!(percent);
    v.set_signal("charge-chargelimits", body, now);
    set_scalar(v, "charge-activelimit", json!(percent), now);
}
