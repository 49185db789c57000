//! Webhooks and subscriptions on the Management API, as Smartcar documents them: webhooks are
//! made in the Dashboard and only read here (https://smartcar.com/docs/api-reference/get-webhook,
//! list-webhooks); vehicles are subscribed with `POST /subscriptions` (202, 409 when the
//! subscription exists; https://smartcar.com/docs/api-reference/create-subscription) and listed
//! and removed under `/subscriptions`.

use serde_json::{Value, json};

use crate::simulator::RecordedRequest;
use crate::simulator::reply::{ApiError, json_response, no_content};
use crate::simulator::seed::Fleet;
use axum::response::Response;

pub const WEBHOOK_STATE: &str = "wh-0a1b2c3d-state";
pub const WEBHOOK_ERRORS: &str = "wh-4e5f6a7b-errors";

pub struct Webhook {
    pub id: &'static str,
    pub name: &'static str,
    pub callback_uri: &'static str,
    pub enabled: bool,
    pub auto_subscribe: bool,
    pub triggers: &'static [&'static str],
    pub data: &'static [&'static str],
}

pub struct Subscription {
    pub id: String,
    pub webhook_id: String,
    pub user_id: String,
    pub vehicle_id: String,
}

pub struct Hooks {
    pub webhooks: Vec<Webhook>,
    pub subscriptions: Vec<Subscription>,
    next: u64,
}

impl Hooks {
    /// Two Dashboard webhooks; the EV is subscribed to the first.
    pub fn seeded() -> Self {
        Hooks {
            webhooks: vec![
                Webhook {
                    id: WEBHOOK_STATE,
                    name: "Fleet state",
                    callback_uri: "https://fleet.example.com/smartcar/state",
                    enabled: true,
                    auto_subscribe: false,
                    triggers: &["charge-ischarging", "closure-islocked"],
                    data: &["tractionbattery-stateofcharge", "location-preciselocation"],
                },
                Webhook {
                    id: WEBHOOK_ERRORS,
                    name: "Vehicle errors",
                    callback_uri: "https://fleet.example.com/smartcar/errors",
                    enabled: false,
                    auto_subscribe: true,
                    triggers: &[],
                    data: &[],
                },
            ],
            subscriptions: vec![Subscription {
                id: "sub-0001".into(),
                webhook_id: WEBHOOK_STATE.into(),
                user_id: crate::simulator::ALICE.into(),
                vehicle_id: crate::simulator::EV.into(),
            }],
            next: 1,
        }
    }
}

fn signal_refs(codes: &[&str]) -> Value {
    Value::Array(
        codes
            .iter()
            .map(|c| {
                let (group, name) = c.split_once('-').unwrap_or((c, c));
                json!({"group": group, "name": name, "code": c})
            })
            .collect(),
    )
}

fn webhook_json(w: &Webhook) -> Value {
    json!({"id": w.id, "type": "webhook",
           "attributes": {"name": w.name, "callbackUri": w.callback_uri, "isEnabled": w.enabled,
                          "triggers": signal_refs(w.triggers), "data": signal_refs(w.data),
                          "errorCallbackUri": null, "autoSubscribe": w.auto_subscribe},
           "links": {"self": format!("/webhooks/{}", w.id)},
           "meta": {"createdAt": "2025-10-01T09:00:00Z"}})
}

fn subscription_json(st: &Scope, s: &Subscription) -> Value {
    let vehicle = st.fleet.vehicle(&s.vehicle_id).map(|v| {
        json!({"make": v.make, "model": v.model, "year": v.year, "mode": v.mode,
               "powertrainType": v.powertrain.as_str()})
    });
    json!({"type": "subscription", "id": s.id,
           "attributes": {"vehicle": vehicle},
           "meta": {"createdAt": "2025-10-02T09:00:00Z", "updatedAt": "2025-10-02T09:00:00Z"},
           "relationships": {
               "webhook": {"data": {"type": "webhook", "id": s.webhook_id}},
               "user": {"data": {"type": "user", "id": s.user_id}},
               "vehicle": {"data": {"type": "vehicle", "id": s.vehicle_id}}},
           "links": {"self": format!("/subscriptions/{}", s.id)}})
}

fn list(data: Vec<Value>, page: usize, size: usize) -> Response {
    let total = data.len();
    let start = (page - 1).saturating_mul(size).min(total);
    let end = start.saturating_add(size).min(total);
    json_response(
        200,
        &json!({"data": data[start..end], "meta": {"page": page, "pageSize": size, "totalCount": total}}),
    )
}

fn page_params(req: &RecordedRequest, default_size: usize) -> Result<(usize, usize), ApiError> {
    let read = |key: &str, default: usize| match req.query_value(key) {
        None => Ok(default),
        Some(raw) => match raw.parse::<usize>() {
            Ok(n) if (1..=100).contains(&n) || (key == "page[number]" && n >= 1) => Ok(n),
            _ => Err(ApiError::validation(
                "BAD_REQUEST",
                format!("{key} must be a whole number within range (got {raw:?})."),
            )),
        },
    };
    Ok((read("page[number]", 1)?, read("page[size]", default_size)?))
}

/// `None` when no webhook or subscription route matches.
/// What the webhook routes read and change of the simulator's state.
pub struct Scope<'a> {
    pub hooks: &'a mut Hooks,
    pub fleet: &'a Fleet,
}

pub fn route(
    st: &mut Scope,
    req: &RecordedRequest,
    method: &str,
    segs: &[&str],
) -> Option<Result<Response, ApiError>> {
    Some(match (method, segs) {
        ("GET", ["webhooks"]) => page_params(req, 50).map(|(page, size)| {
            let data = st.hooks.webhooks.iter().map(webhook_json).collect();
            list(data, page, size)
        }),
        ("GET", ["webhooks", id]) => match st.hooks.webhooks.iter().find(|w| w.id == *id) {
            Some(w) => Ok(json_response(200, &json!({"data": webhook_json(w)}))),
            None => Err(ApiError::not_found_path(format!(
                "Webhook {id} was not found."
            ))),
        },
        ("GET", ["subscriptions"]) => page_params(req, 25).map(|(page, size)| {
            let filter = |key: &str, value: &String| {
                req.query_value(key)
                    .is_none_or(|want| want == value.as_str())
            };
            let data = st
                .hooks
                .subscriptions
                .iter()
                .filter(|s| {
                    filter("filter[webhookId]", &s.webhook_id)
                        && filter("filter[vehicleId]", &s.vehicle_id)
                        && filter("filter[userId]", &s.user_id)
                })
                .map(|s| subscription_json(st, s))
                .collect();
            list(data, page, size)
        }),
        ("POST", ["subscriptions"]) => subscribe(st, req),
        ("DELETE", ["subscriptions", id]) => {
            let before = st.hooks.subscriptions.len();
            st.hooks.subscriptions.retain(|s| s.id != *id);
            if st.hooks.subscriptions.len() == before {
                Err(ApiError::not_found_path(format!(
                    "Subscription {id} was not found."
                )))
            } else {
                Ok(no_content())
            }
        }
        _ => return None,
    })
}

fn subscribe(st: &mut Scope, req: &RecordedRequest) -> Result<Response, ApiError> {
    let body: Value = serde_json::from_str(&req.body).map_err(|_| {
        ApiError::validation(
            "INVALID_INPUT_FORMAT",
            "The request body must be {\"data\":{\"attributes\":{webhookId, userId, vehicleId}}}.",
        )
    })?;
    let attr = |name: &str| {
        body.pointer(&format!("/data/attributes/{name}"))
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| {
                ApiError::validation(
                    "MISSING_PARAMETER",
                    format!("data.attributes.{name} is required."),
                )
            })
    };
    let (webhook_id, user_id, vehicle_id) =
        (attr("webhookId")?, attr("userId")?, attr("vehicleId")?);
    if !st.hooks.webhooks.iter().any(|w| w.id == webhook_id) {
        return Err(ApiError::not_found_path(format!(
            "Webhook {webhook_id} was not found."
        )));
    }
    if !st.fleet.owns(&user_id, &vehicle_id) {
        return Err(ApiError::not_found_path(format!(
            "Vehicle {vehicle_id} is not connected for user {user_id}."
        )));
    }
    if st
        .hooks
        .subscriptions
        .iter()
        .any(|s| s.webhook_id == webhook_id && s.vehicle_id == vehicle_id)
    {
        return Err(ApiError::new(
            409,
            "CONFLICT",
            "SUBSCRIPTION_EXISTS",
            format!("Vehicle {vehicle_id} is already subscribed to webhook {webhook_id}."),
        ));
    }
    st.hooks.next += 1;
    let id = format!("sub-{:04}", st.hooks.next);
    st.hooks.subscriptions.push(Subscription {
        id,
        webhook_id,
        user_id,
        vehicle_id,
    });
    Ok(json_response(
        202,
        &json!({"meta": {"message": "subscription creation in progress"}}),
    ))
}
