//! The Smartcar client: request building, sending with the retry policy, the client-credentials
//! token, Smartcar's error bodies, and how its webhooks are signed and verified. Knows nothing of
//! tools' results or of MCP.

pub mod auth;
pub mod error;
pub mod executor;
pub mod request;
pub mod webhook;

pub use auth::AuthError;
pub use error::UpstreamError;
pub use executor::{Executor, Failure, Outcome, RetryCause, RetryNote, Success};
pub use request::{PreparedRequest, build_request, build_request_at};
