//! smartcar-mcp: an MCP server for Smartcar's v3 vehicle APIs, driven by a compiled catalogue.
//!
//! # Layout
//! Three layers, each importing only the ones below it, and the store beside the lowest:
//! - `mcp`: the MCP side, the only code naming rmcp (with `demo`): the handler (`mcp::server`),
//!   confirmation by elicitation in both lifecycles (`mcp::confirm`), Streamable HTTP serving
//!   (`mcp::http`) with its OAuth resource-server gate and metadata (`mcp::guard`) and its
//!   bounded, expiring session store (`mcp::sessions`), handshake sessions saved in a shared
//!   store for another replica to restore (`mcp::session_store`), the request ids in
//!   flight on each session (`mcp::flight`), the stdio
//!   transport with its line filter (`mcp::stdio`) and the answers to malformed input
//!   (`mcp::malformed`), resources and their subscriptions (`mcp::resources`), prompts and the
//!   completion of their arguments (`mcp::prompts`), the MCP Apps view of vehicles, fleets and
//!   charging with its negotiation (`mcp::apps`), and the webhook receiver (`mcp::webhook`).
//! - `tool`: one tool call, free of MCP: which tools are served (`tool::selection`), argument
//!   checking (`tool::arguments`), the one call pipeline (`tool::call`: its order in
//!   `call`, the read path in `tool::call::read`, the audited write path and the verifying read in
//!   `tool::call::write`, sending in `tool::call::execute`), result shaping (`tool::shape`: reading
//!   JSON:API documents in `tool::shape::jsonapi`, units in `tool::shape::units`, signals in
//!   `tool::shape::signals`, the other records in `tool::shape::records`, command answers in
//!   `tool::shape::command`, secrets removed in `tool::shape::redact`) and size (`tool::bound`), `ToolResult` (`tool::result`) with its typed metadata
//!   (`tool::meta`), `ToolError` (`tool::error`),
//!   the state every call shares (`tool::state`), and the controls on billed calls and commands:
//!   coalescing and per-vehicle lanes (`tool::traffic`), the one answer cache for reads and
//!   Compatibility API answers (`tool::cache`), usage counters
//!   (`tool::usage`), the daily allowance per vehicle as one reservation a call (`tool::cap`);
//!   location privacy over every result (`tool::privacy`); which scopes a tool needs and the
//!   check that an OAuth caller names only its own users and vehicles (`tool::tenancy`) with its
//!   cache of each user's connections (`tool::owners`); what shows that a command took effect
//!   (`tool::verify`).
//! - `upstream`: the Smartcar client: request building (`upstream::request`), sending with the
//!   retry policy (`upstream::executor`), the token cache (`upstream::auth`), Smartcar's errors
//!   (`upstream::error`), and its webhook signature and VERIFY challenge (`upstream::webhook`).
//! - `store`, beside `upstream`: the state that outlives a call, behind one `Store` with a memory
//!   and a SQLite backend (`store::memory`, `store::sqlite`, its numbered migrations in
//!   `store::migrate`) and a PostgreSQL one shared by replicas (`store::postgres`, reaching the
//!   server, TLS and its migrations in `store::postgres_conn`): the audit log's rows
//!   (`store::audit`), usage counts (`store::usage`), the daily allowance's reservations, the
//!   state Smartcar pushes by webhook with its change notices (`store::pushed`), and single-use
//!   confirmation answers (`store::redeem`).
//!
//! Under all of them:
//! - `catalogue`: the tool and signal model (`catalogue::spec`, shared with the generator), the
//!   published schemas (`catalogue::schema`), the tables generated from tools.yaml and
//!   signals.yaml, and lookups over them.
//! - `settings`: the resolved settings (upstream and serving); `secret`: a string that never prints;
//!   `sync`: the one way to take a lock;
//!   `text`: client input as messages and logs repeat it, cut to a bound; `logging`: log lines
//!   that never block serving, and repeated events summarised.
//! - `oauth`: inbound OAuth access tokens when HTTP serving is a resource server: the verified
//!   caller and the fixed scopes, the token check against the issuer's keys (`oauth::verify`,
//!   the only code naming jsonwebtoken) and the operator's table of callers to Smartcar users
//!   (`oauth::tenants`).
//! - `listen`: serving a router on a TCP listener with header, body and idle timeouts, a
//!   connection cap and TCP_NODELAY; every HTTP listener (MCP, webhooks, the simulator) uses it.
//!
//! Around them:
//! - `cli`: the command line (clap) and logging; `run`: one function per subcommand.
//! - `demo`: a scripted MCP session against the simulator.
//! - `doctor`: checks a user's real credentials and setup against Smartcar, one request a check.
//! - `simulator`: a local stand-in of Smartcar's API for tests, demos and offline use.
//!
//! # Rules (checked by `tests/tidy.rs`)
//! - `upstream` imports neither `tool` nor `mcp`; `tool` imports neither `mcp` nor `rmcp`;
//!   `store` imports only `settings`, `secret`, `sync`, `text` and `logging`, never `upstream`,
//!   `tool`, `mcp`, rmcp or axum;
//!   `catalogue`, `settings`, `secret`, `sync`, `text`, `logging`, `oauth` and `listen` import
//!   none of the three layers.
//! - `rmcp::` is named only under `src/mcp/` and in `src/demo.rs`.
//! - No import runs upward and none goes round in a circle.
pub mod catalogue;
pub mod cli;
pub mod demo;
pub mod doctor;
pub mod listen;
pub mod logging;
pub mod mcp;
pub mod oauth;
pub mod run;
pub mod secret;
pub mod settings;
pub mod simulator;
pub mod store;
pub mod sync;
pub mod text;
pub mod tool;
pub mod upstream;
