//! The requests in flight on each session, stdio or HTTP, so that one rule holds on both: a
//! request id names one request at a time. A second request with an id still in flight is
//! refused with -32600 at once; before, rmcp answered only one of them and the others waited
//! forever, holding their streams and their session open.
//!
//! An id is in flight from the request until its answer is written (stdio) or its answer stream
//! ends (HTTP). A cancelled request (`notifications/cancelled`) gets no answer, yet its handler
//! may still be finishing, and rmcp would give that late result to a new request reusing the id
//! (and drop the new request's own answer), so a cancelled id stays taken, as MCP asks ids never
//! be reused in a session; only the last `MAX_CANCELLED` are remembered, so cancels cannot grow
//! memory. Each entry carries a ticket, so the end of an earlier request never frees an id a
//! later request now holds.

use crate::sync::Locked;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use rmcp::model::RequestId;
use serde_json::Value;

use super::malformed::{INVALID_REQUEST, error_response};

type Key = (Arc<str>, RequestId);

/// Cancelled ids remembered, over every session.
pub const MAX_CANCELLED: usize = 1_024;

#[derive(Clone, Default)]
pub struct Flights {
    held: Arc<Mutex<Held>>,
    tickets: Arc<AtomicU64>,
}

#[derive(Default)]
struct Held {
    ids: HashMap<Key, u64>,
    cancelled: VecDeque<(Key, u64)>,
}

/// One request in flight; ends it when dropped (an HTTP answer stream that ended).
pub struct Landing {
    flights: Flights,
    key: Key,
    ticket: u64,
}

impl Drop for Landing {
    fn drop(&mut self) {
        self.flights.end_ticket(&self.key, Some(self.ticket));
    }
}

impl Flights {
    fn lock(&self) -> std::sync::MutexGuard<'_, Held> {
        self.held.locked()
    }

    /// Starts a request that ends when dropped; `None` when a request with this id is still in
    /// flight on the session.
    pub fn begin(&self, session: &str, id: RequestId) -> Option<Landing> {
        let key: Key = (session.into(), id);
        let ticket = self.take(&key)?;
        Some(Landing {
            flights: self.clone(),
            key,
            ticket,
        })
    }

    /// Starts a request that ends with `end`; false when its id is still in flight.
    pub fn hold(&self, session: &str, id: RequestId) -> bool {
        self.take(&(session.into(), id)).is_some()
    }

    fn take(&self, key: &Key) -> Option<u64> {
        let ticket = self.tickets.fetch_add(1, Ordering::Relaxed);
        let mut held = self.lock();
        if held.ids.contains_key(key) {
            return None;
        }
        held.ids.insert(key.clone(), ticket);
        Some(ticket)
    }

    /// The request with this id was answered, whichever request holds it now.
    pub fn end(&self, session: &str, id: RequestId) {
        self.end_ticket(&(session.into(), id), None);
    }

    /// The client cancelled the request with this id: it stays taken among the last
    /// `MAX_CANCELLED` cancelled ids.
    pub fn cancel(&self, session: &str, id: RequestId) {
        let key: Key = (session.into(), id);
        let mut held = self.lock();
        let Some(ticket) = held.ids.get(&key).copied() else {
            return;
        };
        held.cancelled.push_back((key, ticket));
        while held.cancelled.len() > MAX_CANCELLED {
            if let Some((old, t)) = held.cancelled.pop_front()
                && held.ids.get(&old) == Some(&t)
            {
                held.ids.remove(&old);
            }
        }
    }

    fn end_ticket(&self, key: &Key, ticket: Option<u64>) {
        let mut held = self.lock();
        if ticket.is_none_or(|t| held.ids.get(key) == Some(&t)) {
            held.ids.remove(key);
        }
    }

    /// Requests in flight (or cancelled and remembered) now, over every session.
    pub fn len(&self) -> usize {
        self.lock().ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The answer to a request whose id is already in flight.
pub fn duplicate(id: &RequestId) -> Value {
    let shown = serde_json::to_value(id).unwrap_or(Value::Null);
    error_response(
        shown.clone(),
        INVALID_REQUEST,
        &format!(
            "Invalid request: a request with id {} is still in flight on this session; use a new id for each request",
            crate::text::clip(&shown.to_string())
        ),
    )
}

/// The answer to a second `initialize` on a session that has one.
pub fn reinitialize(id: Option<&RequestId>) -> Value {
    let id = id
        .and_then(|i| serde_json::to_value(i).ok())
        .unwrap_or(Value::Null);
    error_response(
        id,
        INVALID_REQUEST,
        "Invalid request: this session is already initialized; start a new session to initialize again",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_is_held_once_per_session_until_its_request_ends() {
        let f = Flights::default();
        let one = RequestId::Number(1);
        let first = f.begin("a", one.clone()).expect("free");
        assert!(f.begin("a", one.clone()).is_none(), "still in flight");
        let other_session = f
            .begin("b", one.clone())
            .expect("another session's ids are its own");
        drop(first);
        let again = f.begin("a", one.clone()).expect("freed by the answer");
        // An answer written for it frees the id; the earlier request's late end must not free
        // the later one's.
        f.end("a", one.clone());
        let later = f.begin("a", one.clone()).expect("freed by its answer");
        drop(again);
        assert!(
            f.begin("a", one.clone()).is_none(),
            "the later request still holds it"
        );
        drop(later);
        drop(other_session);
        assert!(f.is_empty());
    }

    #[test]
    fn cancelled_ids_stay_taken_and_only_the_last_are_remembered() {
        let f = Flights::default();
        for i in 0..(MAX_CANCELLED as i64 + 10) {
            assert!(f.hold("s", RequestId::Number(i)));
            f.cancel("s", RequestId::Number(i));
        }
        let recent = RequestId::Number(MAX_CANCELLED as i64);
        assert!(!f.hold("s", recent), "recently cancelled");
        assert_eq!(f.len(), MAX_CANCELLED);
        assert!(
            f.hold("s", RequestId::Number(0)),
            "forgotten beyond the bound"
        );
        f.cancel("s", RequestId::Number(99_999));
        assert_eq!(
            f.len(),
            MAX_CANCELLED + 1,
            "a cancel of an unknown id holds nothing"
        );
    }
}
