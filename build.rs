//! Compiles tools.yaml and signals.yaml into $OUT_DIR/catalogue.rs and the README tables.
//!
//! Every catalogue problem is printed as its own `cargo::error=FILE:LINE:COL: ...` line, and nothing
//! is written when there is any, so a broken YAML never yields a half-generated server.

// The catalogue model it compiles in is the runtime's too: its lookups and helpers are used by
// the server, not here.
#[allow(dead_code)]
#[path = "src/codegen/mod.rs"]
mod codegen;

use std::path::Path;

fn write_if_changed(path: &Path, contents: &str) {
    if std::fs::read_to_string(path).is_ok_and(|old| old == contents) {
        return;
    }
    std::fs::write(path, contents).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
}

fn read(path: &str) -> String {
    println!("cargo::rerun-if-changed={path}");
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {path}: {e}"))
}

fn main() {
    println!("cargo::rerun-if-changed=src/codegen");
    let tools = read("tools.yaml");
    let signals = read("signals.yaml");
    let templates = codegen::docs::Templates {
        tools: read("templates/tools.md.j2"),
        signals: read("templates/signals.md.j2"),
    };
    match codegen::generate(&tools, &signals, &templates) {
        Ok(out) => {
            let dir = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR");
            let dir = Path::new(&dir);
            write_if_changed(&dir.join("catalogue.rs"), &out.rust);
            write_if_changed(&dir.join("tools.md"), &out.tools_md);
            write_if_changed(&dir.join("signals.md"), &out.signals_md);
        }
        Err(problems) => {
            for p in problems {
                println!("cargo::error={p}");
            }
        }
    }
}
