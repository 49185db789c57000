//! The operator's daily allowance of upstream calls per vehicle (`--max-calls-per-vehicle-per-day`),
//! as one atomic reservation per call: taken after the vehicle's lane, before anything is sent,
//! and settled with what the call really cost.
//!
//! Reading today's count, waiting for a lane and adding the call only once it returned let a
//! burst at `limit - 1` all pass. A reservation counts the call before it leaves, so of 20 calls
//! racing for the last slot exactly one goes. The count is the store's (`Store::reserve_call`):
//! with the audit database on, processes sharing the file share the allowance; without it, the
//! count is this process's.
//!
//! A call Smartcar did not answer for (404, or no answer) gives its reservation back: those ids
//! are the client's choice, and neither are billed calls of a vehicle. A vehicle's first
//! reservation of the day starts from what the usage counters already hold for it today, so
//! calls made before a restart, or before the limit was set, still count.

use std::sync::Arc;

use super::error::ToolError;
use crate::store::{Reservation, Store};

pub struct Cap {
    limit: Option<u64>,
    store: Arc<Store>,
}

impl Cap {
    /// `limit` calls per vehicle per UTC day (`None`: no limit), counted in `store`.
    pub fn new(limit: Option<u64>, store: Arc<Store>) -> Self {
        Cap { limit, store }
    }

    /// Takes one call of `vehicle`'s allowance, or refuses when today's is used up. With no
    /// limit set, nothing is counted.
    pub async fn reserve(&self, vehicle: &str) -> Result<Option<Reservation<'_>>, ToolError> {
        let Some(limit) = self.limit else {
            return Ok(None);
        };
        let refused = || ToolError::DailyLimit {
            vehicle: vehicle.to_string(),
            limit,
        };
        if limit == 0 {
            return Err(refused());
        }
        match self.store.reserve_call(vehicle, limit).await {
            Ok(Some(r)) => Ok(Some(r)),
            Ok(None) => Err(refused()),
            Err(e) => Err(ToolError::AuditUnavailable {
                detail: format!("the daily call count could not be checked ({})", e.detail),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn no_limit_counts_nothing_and_zero_refuses_everything() {
        let store = Arc::new(Store::memory());
        let none = Cap::new(None, store.clone());
        assert!(none.reserve("v").await.unwrap().is_none());
        assert_eq!(store.calls_today("v").await.unwrap(), 0);
        let zero = Cap::new(Some(0), store.clone());
        assert!(matches!(
            zero.reserve("v").await,
            Err(ToolError::DailyLimit { .. })
        ));
        let two = Cap::new(Some(2), store.clone());
        let a = two.reserve("v").await.unwrap().expect("a limit is set");
        let _b = two.reserve("v").await.unwrap().unwrap();
        assert!(matches!(
            two.reserve("v").await,
            Err(ToolError::DailyLimit { limit: 2, .. })
        ));
        a.settle(1, true).await;
        assert_eq!(store.calls_today("v").await.unwrap(), 2);
    }
}
