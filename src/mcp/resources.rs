//! MCP resources: usage counters, the signal catalogue, and each vehicle's pushed state, with
//! subscriptions to the latter in both lifecycles (`resources/subscribe` for handshake
//! revisions, `subscriptions/listen` for 2026-07-28).

use crate::sync::Locked;
use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use rmcp::model::{
    CacheScope, ListResourceTemplatesResult, ListResourcesResult, ReadResourceResult, Resource,
    ResourceContents, ResourceTemplate, ResourceUpdatedNotificationParam, SubscriptionFilter,
};
use rmcp::service::SubscriptionContext;
use rmcp::{ErrorData, Peer, RoleServer};
use serde_json::{Value, json};

use crate::catalogue::{SIGNALS, Signal, resolve_signal};
use crate::store::Store;
use crate::text::clip;
use crate::tool::AppState;

pub const USAGE: &str = "smartcar://usage";
pub const SIGNALS_URI: &str = "smartcar://signals";
const SIGNAL_PREFIX: &str = "smartcar://signals/";
const VEHICLE_PREFIX: &str = "smartcar://vehicles/";
const STATE_SUFFIX: &str = "/state";

pub fn state_uri(vehicle_id: &str) -> String {
    format!("{VEHICLE_PREFIX}{vehicle_id}{STATE_SUFFIX}")
}

/// The vehicle id of a state URI; only a valid id, so a subscription holds at most a short URI.
fn vehicle_of(uri: &str) -> Option<&str> {
    uri.strip_prefix(VEHICLE_PREFIX)?
        .strip_suffix(STATE_SUFFIX)
        .filter(|v| crate::catalogue::schema::is_valid_id(v))
}

fn json_contents(uri: &str, v: &Value) -> ResourceContents {
    ResourceContents::text(v.to_string(), uri).with_mime_type("application/json")
}

fn signal_json(s: &Signal) -> Value {
    json!({
        "code": s.code, "group": s.group, "name": s.name, "description": s.description,
        "unit": s.unit, "kind": s.kind.as_str(), "aliases": s.aliases,
    })
}

/// `mine`: the vehicles an OAuth caller reaches (`tool::tenancy::vehicles_of`); `None`, all.
pub async fn list(app: &AppState, mine: Option<&[String]>) -> ListResourcesResult {
    let mut items = vec![
        Resource::new(USAGE, "usage")
            .with_title("Upstream calls made and saved")
            .with_description(
                "Smartcar calls this server made, per vehicle and tool, and those it saved by sharing identical reads, its cache or pushed state; 429s met. Read it before polling a vehicle again.",
            )
            .with_mime_type("application/json"),
        Resource::new(SIGNALS_URI, "signals")
            .with_title("Smartcar signal codes")
            .with_description("Every signal code get_signal accepts: group, unit, kind and the older aliases. smartcar://signals/{code} reads one.")
            .with_mime_type("application/json"),
    ];
    for v in app.store.pushed_vehicles().await {
        if mine.is_some_and(|m| !m.contains(&v)) {
            continue;
        }
        items.push(
            Resource::new(state_uri(&v), format!("state of {v}"))
                .with_description("The latest state Smartcar pushed for this vehicle by webhook; subscribe to hear of changes.")
                .with_mime_type("application/json"),
        );
    }
    // Vehicles appear as their webhooks arrive, so the list is not cached for long.
    ListResourcesResult::with_all_items(items)
        .with_ttl_ms(10_000)
        .with_cache_scope(CacheScope::Private)
}

pub fn templates() -> ListResourceTemplatesResult {
    let t = |uri: &str, name: &str, desc: &str| {
        ResourceTemplate::new(uri, name)
            .with_description(desc)
            .with_mime_type("application/json")
    };
    ListResourceTemplatesResult::with_all_items(vec![
        t(
            "smartcar://signals/{code}",
            "signal",
            "One signal code (or an older alias): group, unit, kind, aliases.",
        ),
        t(
            "smartcar://vehicles/{vehicle_id}/state",
            "vehicle state",
            "The latest state Smartcar pushed for a vehicle by webhook.",
        ),
    ])
    .with_ttl_ms(3_600_000)
    .with_cache_scope(CacheScope::Public)
}

pub async fn read(
    app: &AppState,
    uri: &str,
    mine: Option<&[String]>,
) -> Result<ReadResourceResult, ErrorData> {
    let not_found = |why: String| Err(ErrorData::resource_not_found(why, None));
    if uri == USAGE {
        let mut usage = app.usage.snapshot().await;
        if let Some(mine) = mine {
            only_mine(&mut usage, mine);
        }
        return Ok(ReadResourceResult::new(vec![json_contents(uri, &usage)])
            .with_ttl_ms(0)
            .with_cache_scope(CacheScope::Private));
    }
    if uri == SIGNALS_URI {
        // Under --location off the location codes are refused, so the list leaves them out.
        let off = app.serving.location == crate::settings::LocationMode::Off;
        let all: Vec<Value> = SIGNALS
            .iter()
            .filter(|s| !off || s.group != "location")
            .map(signal_json)
            .collect();
        return Ok(
            ReadResourceResult::new(vec![json_contents(uri, &json!({ "signals": all }))])
                .with_ttl_ms(3_600_000)
                .with_cache_scope(CacheScope::Public),
        );
    }
    if let Some(code) = uri.strip_prefix(SIGNAL_PREFIX) {
        return match resolve_signal(code) {
            Some(s) => Ok(
                ReadResourceResult::new(vec![json_contents(uri, &signal_json(s))])
                    .with_ttl_ms(3_600_000)
                    .with_cache_scope(CacheScope::Public),
            ),
            None => not_found(format!(
                "`{}` {}",
                clip(code),
                crate::catalogue::not_a_signal(code).0
            )),
        };
    }
    if let Some(vehicle) = vehicle_of(uri) {
        // Operator-level, like the other resources: whoever may connect to this server sees every
        // vehicle's pushed state. Tool reads, which name a user, go through `Store::fresh`.
        // Another caller's vehicle reads exactly as one with no pushed state.
        let pushed = match mine {
            Some(m) if !m.iter().any(|v| v == vehicle) => None,
            _ => app.store.pushed_state(vehicle).await,
        };
        return match pushed {
            Some(state) => Ok({
                let mut json = state.to_json();
                let location = app.serving.location;
                if let Some(note) = crate::tool::privacy::apply(location, false, &mut json) {
                    json["location_note"] = Value::String(note);
                }
                ReadResourceResult::new(vec![json_contents(uri, &json)])
                    .with_ttl_ms(0)
                    .with_cache_scope(CacheScope::Private)
            }),
            None => not_found(format!(
                "no pushed state for vehicle `{}`: Smartcar has sent no webhook for it to this server (read it with get_signals instead)",
                clip(vehicle)
            )),
        };
    }
    not_found(format!(
        "no resource `{}` (this server serves {USAGE}, {SIGNALS_URI}, smartcar://signals/{{code}} and smartcar://vehicles/{{vehicle_id}}/state)",
        clip(uri)
    ))
}

/// The usage report cut to a caller's vehicles: the application-wide totals are not its to see.
fn only_mine(usage: &mut Value, mine: &[String]) {
    if let Some(rows) = usage.get_mut("vehicles").and_then(Value::as_array_mut) {
        rows.retain(|r| {
            r["vehicle_id"]
                .as_str()
                .is_some_and(|v| mine.iter().any(|m| m == v))
        });
    }
    if let Some(o) = usage.as_object_mut() {
        o.remove("total");
        o.remove("saved");
    }
}

/// Most subscriptions one session may hold.
pub const MAX_PER_SESSION: usize = 1_000;

/// Handshake-revision sessions subscribed to vehicles' state: per session (a number each handler
/// gets, `SessionMark`), the session's peer and the URIs it subscribed, each once.
type Held = HashMap<u64, (Peer<RoleServer>, BTreeSet<String>)>;
type List = Arc<Mutex<Held>>;

#[derive(Default)]
pub struct Subscribers {
    list: List,
    forwarding: std::sync::OnceLock<()>,
    sessions: AtomicU64,
}

fn lock(list: &List) -> std::sync::MutexGuard<'_, Held> {
    list.locked()
}

/// One session's hold on its subscriptions: when the session's handler goes (the session ended),
/// they go too, and with them the session's peer.
pub struct SessionMark {
    id: u64,
    list: List,
}

impl Drop for SessionMark {
    fn drop(&mut self) {
        lock(&self.list).remove(&self.id);
    }
}

impl Subscribers {
    /// A mark for a new session's handler.
    pub fn mark(&self) -> SessionMark {
        SessionMark {
            id: self.sessions.fetch_add(1, Ordering::Relaxed),
            list: self.list.clone(),
        }
    }

    /// Subscriptions held now, over every session.
    pub fn len(&self) -> usize {
        lock(&self.list).values().map(|(_, uris)| uris.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// `resources/subscribe`: only a vehicle's state changes, so only those URIs can be subscribed.
/// A URI already subscribed by the session is kept once.
pub fn subscribe(
    subs: &Subscribers,
    store: &Store,
    uri: &str,
    session: &SessionMark,
    peer: Peer<RoleServer>,
    mine: Option<&[String]>,
) -> Result<(), ErrorData> {
    if let (Some(m), Some(v)) = (mine, vehicle_of(uri))
        && !m.iter().any(|x| x == v)
    {
        return Err(ErrorData::invalid_params(
            format!(
                "vehicle `{}` is not one of your vehicles, so its state cannot be subscribed",
                clip(v)
            ),
            None,
        ));
    }
    if vehicle_of(uri).is_none() {
        return Err(ErrorData::invalid_params(
            format!(
                "`{}` does not change; subscribe to smartcar://vehicles/{{vehicle_id}}/state",
                clip(uri)
            ),
            None,
        ));
    }
    {
        let mut list = lock(&subs.list);
        let (_, uris) = list
            .entry(session.id)
            .or_insert_with(|| (peer, BTreeSet::new()));
        if uris.len() >= MAX_PER_SESSION && !uris.contains(uri) {
            return Err(ErrorData::invalid_params(
                format!(
                    "this session holds {MAX_PER_SESSION} subscriptions, the most one session may; unsubscribe from some first"
                ),
                None,
            ));
        }
        uris.insert(uri.to_string());
    }
    subs.forwarding.get_or_init(|| {
        tokio::spawn(forward(store.subscribe(), subs.list.clone()));
    });
    Ok(())
}

pub fn unsubscribe(subs: &Subscribers, uri: &str, session: &SessionMark) {
    let mut list = lock(&subs.list);
    if let Some((_, uris)) = list.get_mut(&session.id) {
        uris.remove(uri);
        if uris.is_empty() {
            list.remove(&session.id);
        }
    }
}

/// Tells subscribed sessions when a vehicle's pushed state changes; drops closed sessions.
async fn forward(mut updates: tokio::sync::broadcast::Receiver<String>, list: List) {
    loop {
        let vehicle = match updates.recv().await {
            Ok(v) => v,
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
            Err(_) => return,
        };
        let uri = state_uri(&vehicle);
        let targets: Vec<(u64, Peer<RoleServer>)> = lock(&list)
            .iter()
            .filter(|(_, (_, uris))| uris.contains(&uri))
            .map(|(id, (p, _))| (*id, p.clone()))
            .collect();
        for (id, peer) in targets {
            let sent = peer
                .notify_resource_updated(ResourceUpdatedNotificationParam::new(uri.clone()))
                .await;
            if sent.is_err() {
                lock(&list).remove(&id);
            }
        }
    }
}

/// 2026-07-28: which of the requested subscriptions this server honours.
pub fn accepted(requested: &SubscriptionFilter) -> Option<SubscriptionFilter> {
    let uris: Vec<String> = requested
        .resource_subscriptions
        .iter()
        .flatten()
        .filter(|u| vehicle_of(u).is_some())
        .cloned()
        .collect();
    // An empty filter is still a subscription (acknowledged, then quiet): this server sends no
    // list-changed notifications, because its tools, prompts and resource list are fixed.
    Some(
        SubscriptionFilter::builder()
            .resource_subscriptions(uris)
            .build(),
    )
}

/// 2026-07-28: one `subscriptions/listen` stream, until the client ends it.
pub async fn listen(
    store: &Store,
    ctx: SubscriptionContext,
    mine: Option<Vec<String>>,
) -> Result<(), ErrorData> {
    let mut wanted: Vec<String> = ctx
        .accepted()
        .resource_subscriptions
        .clone()
        .unwrap_or_default();
    // Another caller's vehicles are dropped silently: their changes are not this caller's news.
    if let Some(mine) = mine {
        wanted.retain(|u| vehicle_of(u).is_some_and(|v| mine.iter().any(|m| m == v)));
    }
    let mut updates = store.subscribe();
    loop {
        tokio::select! {
            _ = ctx.cancelled() => return Ok(()),
            got = updates.recv() => match got {
                Ok(vehicle) => {
                    let uri = state_uri(&vehicle);
                    if wanted.contains(&uri) && ctx.sink().notify_resource_updated(uri).await.is_err() {
                        return Ok(());
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(_) => return Ok(()),
            },
        }
    }
}
