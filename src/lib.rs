//! smartcar-mcp: an MCP server for Smartcar's v3 vehicle APIs, driven by a compiled catalogue.
//!
//! # Layout
//! - `catalogue`: the tool and signal tables generated from tools.yaml and signals.yaml.
pub mod catalogue;
pub mod simulator;
