//! The one wrapper around the build-time catalogue ($OUT_DIR/catalogue.rs, from tools.yaml and signals.yaml).
#![allow(clippy::all, clippy::pedantic)]
#![allow(missing_docs)]

include!(concat!(env!("OUT_DIR"), "/catalogue.rs"));
