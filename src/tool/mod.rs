//! One tool call, free of MCP: which tools are served, their arguments, the one call pipeline,
//! result shaping and size, and the errors a tool returns.

pub mod arguments;
pub mod bound;
pub mod call;
pub mod error;
pub mod result;
pub mod selection;
pub mod shape;
pub mod state;

pub use call::{Confirm, Step, Verdict};
pub use error::ToolError;
pub use result::ToolResult;
pub use state::AppState;
