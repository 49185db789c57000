//! The MCP side, and with `demo.rs` the only code naming rmcp: the handler, confirmation by
//! elicitation, Streamable HTTP serving (with the OAuth resource server, `guard`), resources, prompts, the MCP Apps view and the webhook
//! receiver.

pub mod apps;
pub mod confirm;
pub mod flight;
pub mod guard;
pub mod http;
pub mod malformed;
pub mod prompts;
pub mod resources;
pub mod server;
pub mod session_store;
pub mod sessions;
pub mod stdio;
pub mod webhook;

pub use server::{INSTRUCTIONS, Shared, SmartcarServer, model_visible, serve_stdio, tools_json};
