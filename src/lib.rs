//! smartcar-mcp: an MCP server for Smartcar's v3 vehicle APIs, driven by a compiled catalogue.
//!
//! # Layout
//! - `catalogue`: the tool and signal tables generated from tools.yaml and signals.yaml.
//! - `arguments`: validation of call arguments against the published schemas.
//! - `executor`: arguments -> HTTP request -> retry policy -> outcome.
//! - `auth`: the client-credentials token cache.
//! - `upstream_error`: Smartcar's error bodies, parsed.
//! - `server`: the MCP side (rmcp).
//! - `simulator`: a local stand-in of Smartcar's API for tests, demos and offline use.
//! - `config`: command line and environment settings.
pub mod arguments;
pub mod auth;
pub mod catalogue;
pub mod config;
pub mod demo;
pub mod dispatch;
pub mod executor;
pub mod http;
pub mod selection;
pub mod server;
pub mod shape;
pub mod simulator;
pub mod upstream_error;
