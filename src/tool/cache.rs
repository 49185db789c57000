//! The one answer cache, so a billed call is not paid twice: reads reused for `--cache-ttl-s`
//! and Compatibility API answers for a day (Smartcar recommends caching them at least 24 h),
//! each kind with its TTL, both under one bound where the least recently used go first.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::result::ToolResult;
use crate::sync::Locked;

/// How long a Compatibility API answer is reused.
pub const COMPATIBILITY_TTL: Duration = Duration::from_secs(24 * 60 * 60);
/// Most answers kept, of both kinds together. A Compatibility key is a URL holding the
/// client's `make` and `powertrainType` and a read key holds its arguments, so without a bound
/// a client could grow either for as long as the TTL.
pub const MAX_CACHED: usize = 8_192;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A shaped read, keyed by credentials, tool and canonical arguments.
    Read,
    /// Smartcar's raw Compatibility API answer, keyed by URL: shaped per call, since the same
    /// answer serves the compact and the raw form.
    Compatibility,
}

enum Answer {
    Result(Arc<ToolResult>),
    Raw {
        status: u16,
        body: Option<Arc<Value>>,
    },
}

struct Entry {
    at: Instant,
    used: u64,
    /// The vehicle a read is about, so a command to it drops it.
    vehicle: Option<String>,
    answer: Answer,
}

/// Entries of each kind by key, and every key by its last use, so a lookup and an eviction
/// each cost a logarithm rather than a scan.
#[derive(Default)]
struct Lru {
    reads: HashMap<String, Entry>,
    compatibility: HashMap<String, Entry>,
    by_use: BTreeMap<u64, (Kind, String)>,
    clock: u64,
}

impl Lru {
    fn map(&mut self, kind: Kind) -> &mut HashMap<String, Entry> {
        match kind {
            Kind::Read => &mut self.reads,
            Kind::Compatibility => &mut self.compatibility,
        }
    }

    /// The entry and its age, marked used; `None` (and the entry gone) once older than `ttl`.
    fn get(&mut self, kind: Kind, key: &str, ttl: Duration) -> Option<(&Entry, Duration)> {
        let age = self.map(kind).get(key)?.at.elapsed();
        if age >= ttl {
            self.remove(kind, key);
            return None;
        }
        self.clock += 1;
        let now = self.clock;
        let used = std::mem::replace(&mut self.map(kind).get_mut(key)?.used, now);
        if let Some(k) = self.by_use.remove(&used) {
            self.by_use.insert(now, k);
        }
        Some((self.map(kind).get(key)?, age))
    }

    fn insert(&mut self, kind: Kind, key: &str, vehicle: Option<&str>, answer: Answer) {
        self.remove(kind, key);
        while self.reads.len() + self.compatibility.len() >= MAX_CACHED {
            let Some((_, (k, oldest))) = self.by_use.pop_first() else {
                break;
            };
            self.map(k).remove(&oldest);
        }
        self.clock += 1;
        self.by_use.insert(self.clock, (kind, key.to_string()));
        let entry = Entry {
            at: Instant::now(),
            used: self.clock,
            vehicle: vehicle.map(str::to_string),
            answer,
        };
        self.map(kind).insert(key.to_string(), entry);
    }

    fn remove(&mut self, kind: Kind, key: &str) {
        if let Some(e) = self.map(kind).remove(key) {
            self.by_use.remove(&e.used);
        }
    }
}

pub struct Cache {
    lru: Mutex<Lru>,
    read_ttl: Duration,
}

impl Cache {
    /// Reads are reused for `read_ttl` (zero: never).
    pub fn new(read_ttl: Duration) -> Self {
        Cache {
            lru: Mutex::default(),
            read_ttl,
        }
    }

    fn ttl(&self, kind: Kind) -> Duration {
        match kind {
            Kind::Read => self.read_ttl,
            Kind::Compatibility => COMPATIBILITY_TTL,
        }
    }

    /// A reusable read for `key` and its age, shared rather than copied.
    pub fn read(&self, key: &str) -> Option<(Arc<ToolResult>, Duration)> {
        if self.read_ttl.is_zero() {
            return None;
        }
        let mut lru = self.lru.locked();
        match lru.get(Kind::Read, key, self.read_ttl)? {
            (
                Entry {
                    answer: Answer::Result(r),
                    ..
                },
                age,
            ) => Some((r.clone(), age)),
            _ => None,
        }
    }

    /// Keeps a successful read about `vehicle` for the read TTL.
    pub fn keep_read(&self, key: &str, vehicle: Option<&str>, result: &Arc<ToolResult>) {
        if self.read_ttl.is_zero() || result.is_error {
            return;
        }
        let answer = Answer::Result(result.clone());
        self.lru.locked().insert(Kind::Read, key, vehicle, answer);
    }

    /// A Compatibility API answer (status, body) for this URL, younger than a day.
    pub fn compatibility(&self, url: &str) -> Option<(u16, Option<Arc<Value>>)> {
        let mut lru = self.lru.locked();
        let ttl = self.ttl(Kind::Compatibility);
        match lru.get(Kind::Compatibility, url, ttl)? {
            (
                Entry {
                    answer: Answer::Raw { status, body },
                    ..
                },
                _,
            ) => Some((*status, body.clone())),
            _ => None,
        }
    }

    pub fn keep_compatibility(&self, url: &str, status: u16, body: Option<Value>) {
        let answer = Answer::Raw {
            status,
            body: body.map(Arc::new),
        };
        self.lru
            .locked()
            .insert(Kind::Compatibility, url, None, answer);
    }

    /// Drops the reads of a vehicle a command or deletion is about to change; `None` (a
    /// deletion whose vehicle is not known) drops every read. Compatibility answers describe
    /// makes and models, which no command changes.
    pub fn invalidate(&self, vehicle: Option<&str>) {
        let mut lru = self.lru.locked();
        let gone: Vec<String> = lru
            .reads
            .iter()
            .filter(|(_, e)| vehicle.is_none() || e.vehicle.as_deref() == vehicle)
            .map(|(k, _)| k.clone())
            .collect();
        for key in gone {
            lru.remove(Kind::Read, &key);
        }
    }

    /// Answers of `kind` held now.
    pub fn len(&self, kind: Kind) -> usize {
        let mut lru = self.lru.locked();
        lru.map(kind).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ok(n: u64) -> Arc<ToolResult> {
        Arc::new(ToolResult::success(None, json!({ "n": n })))
    }

    #[tokio::test]
    async fn reads_expire_and_a_vehicle_write_drops_only_its_reads() {
        let c = Cache::new(Duration::from_millis(200));
        c.keep_read("a", Some("v-1"), &ok(1));
        c.keep_read("b", Some("v-2"), &ok(2));
        let error = ToolResult::error(
            "no".into(),
            json!({"error": {}}),
            crate::tool::result::ErrorKind::BadResponse,
        );
        c.keep_read("e", Some("v-2"), &Arc::new(error));
        c.keep_compatibility("https://c/1", 200, Some(json!({})));
        assert!(c.read("e").is_none(), "errors are never cached");
        let (a, _) = c.read("a").unwrap();
        assert_eq!(a.structured["n"], 1);
        assert_eq!(
            Arc::strong_count(&a),
            2,
            "shared with the cache, not copied"
        );
        c.invalidate(Some("v-1"));
        assert!(c.read("a").is_none());
        assert!(c.read("b").is_some());
        c.invalidate(None);
        assert!(c.read("b").is_none());
        assert!(
            c.compatibility("https://c/1").is_some(),
            "no command changes a model"
        );
        c.keep_read("b", Some("v-2"), &ok(2));
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert!(c.read("b").is_none(), "older than the read TTL");
        assert!(c.compatibility("https://c/1").is_some(), "its TTL is a day");
        let off = Cache::new(Duration::ZERO);
        off.keep_read("a", None, &ok(1));
        assert!(off.read("a").is_none(), "a read TTL of 0 is off");
        assert_eq!(off.len(Kind::Read), 0);
    }

    #[test]
    fn one_bound_holds_both_kinds_and_the_least_recently_used_go_first() {
        let c = Cache::new(Duration::from_secs(60));
        for i in 0..MAX_CACHED / 2 {
            c.keep_compatibility(&format!("u{i}"), 200, None);
            c.keep_read(&format!("r{i}"), None, &ok(i as u64));
        }
        assert!(c.compatibility("u0").is_some(), "used, so now the newest");
        c.keep_compatibility("new", 200, None);
        assert_eq!(c.len(Kind::Read) + c.len(Kind::Compatibility), MAX_CACHED);
        assert!(c.read("r0").is_none(), "the least recently used went");
        assert!(c.compatibility("u0").is_some() && c.compatibility("new").is_some());
        c.keep_compatibility("new", 404, None);
        assert_eq!(c.compatibility("new").map(|(s, _)| s), Some(404));
        let lru = c.lru.locked();
        assert_eq!(
            lru.by_use.len(),
            lru.reads.len() + lru.compatibility.len(),
            "every entry once in the use order"
        );
    }
}
