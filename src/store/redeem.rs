//! Single-use confirmation answers: a sealed answer (its digest) is taken once, and remembered
//! until it would have expired anyway. This is the memory form, bounded; SQLite and PostgreSQL
//! keep the same in a table, so a replay is refused across restarts and across replicas.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// Most answers remembered in memory; beyond it the oldest go first (they expire soonest).
pub const MAX_REDEEMED: usize = 100_000;

#[derive(Default)]
pub(crate) struct Redeemed {
    until: HashMap<String, Instant>,
    order: VecDeque<String>,
}

impl Redeemed {
    /// Whether `key` was taken now (false: taken before and not yet expired).
    pub(crate) fn take(&mut self, key: &str, valid_for: Duration) -> bool {
        let now = Instant::now();
        while let Some(k) = self.order.front() {
            let expired = self.until.get(k).is_none_or(|t| *t <= now);
            if !expired && self.order.len() < MAX_REDEEMED {
                break;
            }
            let k = self.order.pop_front().unwrap_or_default();
            self.until.remove(&k);
        }
        if self.until.get(key).is_some_and(|t| *t > now) {
            return false;
        }
        self.until.insert(key.to_string(), now + valid_for);
        self.order.push_back(key.to_string());
        true
    }
}
