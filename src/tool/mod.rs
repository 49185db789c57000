//! One tool call, free of MCP: which tools are served, their arguments, the one call pipeline,
//! result shaping and size, the errors a tool returns, and the controls on billed calls
//! (coalescing, cache, per-vehicle lanes, usage) and on commands (the audit log, kept by
//! `store`), and what each OAuth caller may reach (`tenancy`).

pub mod arguments;
pub mod bound;
pub mod cache;
pub mod call;
pub mod cap;
pub mod error;
pub mod meta;
pub mod owners;
pub mod privacy;
pub mod result;
pub mod selection;
pub mod shape;
pub mod state;
pub mod tenancy;
pub mod traffic;
pub mod usage;
pub mod verify;

pub use call::{Caller, Confirm, Step, Verdict};
pub use error::ToolError;
pub use result::ToolResult;
pub use state::AppState;
