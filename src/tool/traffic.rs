//! Fewer billed calls: identical reads in flight share one upstream request, and each vehicle
//! has a few lanes so a burst cannot trip Smartcar's per-vehicle rate limit. (Answers reused
//! for a while are `tool::cache`'s.)

use crate::sync::Locked;
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};

use super::error::ToolError;
use super::result::ToolResult;

/// Lanes kept for idle vehicles before the idle ones are dropped.
const MAX_IDLE_LANES: usize = 4_096;
pub struct Traffic {
    inflight: Mutex<HashMap<String, watch::Receiver<Option<Arc<ToolResult>>>>>,
    lanes: Mutex<HashMap<String, Arc<Semaphore>>>,
    per_vehicle: usize,
    wait: Duration,
}

/// Removes the in-flight entry when the leader finishes or is cancelled, so a later call starts
/// afresh instead of waiting on an answer that will never come.
struct Leading<'a> {
    traffic: &'a Traffic,
    key: &'a str,
}

impl Drop for Leading<'_> {
    fn drop(&mut self) {
        self.traffic.inflight.locked().remove(self.key);
    }
}

impl Traffic {
    pub fn new(per_vehicle: usize, wait: Duration) -> Self {
        Traffic {
            inflight: Mutex::default(),
            lanes: Mutex::default(),
            per_vehicle: per_vehicle.max(1),
            wait,
        }
    }

    /// Runs `call` unless an identical one is in flight, in which case its answer is shared.
    /// Returns the answer, shared rather than copied, and whether it came from another call.
    pub async fn coalesce(
        &self,
        key: &str,
        call: impl Future<Output = Arc<ToolResult>>,
    ) -> (Arc<ToolResult>, bool) {
        let follow = {
            let mut inflight = self.inflight.locked();
            match inflight.get(key) {
                Some(rx) => Ok(rx.clone()),
                None => {
                    let (tx, rx) = watch::channel(None);
                    inflight.insert(key.to_string(), rx);
                    Err(tx)
                }
            }
        };
        match follow {
            Ok(mut rx) => {
                loop {
                    if let Some(r) = rx.borrow_and_update().clone() {
                        return (r, true);
                    }
                    if rx.changed().await.is_err() {
                        break;
                    }
                }
                // The leader was cancelled before answering: ask ourselves.
                (call.await, false)
            }
            Err(tx) => {
                let leading = Leading { traffic: self, key };
                let r = call.await;
                // Out of the map first, so nobody new can follow; then a reference for those
                // already waiting.
                drop(leading);
                if tx.receiver_count() > 0 {
                    let _ = tx.send(Some(r.clone()));
                }
                (r, false)
            }
        }
    }

    /// Waits for one of the vehicle's lanes, at most the configured wait.
    pub async fn lane(&self, vehicle: &str) -> Result<OwnedSemaphorePermit, ToolError> {
        let lane = {
            let mut lanes = self.lanes.locked();
            if lanes.len() > MAX_IDLE_LANES {
                // Only lanes nobody holds or waits on (the map's own reference) can go.
                lanes.retain(|_, s| Arc::strong_count(s) > 1);
            }
            lanes
                .entry(vehicle.to_string())
                .or_insert_with(|| Arc::new(Semaphore::new(self.per_vehicle)))
                .clone()
        };
        match tokio::time::timeout(self.wait, lane.acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            _ => Err(ToolError::VehicleBusy {
                vehicle: vehicle.to_string(),
                waited_ms: self.wait.as_millis() as u64,
                lanes: self.per_vehicle,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn ok(n: u64) -> Arc<ToolResult> {
        Arc::new(ToolResult::success(None, json!({ "n": n })))
    }

    #[tokio::test]
    async fn concurrent_identical_calls_run_once_and_share_the_answer() {
        let t = Arc::new(Traffic::new(2, Duration::from_secs(1)));
        let runs = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..10 {
            let (t, runs) = (t.clone(), runs.clone());
            tasks.push(tokio::spawn(async move {
                t.coalesce("k", async {
                    runs.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    ok(7)
                })
                .await
            }));
        }
        let mut shared = 0;
        for task in tasks {
            let (r, s) = task.await.unwrap();
            assert_eq!(r.structured["n"], 7);
            shared += usize::from(s);
        }
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert_eq!(shared, 9);
        // Finished calls are not remembered: the next one runs again.
        let (_, s) = t.coalesce("k", async { ok(8) }).await;
        assert!(!s);
    }

    #[tokio::test]
    async fn a_cancelled_leader_lets_its_followers_ask_themselves() {
        let t = Arc::new(Traffic::new(2, Duration::from_secs(1)));
        let leader = {
            let t = t.clone();
            tokio::spawn(async move {
                t.coalesce("k", async {
                    tokio::time::sleep(Duration::from_secs(60)).await;
                    ok(1)
                })
                .await
            })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        let follower = {
            let t = t.clone();
            tokio::spawn(async move { t.coalesce("k", async { ok(2) }).await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        leader.abort();
        let (r, shared) = follower.await.unwrap();
        assert_eq!(r.structured["n"], 2);
        assert!(!shared);
    }

    #[tokio::test]
    async fn a_vehicle_has_as_many_lanes_as_configured_and_a_bounded_wait() {
        let t = Traffic::new(2, Duration::from_millis(50));
        let a = t.lane("v-1").await.unwrap();
        let _b = t.lane("v-1").await.unwrap();
        let busy = t.lane("v-1").await.unwrap_err();
        assert!(matches!(busy, ToolError::VehicleBusy { .. }), "{busy:?}");
        // Another vehicle never waits on this one.
        assert!(t.lane("v-2").await.is_ok());
        drop(a);
        assert!(t.lane("v-1").await.is_ok());
    }
}
