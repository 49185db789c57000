//! The MCP side, and with `demo.rs` the only code naming rmcp: the handler, confirmation by
//! elicitation, and Streamable HTTP serving.

pub mod confirm;
pub mod http;
pub mod malformed;
pub mod server;
pub mod sessions;
pub mod stdio;

pub use server::{Shared, SmartcarServer, serve_stdio, tools_json};
