//! The one integration-test binary (one link on a 2-core machine); each module tests one area.

#[allow(dead_code, unused_imports)]
#[path = "../src/codegen/mod.rs"]
mod codegen;

mod common;

mod apps;
mod auth;
mod billing;
mod budget;
mod cli;
mod docs;
mod doctor;
mod e2e;
mod faults;
mod fidelity;
mod fuzz;
mod generator;
mod golden;
mod guide;
mod hostile;
mod hostile_webhooks;
mod ids;
mod listeners;
mod logs;
mod malformed;
mod oauth;
mod operator;
mod privacy;
mod prompts;
mod replicas;
mod results;
mod secrets;
mod simulated;
mod snapshots;
mod store;
mod tenancy;
mod tidy;
mod validation;
mod verify;
mod webhooks;
