//! Handshake sessions that outlive their replica: rmcp's `SessionStore` over the shared store,
//! so a request on another replica (or after a restart) restores the session by replaying its
//! `initialize`. Set only when the store is shared (PostgreSQL); a store of one process keeps
//! sessions in memory as before.

use std::sync::Arc;

use rmcp::transport::streamable_http_server::session::{
    SessionState, SessionStore, SessionStoreError,
};

use crate::store::Store;

pub struct SharedSessions(pub Arc<Store>);

#[async_trait::async_trait]
impl SessionStore for SharedSessions {
    async fn load(&self, session_id: &str) -> Result<Option<SessionState>, SessionStoreError> {
        match self.0.session_load(session_id).await? {
            Some(json) => Ok(Some(serde_json::from_str(&json)?)),
            None => Ok(None),
        }
    }

    async fn store(&self, session_id: &str, state: &SessionState) -> Result<(), SessionStoreError> {
        let json = serde_json::to_string(state)?;
        Ok(self.0.session_save(session_id, &json).await?)
    }

    async fn delete(&self, session_id: &str) -> Result<(), SessionStoreError> {
        Ok(self.0.session_delete(session_id).await?)
    }
}
