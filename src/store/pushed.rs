//! Vehicle state Smartcar pushed by webhook: a bounded store of each vehicle's latest signals and
//! errors, which resources publish and reads may be answered from, and the notice of each change
//! that resource subscriptions hear. (How Smartcar signs a delivery is `upstream::webhook`'s.)
//!
//! Delivery is at-least-once and unordered, and several events for one vehicle may arrive at
//! once: events are deduplicated on `eventId` (a 16-byte hash of the last `MAX_EVENT_IDS`), and a
//! signal is never replaced by one the vehicle recorded earlier (`meta.oemUpdatedAt`). A recorded
//! time more than `MAX_CLOCK_SKEW` after receipt is taken as the receipt time and counted: one car
//! with a wrong clock (or one forged event) must not pin a value as newest and freshest forever.
//!
//! Bounds: at most `MAX_VEHICLES` vehicles and `MAX_BYTES` of state (remembered event ids
//! included); beyond either, the vehicles whose state was updated least recently are dropped
//! first. A vehicle keeps at most `MAX_SIGNALS_PER_VEHICLE` signals and `MAX_ERRORS_PER_VEHICLE`
//! errors; an update that would make one vehicle alone exceed `MAX_BYTES` is refused. Every entry
//! keeps its own size, so an event costs work in proportion to itself, not to its vehicle.

use crate::sync::Locked;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use sha2::Digest;
use tokio::sync::broadcast;

pub const MAX_VEHICLES: usize = 1_000;
pub const MAX_BYTES: usize = 16 * 1024 * 1024;
pub const MAX_EVENT_IDS: usize = 10_000;
pub const MAX_SIGNALS_PER_VEHICLE: usize = 256;
pub const MAX_ERRORS_PER_VEHICLE: usize = 64;
/// Longest signal code or error `type/code` key kept; Smartcar's are far shorter.
pub const MAX_KEY_CHARS: usize = 128;
/// Longest `eventId` accepted; Smartcar's are UUIDs.
pub const MAX_EVENT_ID_CHARS: usize = 128;
/// How far past its receipt a recorded time may lie before it is taken as the receipt time.
pub const MAX_CLOCK_SKEW: Duration = Duration::from_secs(5 * 60);

/// What one remembered event id costs: its 16-byte hash in the set and in the queue, with their
/// bookkeeping (an estimate on the generous side, so the bound holds in memory too).
const EVENT_ID_BYTES: usize = 64;
/// Bookkeeping of one signal or error beyond its JSON: the map node, times, sizes.
const ENTRY_BYTES: usize = 96;
/// Bookkeeping of one vehicle beyond its ids and its `vehicle` object.
const VEHICLE_BYTES: usize = 256;
/// A vehicle's clamped or skipped values are logged at most this often.
const WARN_EVERY: Duration = Duration::from_secs(60);

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

/// The length of `v`'s compact JSON, counted without building the text.
fn json_len(v: &Value) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut c = Count(0);
    let _ = serde_json::to_writer(&mut c, v);
    c.0
}

/// The fixed-size form an `eventId` is remembered by.
fn id_hash(id: &str) -> [u8; 16] {
    let digest = sha2::Sha256::digest(id.as_bytes());
    let mut h = [0u8; 16];
    h.copy_from_slice(&digest[..16]);
    h
}

#[derive(Debug, Clone, PartialEq)]
pub struct PushedSignal {
    /// The signal as Smartcar pushed it: `{code, name, group, body | status, meta}`.
    pub raw: Value,
    /// When the vehicle recorded it, or the receipt time when it claimed a time more than
    /// `MAX_CLOCK_SKEW` ahead (then `clamped`).
    pub oem_updated_at: Option<DateTime<Utc>>,
    pub received_at: DateTime<Utc>,
    pub clamped: bool,
    bytes: usize,
}

impl PushedSignal {
    /// The time its age counts from: never later than its receipt, so no clock makes it fresher.
    pub fn recorded_at(&self) -> Option<DateTime<Utc>> {
        self.oem_updated_at.map(|t| t.min(self.received_at))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct PushedError {
    /// The error as Smartcar pushed it: `{type, code, state, description, …}`.
    pub raw: Value,
    bytes: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct VehicleState {
    pub vehicle_id: String,
    pub user_id: Option<String>,
    /// `{id, make, model, year}` as the event names the vehicle.
    pub vehicle: Value,
    pub signals: BTreeMap<String, PushedSignal>,
    /// Keyed by `type/code`: the latest state (ERROR or RESOLVED) of each error.
    pub errors: BTreeMap<String, PushedError>,
    pub received_at: DateTime<Utc>,
    /// A command was sent since: the pushed values may no longer be true.
    pub stale: bool,
    /// Recorded times taken as the receipt time because they lay too far ahead.
    pub clamped_timestamps: u64,
    /// Signals and errors not kept: key too long, or the vehicle already had the most allowed.
    pub skipped_signals: u64,
    pub skipped_errors: u64,
    /// Its share of the store's bound: the ids and `vehicle` object, plus every entry's size.
    bytes: usize,
    touched: u64,
    clamp_warned: Option<Instant>,
    skip_warned: Option<Instant>,
}

impl VehicleState {
    fn new(vehicle_id: &str, now: DateTime<Utc>, touched: u64) -> Self {
        let mut v = VehicleState {
            vehicle_id: vehicle_id.to_string(),
            user_id: None,
            vehicle: json!({ "id": vehicle_id }),
            signals: BTreeMap::new(),
            errors: BTreeMap::new(),
            received_at: now,
            stale: false,
            clamped_timestamps: 0,
            skipped_signals: 0,
            skipped_errors: 0,
            bytes: 0,
            touched,
            clamp_warned: None,
            skip_warned: None,
        };
        v.bytes = v.base_bytes();
        v
    }

    /// What the vehicle costs without its signals and errors.
    fn base_bytes(&self) -> usize {
        VEHICLE_BYTES
            + 2 * self.vehicle_id.len()
            + self.user_id.as_ref().map_or(0, String::len)
            + json_len(&self.vehicle)
    }

    /// The resource body of `smartcar://vehicles/{id}/state`.
    pub fn to_json(&self) -> Value {
        let time = |t: &DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let signals: Vec<Value> = self
            .signals
            .values()
            .map(|s| {
                let r = &s.raw;
                let mut j = json!({
                    "code": r.get("code"),
                    "group": r.get("group"),
                    "name": r.get("name"),
                    "body": r.get("body"),
                    "status": r.get("status"),
                    "oem_updated_at": s.oem_updated_at.as_ref().map(time),
                    "received_at": time(&s.received_at),
                });
                if s.clamped {
                    j["oem_updated_at_clamped"] = json!(true);
                }
                j
            })
            .collect();
        json!({
            "vehicle_id": self.vehicle_id,
            "user_id": self.user_id,
            "vehicle": self.vehicle,
            "received_at": time(&self.received_at),
            "stale": self.stale,
            "clamped_timestamps": self.clamped_timestamps,
            "skipped_signals": self.skipped_signals,
            "skipped_errors": self.skipped_errors,
            "signals": signals,
            "errors": self.errors.values().map(|e| &e.raw).collect::<Vec<_>>(),
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
    /// The Dashboard's test event (`meta.mode: TEST`): proof that delivery and the signature
    /// work, carrying sample values that must not pass for a vehicle's state.
    Test,
    /// Not stored, and why: a client error the sender should hear of.
    Refused(String),
}

#[derive(Default)]
struct Held {
    vehicles: HashMap<String, VehicleState>,
    seen: HashSet<[u8; 16]>,
    order: VecDeque<[u8; 16]>,
    /// Every vehicle's `bytes` plus the remembered event ids.
    bytes: usize,
    clock: u64,
}

pub struct Pushed {
    store: Mutex<Held>,
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

/// A change to a vehicle, undone when the update would break the bound.
enum Undo {
    Signal(String, Option<PushedSignal>),
    Error(String, Option<PushedError>),
}

/// What to say in the log after the lock is released.
struct Warnings {
    clamped: Option<u64>,
    skipped: Option<(u64, u64)>,
}

impl Pushed {
    fn lock(&self) -> std::sync::MutexGuard<'_, Held> {
        self.store.locked()
    }

    /// Vehicle ids as they change.
    pub fn subscribe(&self) -> broadcast::Receiver<String> {
        self.updates.subscribe()
    }

    /// The bytes the store holds against `MAX_BYTES`.
    pub fn bytes(&self) -> usize {
        self.lock().bytes
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
        if event
            .pointer("/meta/mode")
            .and_then(Value::as_str)
            .is_some_and(|m| m.eq_ignore_ascii_case("TEST"))
        {
            return Ingested::Test;
        }
        let event_id = match event.get("eventId").and_then(Value::as_str) {
            Some(id) if id.chars().count() > MAX_EVENT_ID_CHARS => {
                return Ingested::Refused(format!(
                    "eventId is {} characters long; Smartcar's are at most {MAX_EVENT_ID_CHARS}",
                    id.chars().count()
                ));
            }
            Some(id) => Some(id_hash(id)),
            None => None,
        };

        // Everything that depends on the event alone is prepared before the lock.
        let now = Utc::now();
        let horizon = now + MAX_CLOCK_SKEW;
        let (mut clamped, mut skipped_signals, mut skipped_errors) = (0u64, 0u64, 0u64);
        let mut signals = Vec::new();
        for s in event
            .pointer("/data/signals")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let Some(code) = s.get("code").and_then(Value::as_str) else {
                continue;
            };
            if code.chars().count() > MAX_KEY_CHARS {
                skipped_signals += 1;
                continue;
            }
            let (oem, was_clamped) = match instant(s.pointer("/meta/oemUpdatedAt")) {
                Some(t) if t > horizon => (Some(now), true),
                t => (t, false),
            };
            clamped += u64::from(was_clamped);
            let signal = PushedSignal {
                raw: s.clone(),
                oem_updated_at: oem,
                received_at: now,
                clamped: was_clamped,
                bytes: ENTRY_BYTES + code.len() + json_len(s),
            };
            signals.push((code.to_string(), signal));
        }
        let mut errors = Vec::new();
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
            if key.chars().count() > MAX_KEY_CHARS {
                skipped_errors += 1;
                continue;
            }
            let bytes = ENTRY_BYTES + key.len() + json_len(e);
            errors.push((
                key,
                PushedError {
                    raw: e.clone(),
                    bytes,
                },
            ));
        }
        let user = event
            .pointer("/data/user/id")
            .and_then(Value::as_str)
            .map(str::to_string);
        let vehicle = event
            .pointer("/data/vehicle")
            .filter(|x| x.is_object())
            .cloned();

        let mut st = self.lock();
        if event_id.is_some_and(|h| st.seen.contains(&h)) {
            return Ingested::Unchanged;
        }
        let ids_after = (st.order.len() + usize::from(event_id.is_some())).min(MAX_EVENT_IDS);
        st.clock += 1;
        let touched = st.clock;
        let created = !st.vehicles.contains_key(vehicle_id);
        let v = st
            .vehicles
            .entry(vehicle_id.to_string())
            .or_insert_with(|| VehicleState::new(vehicle_id, now, touched));
        let before = v.bytes;
        let old_base = v.base_bytes();
        let old_user = user.map(|u| v.user_id.replace(u));
        let old_vehicle = vehicle.map(|x| std::mem::replace(&mut v.vehicle, x));
        v.bytes = v.bytes - old_base + v.base_bytes();

        let mut undo = Vec::new();
        for (code, signal) in signals {
            match v.signals.get(&code) {
                // The newest wins, by the (clamped) time the vehicle recorded it.
                Some(old) => {
                    if matches!((old.oem_updated_at, signal.oem_updated_at), (Some(a), Some(b)) if b < a)
                    {
                        continue;
                    }
                }
                None if v.signals.len() >= MAX_SIGNALS_PER_VEHICLE => {
                    skipped_signals += 1;
                    continue;
                }
                None => {}
            }
            v.bytes += signal.bytes;
            let old = v.signals.insert(code.clone(), signal);
            v.bytes -= old.as_ref().map_or(0, |o| o.bytes);
            undo.push(Undo::Signal(code, old));
        }
        for (key, error) in errors {
            if !v.errors.contains_key(&key) && v.errors.len() >= MAX_ERRORS_PER_VEHICLE {
                skipped_errors += 1;
                continue;
            }
            v.bytes += error.bytes;
            let old = v.errors.insert(key.clone(), error);
            v.bytes -= old.as_ref().map_or(0, |o| o.bytes);
            undo.push(Undo::Error(key, old));
        }

        if v.bytes + ids_after * EVENT_ID_BYTES > MAX_BYTES {
            // This vehicle alone would break the bound: the update is undone, not half kept.
            let size = v.bytes;
            for u in undo.into_iter().rev() {
                match u {
                    Undo::Signal(code, Some(old)) => {
                        v.signals.insert(code, old);
                    }
                    Undo::Signal(code, None) => {
                        v.signals.remove(&code);
                    }
                    Undo::Error(key, Some(old)) => {
                        v.errors.insert(key, old);
                    }
                    Undo::Error(key, None) => {
                        v.errors.remove(&key);
                    }
                }
            }
            if let Some(u) = old_user {
                v.user_id = u;
            }
            if let Some(x) = old_vehicle {
                v.vehicle = x;
            }
            v.bytes = before;
            if created {
                st.vehicles.remove(vehicle_id);
            }
            return Ingested::Refused(format!(
                "this event would make vehicle `{vehicle_id}`'s pushed state {size} bytes, more than the {MAX_BYTES} bytes the store holds"
            ));
        }

        let changed = !undo.is_empty();
        let mono = Instant::now();
        let due = |last: Option<Instant>| last.is_none_or(|t| mono.duration_since(t) >= WARN_EVERY);
        let mut warnings = Warnings {
            clamped: None,
            skipped: None,
        };
        v.clamped_timestamps += clamped;
        if clamped > 0 && due(v.clamp_warned) {
            v.clamp_warned = Some(mono);
            warnings.clamped = Some(v.clamped_timestamps);
        }
        v.skipped_signals += skipped_signals;
        v.skipped_errors += skipped_errors;
        if skipped_signals + skipped_errors > 0 && due(v.skip_warned) {
            v.skip_warned = Some(mono);
            warnings.skipped = Some((v.skipped_signals, v.skipped_errors));
        }
        if changed {
            v.received_at = now;
            v.stale = false;
            v.touched = touched;
        }
        let after = v.bytes;
        if created && !changed {
            st.vehicles.remove(vehicle_id);
        } else {
            // A new vehicle was not counted yet; its first size is part of `after`.
            let counted = if created { 0 } else { before };
            st.bytes = st.bytes + after - counted;
        }
        if let Some(h) = event_id {
            st.seen.insert(h);
            st.order.push_back(h);
            st.bytes += EVENT_ID_BYTES;
            while st.order.len() > MAX_EVENT_IDS {
                if let Some(old) = st.order.pop_front() {
                    st.seen.remove(&old);
                    st.bytes -= EVENT_ID_BYTES;
                }
            }
        }
        evict(&mut st, vehicle_id);
        drop(st);

        if let Some(total) = warnings.clamped {
            tracing::warn!(
                vehicle = %vehicle_id,
                clamped_timestamps = total,
                "a webhook said a value was recorded more than {} s after it arrived; it counts as recorded on arrival",
                MAX_CLOCK_SKEW.as_secs()
            );
        }
        if let Some((signals, errors)) = warnings.skipped {
            tracing::warn!(
                vehicle = %vehicle_id,
                skipped_signals = signals,
                skipped_errors = errors,
                "webhook values not kept: a code longer than {MAX_KEY_CHARS} characters, or more than {MAX_SIGNALS_PER_VEHICLE} signals or {MAX_ERRORS_PER_VEHICLE} errors for one vehicle"
            );
        }
        if !changed {
            return Ingested::Unchanged;
        }
        let _ = self.updates.send(vehicle_id.to_string());
        Ingested::Updated {
            vehicle_id: vehicle_id.to_string(),
        }
    }

    /// The vehicle's pushed state, whoever it was pushed for: for operator-level readers
    /// (resources), never to answer a user's read (that is `fresh`).
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
    /// it is not stale, and it was pushed for `user`; with their oldest age. State pushed for no
    /// user, or asked for by no user, is never served: who may read the vehicle is unknown.
    pub fn fresh(
        &self,
        vehicle_id: &str,
        user: Option<&str>,
        codes: Option<&str>,
        max_age: Duration,
    ) -> Option<(Vec<PushedSignal>, Duration)> {
        let st = self.lock();
        let v = st.vehicles.get(vehicle_id)?;
        let owner = v.user_id.as_deref()?;
        if v.stale || user != Some(owner) {
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
            let age = (now - s.recorded_at()?).to_std().unwrap_or(Duration::ZERO);
            if age > max_age {
                return None;
            }
            oldest = oldest.max(age);
        }
        Some((picked.into_iter().cloned().collect(), oldest))
    }
}

/// Drops the least recently updated vehicles (never `keep`) until both bounds hold.
fn evict(st: &mut Held, keep: &str) {
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
        assert_eq!(v.errors.values().next().unwrap().raw["state"], "RESOLVED");
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

    #[test]
    fn a_far_future_time_is_clamped_counted_and_outranked_by_a_later_real_one() {
        let p = Pushed::default();
        let code = "closure-islocked";
        let y2999 = DateTime::parse_from_rfc3339("2999-01-01T00:00:00Z")
            .unwrap()
            .timestamp_millis();
        p.ingest(&state("f", "v-1", code, json!(true), y2999));
        let v = p.vehicle("v-1").unwrap();
        let s = &v.signals[code];
        assert!(s.clamped);
        assert_eq!(s.oem_updated_at, Some(s.received_at));
        assert_eq!(v.clamped_timestamps, 1);
        assert_eq!(v.to_json()["clamped_timestamps"], 1);
        // Slightly ahead (within the skew) is kept as sent, but never counts younger than receipt.
        let soon = Utc::now().timestamp_millis() + 60_000;
        std::thread::sleep(Duration::from_millis(5));
        p.ingest(&state("g", "v-1", code, json!(false), soon));
        let v = p.vehicle("v-1").unwrap();
        assert_eq!(
            v.signals[code].raw["body"]["value"], false,
            "the real one wins"
        );
        assert!(!v.signals[code].clamped);
        assert_eq!(
            v.signals[code].recorded_at(),
            Some(v.signals[code].received_at)
        );
        let (_, age) = p
            .fresh("v-1", Some("u-1"), Some(code), Duration::from_secs(60))
            .unwrap();
        assert!(age < Duration::from_secs(60));
    }

    #[test]
    fn one_vehicle_and_its_event_ids_stay_inside_the_bounds() {
        let p = Pushed::default();
        let t = Utc::now().timestamp_millis();
        let many = |id: &str, from: usize, n: usize, size: usize| {
            let signals: Vec<Value> = (from..from + n)
                .map(|i| {
                    json!({ "code": format!("x-{i}"), "body": { "value": "v".repeat(size) },
                                  "meta": { "oemUpdatedAt": t } })
                })
                .collect();
            json!({ "eventId": id, "eventType": "VEHICLE_STATE", "vehicleId": "v-1",
                    "data": { "user": { "id": "u-1" }, "signals": signals } })
        };
        p.ingest(&many("a", 0, 300, 10));
        let v = p.vehicle("v-1").unwrap();
        assert_eq!(v.signals.len(), MAX_SIGNALS_PER_VEHICLE);
        assert_eq!(v.skipped_signals, 300 - MAX_SIGNALS_PER_VEHICLE as u64);
        let long = json!({ "eventId": "b", "eventType": "VEHICLE_STATE", "vehicleId": "v-2",
            "data": { "signals": [{ "code": "c".repeat(MAX_KEY_CHARS + 1), "body": {} }],
                      "errors": [{ "type": "T".repeat(MAX_KEY_CHARS), "code": "C" }] } });
        assert_eq!(p.ingest(&long), Ingested::Unchanged);
        assert!(p.vehicle("v-2").is_none(), "nothing kept, no empty vehicle");
        let errors: Vec<Value> = (0..70)
            .map(|i| json!({ "type": "T", "code": format!("E{i}") }))
            .collect();
        p.ingest(
            &json!({ "eventId": "c", "eventType": "VEHICLE_ERROR", "vehicleId": "v-3",
                          "data": { "errors": errors } }),
        );
        assert_eq!(
            p.vehicle("v-3").unwrap().errors.len(),
            MAX_ERRORS_PER_VEHICLE
        );

        // An update that would make one vehicle alone exceed the bound is refused whole.
        let before = p.vehicle("v-1").unwrap();
        let huge = many("d", 0, 200, 100 * 1024);
        assert!(matches!(p.ingest(&huge), Ingested::Refused(m) if m.contains("bytes")));
        assert_eq!(p.vehicle("v-1").unwrap(), before);
        assert!(p.bytes() <= MAX_BYTES);

        let long_id = "i".repeat(MAX_EVENT_ID_CHARS + 1);
        assert!(
            matches!(p.ingest(&many(&long_id, 0, 1, 1)), Ingested::Refused(m) if m.contains("eventId"))
        );
        // Ids are remembered by a fixed-size hash, counted in the bound.
        let base = p.bytes();
        for i in 0..100 {
            p.ingest(&many(&format!("{i:0>128}"), 0, 1, 10));
        }
        assert_eq!(
            p.ingest(&many(&format!("{:0>128}", 7), 0, 1, 2)),
            Ingested::Unchanged
        );
        assert!(p.bytes() >= base + 100 * EVENT_ID_BYTES);
    }

    #[test]
    fn pushed_state_is_served_only_to_the_user_it_was_pushed_for() {
        let p = Pushed::default();
        let t = Utc::now().timestamp_millis();
        let mut e = state("e", "v-1", "closure-islocked", json!(true), t);
        e["data"].as_object_mut().unwrap().remove("user");
        p.ingest(&e);
        let max = Duration::from_secs(60);
        assert!(
            p.fresh("v-1", Some("u-1"), None, max).is_none(),
            "no stored user"
        );
        assert!(p.fresh("v-1", None, None, max).is_none());
        p.ingest(&state("f", "v-1", "closure-islocked", json!(true), t + 1));
        assert!(p.fresh("v-1", Some("u-1"), None, max).is_some());
        assert!(
            p.fresh("v-1", None, None, max).is_none(),
            "no requested user"
        );
        assert!(p.fresh("v-1", Some("u-2"), None, max).is_none());
    }
}
