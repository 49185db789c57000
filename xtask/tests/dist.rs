//! Tests of `cargo xtask dist` on the debug server binary (build it first: `cargo build`):
//! the npm packages installed from local tarballs and run as an MCP server through the launcher,
//! the launcher's exit codes and signals, the `.mcpb` bundle, and `server.json` against the
//! registry schema kept in `xtask/schema/`. No registry and no network: npm installs offline.

use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc;
use std::time::{Duration, Instant};
use xtask::{DistOptions, DistOutput, Meta, PLATFORMS, Platform, workspace_root};

/// The server binary under test: `SMARTCAR_MCP_BIN`, or the workspace's debug build.
fn server_bin() -> PathBuf {
    let bin = std::env::var_os("SMARTCAR_MCP_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let exe = if cfg!(windows) {
                "smartcar-mcp.exe"
            } else {
                "smartcar-mcp"
            };
            workspace_root().join("target").join("debug").join(exe)
        });
    assert!(
        bin.is_file(),
        "no server binary at {}: run `cargo build` first (or set SMARTCAR_MCP_BIN)",
        bin.display()
    );
    bin
}

/// A fresh scratch directory under target/, removed first if a previous run left it.
fn scratch(name: &str) -> PathBuf {
    let dir = workspace_root()
        .join("target")
        .join("xtask-tests")
        .join(name);
    if dir.exists() {
        std::fs::remove_dir_all(&dir).unwrap();
    }
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn host_target() -> String {
    xtask::host_target().expect("rustc -vV")
}

/// `cargo xtask dist` of the debug binary, once for all tests of this file.
fn dist_output() -> &'static DistOutput {
    static OUT: OnceLock<DistOutput> = OnceLock::new();
    OUT.get_or_init(|| {
        let out = scratch("dist");
        xtask::dist(&DistOptions {
            root: workspace_root(),
            bin: server_bin(),
            target: host_target(),
            out,
            tools_json: None,
        })
        .expect("cargo xtask dist")
    })
}

fn meta() -> Meta {
    Meta::load(&workspace_root()).expect("cargo metadata")
}

/// Whether npm is here. Without it the npm tests are skipped with a reason, except under CI,
/// which has Node and must run them.
fn have_npm(test: &str) -> bool {
    let ok = Command::new(npm())
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "{test}: npm not found, and CI must run this test"
        );
        eprintln!("skipped {test}: npm (Node.js) not found");
    }
    ok
}

fn npm() -> &'static str {
    if cfg!(windows) { "npm.cmd" } else { "npm" }
}

fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The host's two npm packages, packed and installed offline into a fresh prefix.
struct Installed {
    prefix: PathBuf,
    /// The launcher npm linked: `PREFIX/node_modules/.bin/smartcar-mcp`.
    shim: PathBuf,
    install_started: Instant,
}

fn installed() -> &'static Installed {
    static INSTALLED: OnceLock<Installed> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        let dist = dist_output();
        let work = scratch("npm");
        let packs = work.join("packs");
        std::fs::create_dir_all(&packs).unwrap();
        let mut tarballs = Vec::new();
        for pkg in [&dist.npm_main, &dist.npm_platform] {
            let stdout = run_ok(
                Command::new(npm())
                    .args(["pack", "--silent", "--pack-destination"])
                    .arg(&packs)
                    .current_dir(pkg),
            );
            let file = stdout
                .lines()
                .last()
                .expect("npm pack prints the tarball name")
                .trim()
                .to_owned();
            tarballs.push(format!("./{file}"));
        }
        let prefix = work.join("prefix");
        let install_started = Instant::now();
        run_ok(
            Command::new(npm())
                .args([
                    "install",
                    "--offline",
                    "--no-audit",
                    "--no-fund",
                    "--loglevel=error",
                ])
                .arg("--cache")
                .arg(work.join("cache"))
                .arg("--prefix")
                .arg(&prefix)
                .args(&tarballs)
                .current_dir(&packs),
        );
        let shim = prefix
            .join("node_modules")
            .join(".bin")
            .join("smartcar-mcp");
        assert!(
            shim.exists(),
            "npm linked no smartcar-mcp at {}",
            shim.display()
        );
        Installed {
            prefix,
            shim,
            install_started,
        }
    })
}

fn dir_size(dir: &Path) -> u64 {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let meta = std::fs::symlink_metadata(entry.path()).unwrap();
        if meta.is_dir() {
            total += dir_size(&entry.path());
        } else {
            total += meta.len();
        }
    }
    total
}

/// Starts an MCP stdio server, sends initialize, notifications/initialized and tools/list as
/// JSON lines, and returns the tools/list result. Every stdout line must be JSON-RPC.
fn mcp_tools_list(mut cmd: Command) -> (Value, Child) {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let mut stdin = child.stdin.take().unwrap();
    let requests = [
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {},
            "clientInfo": {"name": "xtask-test", "version": "0"}}}),
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}),
    ];
    for r in &requests {
        writeln!(stdin, "{r}").unwrap();
    }
    stdin.flush().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let msg: Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("stdout line is not JSON-RPC ({e}): {line}"));
            if msg["id"] == 2 {
                let _ = tx.send(msg);
                break;
            }
        }
    });
    let answer = rx
        .recv_timeout(Duration::from_secs(30))
        .unwrap_or_else(|_| {
            let _ = child.kill();
            panic!("no tools/list answer within 30 s from {cmd:?}")
        });
    // Keep stdin open (the caller decides how the server ends): hand it back inside the child.
    child.stdin = Some(stdin);
    (answer["result"].clone(), child)
}

fn tool_names(result: &Value) -> Vec<String> {
    result["tools"]
        .as_array()
        .expect("tools/list result has tools")
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect()
}

fn finish(mut child: Child) -> ExitStatus {
    drop(child.stdin.take());
    child.wait().unwrap()
}

#[test]
fn npm_packages_install_offline_and_serve_mcp_through_the_launcher() {
    if !have_npm("npm_packages_install_offline_and_serve_mcp_through_the_launcher") {
        return;
    }
    let installed = installed();
    let mut cmd = Command::new(&installed.shim);
    cmd.arg("--simulator");
    let (result, child) = mcp_tools_list(cmd);
    let first_answer = installed.install_started.elapsed();
    let names = tool_names(&result);
    assert!(
        names.iter().any(|n| n == "get_signal"),
        "tools/list lacks get_signal: {names:?}"
    );
    assert!(
        finish(child).success(),
        "the server did not exit cleanly at end of stdin"
    );

    // The figures for the release notes (`cargo test -p xtask -- --nocapture` shows them).
    let dist = dist_output();
    eprintln!(
        "npm prefix {:.1} MiB installed; bundle {:.1} MiB; npm install to first tools/list {:.2} s",
        dir_size(&installed.prefix) as f64 / 1048576.0,
        std::fs::metadata(&dist.mcpb).unwrap().len() as f64 / 1048576.0,
        first_answer.as_secs_f64()
    );
}

#[test]
fn launcher_adds_nothing_to_stdout_and_passes_exit_codes_through() {
    if !have_npm("launcher_adds_nothing_to_stdout_and_passes_exit_codes_through") {
        return;
    }
    let installed = installed();
    let bin = server_bin();
    // Same stdout, byte for byte, and the same exit code as the binary itself.
    for args in [
        &["tools"][..],
        &["--no-such-flag"][..],
        &["call", "no_such_tool", "{}", "--simulator"][..],
    ] {
        let direct = Command::new(&bin).args(args).output().unwrap();
        let shimmed = Command::new(&installed.shim).args(args).output().unwrap();
        assert_eq!(
            shimmed.status.code(),
            direct.status.code(),
            "exit code of {args:?}"
        );
        assert_eq!(shimmed.stdout, direct.stdout, "stdout of {args:?}");
    }
    let bad = Command::new(&bin).arg("--no-such-flag").output().unwrap();
    assert_eq!(
        bad.status.code(),
        Some(2),
        "clap's usage error is exit code 2"
    );

    #[cfg(unix)]
    {
        // Any code, through a stand-in binary.
        let script = scratch("exit-code").join("exit7.sh");
        std::fs::write(&script, "#!/bin/sh\nexit 7\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let status = Command::new(&installed.shim)
            .env("SMARTCAR_MCP_BINARY", &script)
            .status()
            .unwrap();
        assert_eq!(status.code(), Some(7));
    }
}

#[cfg(unix)]
fn children_of(pid: u32) -> Vec<u32> {
    let path = format!("/proc/{pid}/task/{pid}/children");
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|s| s.parse().ok())
        .collect()
}

#[cfg(unix)]
fn gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        // A zombie waiting for its reaper has exited too.
        Ok(stat) => stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z')),
    }
}

#[cfg(unix)]
#[test]
fn launcher_forwards_sigterm_and_sigint_and_dies_of_the_same_signal() {
    use std::os::unix::process::ExitStatusExt;
    if !have_npm("launcher_forwards_sigterm_and_sigint_and_dies_of_the_same_signal") {
        return;
    }
    let installed = installed();
    for (name, signo) in [("TERM", 15), ("INT", 2)] {
        // The binary alone, signalled while serving: what the launcher must reproduce.
        let mut direct = Command::new(server_bin());
        direct.arg("--simulator");
        let (_, mut child) = mcp_tools_list(direct);
        // Child::wait closes stdin first, and a server ends cleanly at end of stdin: keep it open
        // until the signal has done its work.
        let stdin = child.stdin.take();
        run_ok(
            Command::new("kill")
                .arg(format!("-{name}"))
                .arg(child.id().to_string()),
        );
        let expected = child.wait().unwrap();
        drop(stdin);

        let mut cmd = Command::new(&installed.shim);
        cmd.arg("--simulator");
        let (_, mut shim) = mcp_tools_list(cmd);
        let server_pids = children_of(shim.id());
        let stdin = shim.stdin.take();
        run_ok(
            Command::new("kill")
                .arg(format!("-{name}"))
                .arg(shim.id().to_string()),
        );
        let status = shim.wait().unwrap();
        drop(stdin);
        assert_eq!(
            status.signal(),
            expected.signal(),
            "SIG{name}: launcher {status}, binary {expected}"
        );
        assert_eq!(
            status.code(),
            expected.code(),
            "SIG{name}: launcher {status}, binary {expected}"
        );
        if expected.signal().is_none() {
            assert!(
                expected.code().is_some(),
                "SIG{name}: binary reported neither code nor signal"
            );
        } else {
            assert_eq!(expected.signal(), Some(signo));
        }
        // The server the launcher started has ended too (no orphan left serving).
        let deadline = Instant::now() + Duration::from_secs(10);
        for pid in server_pids {
            while !gone(pid) {
                assert!(
                    Instant::now() < deadline,
                    "SIG{name}: server {pid} still running"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

#[test]
fn launcher_names_the_platform_when_its_package_is_missing() {
    if !have_npm("launcher_names_the_platform_when_its_package_is_missing") {
        return;
    }
    let dist = dist_output();
    // The main package alone, as if npm had skipped the optional dependency.
    let node = if cfg!(windows) { "node.exe" } else { "node" };
    let out = Command::new(node)
        .arg(dist.npm_main.join("bin").join("smartcar-mcp.js"))
        .arg("tools")
        .output()
        .expect("node");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        out.stdout.is_empty(),
        "the launcher wrote to stdout: {:?}",
        String::from_utf8_lossy(&out.stdout)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let platform = dist.platform;
    assert!(
        stderr.contains(&platform.npm_package()) && stderr.contains(platform.name),
        "the error names neither the package nor the platform: {stderr}"
    );
}

#[test]
fn npm_package_metadata_follows_cargo_toml() {
    let meta = meta();
    let dist = dist_output();
    let main: Value =
        serde_json::from_str(&std::fs::read_to_string(dist.npm_main.join("package.json")).unwrap())
            .unwrap();
    assert_eq!(main["name"], "smartcar-mcp");
    assert_eq!(main["version"], meta.version.as_str());
    assert_eq!(main["license"], meta.license.as_str());
    assert_eq!(main["mcpName"], meta.server_name().unwrap().as_str());
    assert_eq!(main["bin"]["smartcar-mcp"], "bin/smartcar-mcp.js");
    let optional = main["optionalDependencies"].as_object().unwrap();
    let mut expected: Vec<String> = [
        "linux-x64",
        "linux-arm64",
        "darwin-x64",
        "darwin-arm64",
        "win32-x64",
    ]
    .iter()
    .map(|p| format!("@smartcar-mcp/{p}"))
    .collect();
    expected.sort();
    assert_eq!(optional.keys().cloned().collect::<Vec<_>>(), expected);
    assert!(
        optional.values().all(|v| v == meta.version.as_str()),
        "{optional:?}"
    );

    let platform: Value = serde_json::from_str(
        &std::fs::read_to_string(dist.npm_platform.join("package.json")).unwrap(),
    )
    .unwrap();
    let p = dist.platform;
    assert_eq!(platform["name"], p.npm_package().as_str());
    assert_eq!(platform["version"], meta.version.as_str());
    assert_eq!(platform["os"], json!([p.os]));
    assert_eq!(platform["cpu"], json!([p.cpu]));
    assert!(dist.npm_platform.join("bin").join(p.exe()).is_file());

    // Node's names for this machine are the ones the package declares.
    assert_eq!(Platform::for_target(&host_target()).unwrap(), p);
    assert_eq!(
        Platform::for_target("x86_64-unknown-linux-gnu")
            .unwrap()
            .name,
        "linux-x64"
    );
    for p in PLATFORMS {
        assert_eq!(Platform::for_target(p.target).unwrap(), p);
    }
    assert!(Platform::for_target("riscv64gc-unknown-linux-gnu").is_err());
}

/// Reads a zip archive into (name, bytes, unix mode) entries.
fn unzip(path: &Path) -> Vec<(String, Vec<u8>, Option<u32>)> {
    use std::io::Read;
    let mut zip = zip::ZipArchive::new(std::fs::File::open(path).unwrap()).unwrap();
    (0..zip.len())
        .map(|i| {
            let mut f = zip.by_index(i).unwrap();
            let mut data = Vec::new();
            f.read_to_end(&mut data).unwrap();
            (f.name().unwrap().into_owned(), data, f.unix_mode())
        })
        .collect()
}

#[test]
fn mcpb_bundle_unpacks_and_its_binary_answers_tools_list() {
    let dist = dist_output();
    let p = dist.platform;
    let dir = scratch("mcpb-unpacked");
    for (name, data, mode) in unzip(&dist.mcpb) {
        let path = dir.join(&name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, data).unwrap();
        #[cfg(unix)]
        if let Some(mode) = mode {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode & 0o777)).unwrap();
        }
        #[cfg(not(unix))]
        let _ = mode;
    }
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).unwrap()).unwrap();
    let meta = meta();
    assert_eq!(manifest["version"], meta.version.as_str());
    assert_eq!(manifest["server"]["type"], "binary");
    let entry = manifest["server"]["entry_point"].as_str().unwrap();
    assert_eq!(entry, format!("server/{}", p.exe()));
    assert_eq!(
        manifest["server"]["mcp_config"]["command"],
        format!("${{__dirname}}/{entry}").as_str()
    );
    let env = &manifest["server"]["mcp_config"]["env"];
    assert_eq!(env["SMARTCAR_CLIENT_ID"], "${user_config.client_id}");
    assert_eq!(
        env["SMARTCAR_CLIENT_SECRET"],
        "${user_config.client_secret}"
    );
    assert_eq!(manifest["user_config"]["client_id"]["type"], "string");
    assert_eq!(manifest["user_config"]["client_secret"]["sensitive"], true);
    assert_eq!(manifest["compatibility"]["platforms"], json!([p.os]));

    // The unpacked binary serves MCP, and the manifest lists exactly the tools it serves.
    let mut cmd = Command::new(dir.join(entry));
    cmd.arg("--simulator");
    let (result, child) = mcp_tools_list(cmd);
    assert!(finish(child).success());
    let served = tool_names(&result);
    assert!(served.iter().any(|n| n == "get_signal"));
    let listed: Vec<String> = manifest["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(listed, served);
    assert!(
        manifest["tools"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| !t["description"].as_str().unwrap().is_empty())
    );
}

#[test]
fn release_archive_holds_the_binary_where_binstall_looks() {
    let dist = dist_output();
    let meta = meta();
    let stem = meta.archive_stem(&host_target());
    let name = dist
        .archive
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    let gz = std::fs::File::open(&dist.archive).unwrap();
    if name.ends_with(".zip") {
        let names: Vec<String> = unzip(&dist.archive).into_iter().map(|e| e.0).collect();
        assert!(
            names.contains(&format!("{stem}/smartcar-mcp.exe")),
            "{names:?}"
        );
        return;
    }
    assert_eq!(name, format!("{stem}.tar.gz"));
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(gz));
    let entries: Vec<(String, u32)> = tar
        .entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.path().unwrap().to_string_lossy().into_owned(),
                e.header().mode().unwrap(),
            )
        })
        .collect();
    assert!(
        entries.contains(&(format!("{stem}/smartcar-mcp"), 0o755)),
        "{entries:?}"
    );
    let sums =
        std::fs::read_to_string(dist.archive.with_file_name(format!("{name}.sha256"))).unwrap();
    assert_eq!(
        sums,
        format!("{}  {name}\n", xtask::sha256_hex(&dist.archive).unwrap())
    );
}

fn kept_schema() -> Value {
    let path = workspace_root()
        .join("xtask")
        .join("schema")
        .join("server.schema.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn server_json_validates_against_the_kept_registry_schema() {
    let dist = dist_output();
    let schema = kept_schema();
    assert_eq!(schema["$id"], xtask::SERVER_SCHEMA_URL);
    let validator = jsonschema::validator_for(&schema).expect("the kept schema compiles");
    let doc: Value =
        serde_json::from_str(&std::fs::read_to_string(&dist.server_json).unwrap()).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&doc)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "server.json does not validate:\n{}",
        errors.join("\n")
    );

    let meta = meta();
    assert_eq!(doc["$schema"], xtask::SERVER_SCHEMA_URL);
    assert_eq!(doc["name"], meta.server_name().unwrap().as_str());
    assert_eq!(doc["version"], meta.version.as_str());
    assert!(doc["description"].as_str().unwrap().chars().count() <= 100);
    let packages = doc["packages"].as_array().unwrap();
    let of = |t: &str| {
        packages
            .iter()
            .filter(|p| p["registryType"] == t)
            .cloned()
            .collect::<Vec<_>>()
    };
    let npm = &of("npm")[0];
    assert_eq!(npm["identifier"], "smartcar-mcp");
    assert_eq!(npm["version"], meta.version.as_str());
    let secret = |p: &Value, var: &str| {
        p["environmentVariables"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == var)
            .unwrap()["isSecret"]
            == true
    };
    assert!(secret(npm, "SMARTCAR_CLIENT_SECRET"));
    assert!(!secret(npm, "SMARTCAR_CLIENT_ID"));
    let mcpb = of("mcpb");
    assert_eq!(mcpb.len(), 1, "one bundle in this dist directory");
    assert_eq!(
        mcpb[0]["fileSha256"],
        xtask::sha256_hex(&dist.mcpb).unwrap().as_str()
    );
    assert!(
        mcpb[0]["identifier"]
            .as_str()
            .unwrap()
            .ends_with(&meta.mcpb_file(&dist.platform))
    );
    assert_eq!(of("oci")[0]["identifier"], meta.image().unwrap().as_str());

    // The schema catches what the registry rejects.
    let mut long = doc.clone();
    long["description"] = json!("x".repeat(101));
    assert!(
        !validator.is_valid(&long),
        "a 101-character description validated"
    );
    let mut no_sha = doc.clone();
    no_sha["packages"][1]["fileSha256"] = json!("not-a-sha");
    assert!(
        !validator.is_valid(&no_sha),
        "a malformed fileSha256 validated"
    );
}

#[test]
fn server_json_lists_every_gathered_bundle() {
    // Release CI gathers the five platforms' bundles into one directory, then reruns server-json.
    let meta = meta();
    let dir = scratch("gathered");
    for p in PLATFORMS {
        std::fs::write(dir.join(meta.mcpb_file(&p)), p.name).unwrap();
    }
    let doc = xtask::server_json(&meta, &dir).unwrap();
    let bundles: Vec<&str> = doc["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["registryType"] == "mcpb")
        .map(|p| p["identifier"].as_str().unwrap())
        .collect();
    assert_eq!(bundles.len(), 5, "{bundles:?}");
    let validator = jsonschema::validator_for(&kept_schema()).unwrap();
    assert!(validator.is_valid(&doc));
}

#[test]
fn dockerfile_label_and_release_workflow_match_the_package() {
    let root = workspace_root();
    let meta = meta();
    let dockerfile = std::fs::read_to_string(root.join("Dockerfile")).unwrap();
    let label = format!(
        "io.modelcontextprotocol.server.name=\"{}\"",
        meta.server_name().unwrap()
    );
    assert!(dockerfile.contains(&label), "Dockerfile lacks {label}");
    assert!(
        dockerfile.contains("USER "),
        "the image must run as a non-root user"
    );

    let workflow = std::fs::read_to_string(root.join(".github/workflows/release.yml")).unwrap();
    for p in PLATFORMS {
        assert!(
            workflow.contains(p.target),
            "release.yml does not build {}",
            p.target
        );
        assert!(
            workflow.contains(p.name),
            "release.yml does not publish {}",
            p.npm_package()
        );
    }
    assert!(workflow.contains("cargo xtask dist"));
    assert!(workflow.contains("--profile dist"));
}
