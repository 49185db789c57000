//! Vehicle state Smartcar pushed by webhook: signature checks, the VERIFY challenge, and a bounded
//! store of each vehicle's latest signals and errors, which resources publish and reads may be
//! answered from.
//!
//! Delivery is at-least-once and unordered, and several events for one vehicle may arrive at
//! once: events are deduplicated on `eventId` (the last `MAX_EVENT_IDS` remembered), and a signal
//! is never replaced by one the vehicle recorded earlier (`meta.oemUpdatedAt`).
//!
//! Bounds: at most `MAX_VEHICLES` vehicles and `MAX_BYTES` of state; beyond either, the vehicles
//! whose state was updated least recently are dropped first.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};
use hmac::{KeyInit, Mac};
use serde_json::{Value, json};
use tokio::sync::broadcast;

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

pub const MAX_VEHICLES: usize = 1_000;
pub const MAX_BYTES: usize = 16 * 1024 * 1024;
pub const MAX_EVENT_IDS: usize = 10_000;
/// Smartcar's deliveries hold at most 50 KB; anything larger is refused unread.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `hex(HMAC-SHA256(key, message))`, lowercase: Smartcar's signature and challenge answer.
pub fn sign(key: &str, message: &[u8]) -> String {
    let mut mac = HmacSha256::new_from_slice(key.as_bytes()).expect("HMAC takes any key length");
    mac.update(message);
    hex(&mac.finalize().into_bytes())
}

/// Whether `signature` (lowercase or uppercase hex) signs `body` with `key`, compared in
/// constant time.
pub fn verify(key: &str, body: &[u8], signature: &str) -> bool {
    let sig = signature.trim();
    if sig.len() != 64 || !sig.bytes().all(|b| b.is_ascii_hexdigit()) {
        return false;
    }
    let bytes: Vec<u8> = (0..32)
        .map(|i| u8::from_str_radix(&sig[2 * i..2 * i + 2], 16).unwrap_or(0))
        .collect();
    let mut mac = HmacSha256::new_from_slice(key.as_bytes()).expect("HMAC takes any key length");
    mac.update(body);
    mac.verify_slice(&bytes).is_ok()
}

/// The challenge of a VERIFY event, v4 (`data.challenge`) or v2 (`payload.challenge`).
pub fn challenge(event: &Value) -> Option<&str> {
    let v4 = event.get("eventType").and_then(Value::as_str) == Some("VERIFY");
    let v2 = event
        .get("eventName")
        .and_then(Value::as_str)
        .is_some_and(|n| n.eq_ignore_ascii_case("verify"));
    if v4 {
        event.pointer("/data/challenge")?.as_str()
    } else if v2 {
        event.pointer("/payload/challenge")?.as_str()
    } else {
        None
    }
}

/// A time Smartcar sends as epoch milliseconds or as an RFC 3339 string.
fn instant(v: Option<&Value>) -> Option<DateTime<Utc>> {
    match v? {
        Value::Number(n) => DateTime::from_timestamp_millis(n.as_f64()? as i64),
        Value::String(s) => DateTime::parse_from_rfc3339(s)
            .ok()
            .map(|d| d.with_timezone(&Utc)),
        _ => None,
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct PushedSignal {
    /// The signal as Smartcar pushed it: `{code, name, group, body | status, meta}`.
    pub raw: Value,
    pub oem_updated_at: Option<DateTime<Utc>>,
    pub received_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct VehicleState {
    pub vehicle_id: String,
    pub user_id: Option<String>,
    /// `{id, make, model, year}` as the event names the vehicle.
    pub vehicle: Value,
    pub signals: BTreeMap<String, PushedSignal>,
    /// Keyed by `type/code`: the latest state (ERROR or RESOLVED) of each error.
    pub errors: BTreeMap<String, Value>,
    pub received_at: DateTime<Utc>,
    /// A command was sent since: the pushed values may no longer be true.
    pub stale: bool,
    bytes: usize,
    touched: u64,
}

impl VehicleState {
    /// The resource body of `smartcar://vehicles/{id}/state`.
    pub fn to_json(&self) -> Value {
        let time = |t: &DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let signals: Vec<Value> = self
            .signals
            .values()
            .map(|s| {
                let r = &s.raw;
                json!({
                    "code": r.get("code"),
                    "group": r.get("group"),
                    "name": r.get("name"),
                    "body": r.get("body"),
                    "status": r.get("status"),
                    "oem_updated_at": s.oem_updated_at.as_ref().map(time),
                    "received_at": time(&s.received_at),
                })
            })
            .collect();
        json!({
            "vehicle_id": self.vehicle_id,
            "user_id": self.user_id,
            "vehicle": self.vehicle,
            "received_at": time(&self.received_at),
            "stale": self.stale,
            "signals": signals,
            "errors": self.errors.values().collect::<Vec<_>>(),
        })
    }
}

/// What an event did to the store.
#[derive(Debug, Clone, PartialEq)]
pub enum Ingested {
    /// The vehicle's state changed.
    Updated { vehicle_id: String },
    /// Seen before (same `eventId`), or it carried nothing newer.
    Unchanged,
    /// An event type the store does not keep (VERIFY answered elsewhere, unknown types).
    Ignored,
}

#[derive(Default)]
struct Store {
    vehicles: HashMap<String, VehicleState>,
    seen: HashSet<String>,
    order: VecDeque<String>,
    bytes: usize,
    clock: u64,
}

pub struct Pushed {
    store: Mutex<Store>,
    /// Vehicle ids whose state changed, for resource subscriptions.
    updates: broadcast::Sender<String>,
}

impl Default for Pushed {
    fn default() -> Self {
        Pushed {
            store: Mutex::default(),
            updates: broadcast::channel(1024).0,
        }
    }
}

impl Pushed {
    fn lock(&self) -> std::sync::MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Vehicle ids as they change.
    pub fn subscribe(&self) -> broadcast::Receiver<String> {
        self.updates.subscribe()
    }

    /// Stores a verified event (`VEHICLE_STATE`, `VEHICLE_ERROR`).
    pub fn ingest(&self, event: &Value) -> Ingested {
        let Some(vehicle_id) = event
            .get("vehicleId")
            .or_else(|| event.pointer("/data/vehicle/id"))
            .and_then(Value::as_str)
        else {
            return Ingested::Ignored;
        };
        let kind = event.get("eventType").and_then(Value::as_str).unwrap_or("");
        if !matches!(kind, "VEHICLE_STATE" | "VEHICLE_ERROR") {
            return Ingested::Ignored;
        }
        let now = Utc::now();
        let mut st = self.lock();
        if let Some(id) = event.get("eventId").and_then(Value::as_str) {
            if !st.seen.insert(id.to_string()) {
                return Ingested::Unchanged;
            }
            st.order.push_back(id.to_string());
            while st.order.len() > MAX_EVENT_IDS {
                if let Some(old) = st.order.pop_front() {
                    st.seen.remove(&old);
                }
            }
        }
        st.clock += 1;
        let touched = st.clock;
        let v = st
            .vehicles
            .entry(vehicle_id.to_string())
            .or_insert_with(|| VehicleState {
                vehicle_id: vehicle_id.to_string(),
                user_id: None,
                vehicle: json!({ "id": vehicle_id }),
                signals: BTreeMap::new(),
                errors: BTreeMap::new(),
                received_at: now,
                stale: false,
                bytes: 0,
                touched,
            });
        let mut changed = false;
        if let Some(user) = event.pointer("/data/user/id").and_then(Value::as_str) {
            v.user_id = Some(user.to_string());
        }
        if let Some(vehicle) = event.pointer("/data/vehicle").filter(|x| x.is_object()) {
            v.vehicle = vehicle.clone();
        }
        for s in event
            .pointer("/data/signals")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let Some(code) = s.get("code").and_then(Value::as_str) else {
                continue;
            };
            let oem = instant(s.pointer("/meta/oemUpdatedAt"));
            let older = v.signals.get(code).is_some_and(
                |old| matches!((old.oem_updated_at, oem), (Some(a), Some(b)) if b < a),
            );
            if older {
                continue;
            }
            v.signals.insert(
                code.to_string(),
                PushedSignal {
                    raw: s.clone(),
                    oem_updated_at: oem,
                    received_at: now,
                },
            );
            changed = true;
        }
        for e in event
            .pointer("/data/errors")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let key = format!(
                "{}/{}",
                e.get("type").and_then(Value::as_str).unwrap_or(""),
                e.get("code").and_then(Value::as_str).unwrap_or("")
            );
            v.errors.insert(key, e.clone());
            changed = true;
        }
        if !changed {
            return Ingested::Unchanged;
        }
        v.received_at = now;
        v.stale = false;
        v.touched = touched;
        let before = v.bytes;
        v.bytes = v.to_json().to_string().len();
        let after = v.bytes;
        st.bytes = st.bytes.saturating_sub(before) + after;
        evict(&mut st, vehicle_id);
        drop(st);
        let _ = self.updates.send(vehicle_id.to_string());
        Ingested::Updated {
            vehicle_id: vehicle_id.to_string(),
        }
    }

    pub fn vehicle(&self, vehicle_id: &str) -> Option<VehicleState> {
        self.lock().vehicles.get(vehicle_id).cloned()
    }

    /// Vehicle ids with pushed state, sorted.
    pub fn vehicles(&self) -> Vec<String> {
        let mut v: Vec<String> = self.lock().vehicles.keys().cloned().collect();
        v.sort();
        v
    }

    /// A command was sent: what was pushed before may no longer hold.
    pub fn mark_stale(&self, vehicle_id: Option<&str>) {
        let mut st = self.lock();
        match vehicle_id {
            Some(id) => {
                if let Some(v) = st.vehicles.get_mut(id) {
                    v.stale = true;
                }
            }
            None => st.vehicles.values_mut().for_each(|v| v.stale = true),
        }
    }

    /// The vehicle's pushed signals when every one the vehicle recorded at most `max_age` ago,
    /// it is not stale, and it belongs to `user`; with their oldest age.
    pub fn fresh(
        &self,
        vehicle_id: &str,
        user: Option<&str>,
        codes: Option<&str>,
        max_age: Duration,
    ) -> Option<(Vec<PushedSignal>, Duration)> {
        let st = self.lock();
        let v = st.vehicles.get(vehicle_id)?;
        if v.stale || (user.is_some() && v.user_id.is_some() && v.user_id.as_deref() != user) {
            return None;
        }
        let picked: Vec<&PushedSignal> = match codes {
            Some(code) => vec![v.signals.get(code)?],
            None => v.signals.values().collect(),
        };
        if picked.is_empty() {
            return None;
        }
        let now = Utc::now();
        let mut oldest = Duration::ZERO;
        for s in &picked {
            let age = (now - s.oem_updated_at?).to_std().unwrap_or(Duration::ZERO);
            if age > max_age {
                return None;
            }
            oldest = oldest.max(age);
        }
        Some((picked.into_iter().cloned().collect(), oldest))
    }
}

/// Drops the least recently updated vehicles (never `keep`) until both bounds hold.
fn evict(st: &mut Store, keep: &str) {
    while st.vehicles.len() > MAX_VEHICLES || st.bytes > MAX_BYTES {
        let Some(victim) = st
            .vehicles
            .values()
            .filter(|v| v.vehicle_id != keep)
            .min_by_key(|v| v.touched)
            .map(|v| v.vehicle_id.clone())
        else {
            break;
        };
        if let Some(v) = st.vehicles.remove(&victim) {
            st.bytes = st.bytes.saturating_sub(v.bytes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(event_id: &str, vehicle: &str, code: &str, value: Value, oem_ms: i64) -> Value {
        json!({
            "eventId": event_id, "eventType": "VEHICLE_STATE", "vehicleId": vehicle,
            "data": {
                "user": { "id": "u-1" },
                "vehicle": { "id": vehicle, "make": "TESLA", "model": "Model 3", "year": 2023 },
                "signals": [{ "code": code, "name": "Locked", "group": "Closure",
                              "body": { "value": value }, "meta": { "oemUpdatedAt": oem_ms } }]
            },
            "meta": { "version": "4.0", "deliveryId": "d", "deliveredAt": oem_ms }
        })
    }

    #[test]
    fn signatures_and_challenges_match_smartcars_scheme() {
        // RFC 4231 test case 2: HMAC-SHA256("Jefe", "what do ya want for nothing?").
        let want = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";
        assert_eq!(sign("Jefe", b"what do ya want for nothing?"), want);
        assert!(verify("Jefe", b"what do ya want for nothing?", want));
        assert!(verify(
            "Jefe",
            b"what do ya want for nothing?",
            &want.to_uppercase()
        ));
        assert!(!verify("Jefe", b"what do ya want for nothing!", want));
        assert!(!verify("jefe", b"what do ya want for nothing?", want));
        assert!(!verify(
            "Jefe",
            b"what do ya want for nothing?",
            &want[..63]
        ));
        assert!(!verify("Jefe", b"what do ya want for nothing?", ""));
        let v4 = json!({"eventType": "VERIFY", "data": {"challenge": "abc"}});
        let v2 = json!({"version": "2.0", "eventName": "verify", "payload": {"challenge": "xyz"}});
        assert_eq!(challenge(&v4), Some("abc"));
        assert_eq!(challenge(&v2), Some("xyz"));
        assert_eq!(challenge(&json!({"eventType": "VEHICLE_STATE"})), None);
    }

    #[test]
    fn duplicates_and_older_values_never_replace_newer_ones() {
        let p = Pushed::default();
        let code = "closure-islocked";
        let t = Utc::now().timestamp_millis();
        assert!(matches!(
            p.ingest(&state("e1", "v-1", code, json!(true), t)),
            Ingested::Updated { .. }
        ));
        assert_eq!(
            p.ingest(&state("e1", "v-1", code, json!(false), t + 5)),
            Ingested::Unchanged,
            "same eventId"
        );
        assert_eq!(
            p.ingest(&state("e0", "v-1", code, json!(false), t - 60_000)),
            Ingested::Unchanged,
            "older value"
        );
        assert_eq!(
            p.vehicle("v-1").unwrap().signals[code].raw["body"]["value"],
            true
        );
        p.ingest(&state("e2", "v-1", code, json!(false), t + 1_000));
        assert_eq!(
            p.vehicle("v-1").unwrap().signals[code].raw["body"]["value"],
            false
        );
        let (fresh, age) = p
            .fresh("v-1", Some("u-1"), Some(code), Duration::from_secs(60))
            .unwrap();
        assert_eq!(fresh.len(), 1);
        assert!(age <= Duration::from_secs(60));
        assert!(
            p.fresh("v-1", Some("u-2"), Some(code), Duration::from_secs(60))
                .is_none(),
            "another user"
        );
        p.mark_stale(Some("v-1"));
        assert!(
            p.fresh("v-1", Some("u-1"), Some(code), Duration::from_secs(60))
                .is_none(),
            "stale"
        );
    }

    #[test]
    fn errors_keep_their_latest_state_and_the_store_is_bounded() {
        let p = Pushed::default();
        let err = |id: &str, state: &str| {
            json!({
                "eventId": id, "eventType": "VEHICLE_ERROR", "vehicleId": "v-9",
                "data": { "errors": [{ "type": "CONNECTED_SERVICES_ACCOUNT", "code": "SUBSCRIPTION", "state": state }] }
            })
        };
        p.ingest(&err("x1", "ERROR"));
        p.ingest(&err("x2", "RESOLVED"));
        let v = p.vehicle("v-9").unwrap();
        assert_eq!(v.errors.len(), 1);
        assert_eq!(v.errors.values().next().unwrap()["state"], "RESOLVED");
        let t = Utc::now().timestamp_millis();
        for i in 0..(MAX_VEHICLES + 5) {
            p.ingest(&state(
                &format!("b{i}"),
                &format!("veh-{i}"),
                "closure-islocked",
                json!(true),
                t,
            ));
        }
        assert_eq!(p.vehicles().len(), MAX_VEHICLES);
        assert!(
            p.vehicle("v-9").is_none(),
            "the least recently updated went first"
        );
        assert!(p.vehicle(&format!("veh-{}", MAX_VEHICLES + 4)).is_some());
    }
}
