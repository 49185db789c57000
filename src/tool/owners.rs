//! The ownership cache behind `tool::tenancy`: each Smartcar user's connections (id and vehicle)
//! as Smartcar last listed them, trusted a few minutes, bounded, and dropped whole when a delete
//! or a webhook event may have changed them. A cache, not a record: each replica keeps its own.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::sync::Locked;

/// How long a user's connections are trusted without asking Smartcar again.
pub const OWNERS_TTL: Duration = Duration::from_secs(180);
/// Most users whose connections are kept; beyond it the stale go, then all.
const MAX_USERS: usize = 10_000;

/// One connection of a user: its id and its vehicle.
#[derive(Debug, Clone)]
pub struct Owned {
    pub connection: String,
    pub vehicle: String,
}

/// Users' connections as Smartcar last listed them.
#[derive(Default)]
pub struct Owners(Mutex<HashMap<String, (Instant, Vec<Owned>)>>);

impl Owners {
    /// Forgets every user's connections: a delete or a webhook event may have changed them.
    pub fn forget(&self) {
        self.0.locked().clear();
    }

    pub(super) fn get(&self, user: &str) -> Option<Vec<Owned>> {
        let map = self.0.locked();
        let (at, owned) = map.get(user)?;
        (at.elapsed() < OWNERS_TTL).then(|| owned.clone())
    }

    pub(super) fn put(&self, user: &str, owned: Vec<Owned>) {
        let mut map = self.0.locked();
        if map.len() >= MAX_USERS {
            map.retain(|_, (at, _)| at.elapsed() < OWNERS_TTL);
            if map.len() >= MAX_USERS {
                map.clear();
            }
        }
        map.insert(user.to_string(), (Instant::now(), owned));
    }
}
