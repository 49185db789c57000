//! The webhooks area's other half: the `VEHICLE_STATE` events a command pushes to a receiver,
//! shaped and signed as Smartcar sends them.

use std::time::Duration;

use serde_json::{Value, json};

use super::catalogue_signal;
use crate::simulator::state::State;

/// A `VEHICLE_STATE` event (payload v4.0) carrying the signals a command just changed.
pub(super) fn vehicle_state_event(st: &mut State, id: &str, user: Option<&str>, now: u64) -> Value {
    let event_id = st.next_event_id();
    let Some(v) = st.fleet.vehicle(id) else {
        return Value::Null;
    };
    let signals: Vec<Value> = v
        .signals
        .iter()
        .filter(|(code, _)| v.updated.get(*code) == Some(&now))
        .map(|(code, body)| {
            let sig = catalogue_signal(code);
            json!({
                "code": code,
                "name": sig.map(|s| s.name),
                "group": sig.map(|s| s.group_title),
                "body": body,
                "meta": { "oemUpdatedAt": now, "fetchedAt": now },
            })
        })
        .collect();
    json!({
        "eventId": event_id,
        "eventType": "VEHICLE_STATE",
        "vehicleId": id,
        "data": {
            "user": { "id": user },
            "vehicle": { "id": id, "make": v.make, "model": v.model, "year": v.year },
            "triggers": signals.iter().map(|s| json!({ "code": s["code"], "name": s["name"], "group": s["group"] })).collect::<Vec<_>>(),
            "signals": signals,
        },
        "meta": { "version": "4.0", "deliveryId": format!("dlv-{event_id}"), "deliveredAt": now,
                  "webhookId": "wh-simulator", "webhookName": "simulator", "mode": "LIVE",
                  "signalCount": signals.len() },
    })
}

/// POSTs one event as Smartcar does: JSON, signed with HMAC-SHA256 of the body in `SC-Signature`.
pub(super) async fn deliver(url: String, token: String, event: Value) {
    use hmac::{KeyInit, Mac};
    if event.is_null() {
        return;
    }
    let body = event.to_string();
    let mut mac =
        hmac::Hmac::<sha2::Sha256>::new_from_slice(token.as_bytes()).expect("any key length");
    mac.update(body.as_bytes());
    let signature: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let sent = reqwest::Client::new()
        .post(&url)
        .header("content-type", "application/json")
        .header("user-agent", "Smartcar/simulator")
        .header("sc-signature", signature)
        .body(body)
        .timeout(Duration::from_secs(15))
        .send()
        .await;
    match sent {
        Ok(r) if r.status().is_success() => {}
        Ok(r) => tracing::warn!(status = r.status().as_u16(), "simulator webhook refused"),
        Err(e) => tracing::warn!("simulator webhook not delivered: {e}"),
    }
}
