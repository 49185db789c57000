//! Packaging of smartcar-mcp for people without a Rust toolchain: from one built binary,
//! `cargo xtask dist` writes the npm packages (a Node launcher plus one package per platform, the
//! esbuild/biome layout), the Claude Desktop bundle (`.mcpb`), the release archive that
//! `cargo binstall` downloads, and `server.json` for the official MCP Registry.
//!
//! Everything comes from Cargo.toml (`cargo metadata`) and from the binary itself
//! (`smartcar-mcp tools --json` is the exact `tools/list`), never from the server's source, so the
//! release workflow runs the same command once per target.
//!
//! Layout of `--out DIR`:
//! - `npm/smartcar-mcp/`: the main package (`bin/smartcar-mcp.js`, the launcher);
//! - `npm/<platform>/`: `@smartcar-mcp/<platform>` with `bin/smartcar-mcp[.exe]`;
//! - `mcpb/<platform>/` and `smartcar-mcp-<version>-<platform>.mcpb`: the bundle, unpacked and zipped;
//! - `smartcar-mcp-<target>-v<version>.tar.gz` (`.zip` on Windows): the release archive;
//! - `<asset>.sha256` for each archive and bundle (`sha256sum` format);
//! - `server.json`: lists every `.mcpb` found in DIR (release CI gathers all five, then reruns
//!   `cargo xtask server-json`).

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Schema of the registry entry; a copy is kept in `xtask/schema/server.schema.json`.
pub const SERVER_SCHEMA_URL: &str =
    "https://static.modelcontextprotocol.io/schemas/2025-12-11/server.schema.json";
/// Scope of the per-platform npm packages.
pub const NPM_SCOPE: &str = "@smartcar-mcp";
/// Version of the `.mcpb` manifest format written.
pub const MCPB_MANIFEST_VERSION: &str = "0.3";
/// Smartcar's privacy policy: the bundle connects to Smartcar, which processes user data.
const PRIVACY_POLICY: &str = "https://smartcar.com/privacy";

/// A platform we ship a prebuilt binary for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Platform {
    /// `process.platform-process.arch` in Node, and the npm package suffix: `linux-x64`.
    pub name: &'static str,
    /// npm `os` (Node's `process.platform`), also the `.mcpb` compatibility platform.
    pub os: &'static str,
    /// npm `cpu` (Node's `process.arch`).
    pub cpu: &'static str,
    /// The Rust target the release builds for it (static musl on Linux).
    pub target: &'static str,
}

/// The five platforms of the release, in the order of the npm `optionalDependencies`.
pub const PLATFORMS: [Platform; 5] = [
    Platform {
        name: "linux-x64",
        os: "linux",
        cpu: "x64",
        target: "x86_64-unknown-linux-musl",
    },
    Platform {
        name: "linux-arm64",
        os: "linux",
        cpu: "arm64",
        target: "aarch64-unknown-linux-musl",
    },
    Platform {
        name: "darwin-x64",
        os: "darwin",
        cpu: "x64",
        target: "x86_64-apple-darwin",
    },
    Platform {
        name: "darwin-arm64",
        os: "darwin",
        cpu: "arm64",
        target: "aarch64-apple-darwin",
    },
    Platform {
        name: "win32-x64",
        os: "win32",
        cpu: "x64",
        target: "x86_64-pc-windows-msvc",
    },
];

impl Platform {
    /// The platform a Rust target triple runs on (`x86_64-unknown-linux-gnu` is `linux-x64` too).
    pub fn for_target(target: &str) -> Result<Platform> {
        let arch = match target.split('-').next() {
            Some("x86_64") => "x64",
            Some("aarch64") => "arm64",
            _ => bail!("no npm platform for target {target}: only x86_64 and aarch64 are shipped"),
        };
        let os = if target.contains("-linux-") {
            "linux"
        } else if target.contains("-apple-darwin") {
            "darwin"
        } else if target.contains("-windows-") {
            "win32"
        } else {
            bail!("no npm platform for target {target}: only Linux, macOS and Windows are shipped")
        };
        PLATFORMS
            .into_iter()
            .find(|p| p.os == os && p.cpu == arch)
            .with_context(|| format!("no prebuilt platform {os}-{arch} (target {target})"))
    }

    /// The npm package carrying this platform's binary: `@smartcar-mcp/linux-x64`.
    pub fn npm_package(&self) -> String {
        format!("{NPM_SCOPE}/{}", self.name)
    }

    /// The binary's file name on this platform.
    pub fn exe(&self) -> &'static str {
        if self.os == "win32" {
            "smartcar-mcp.exe"
        } else {
            "smartcar-mcp"
        }
    }
}

/// What Cargo.toml says about the server crate.
#[derive(Debug, Clone)]
pub struct Meta {
    pub name: String,
    pub version: String,
    pub description: String,
    pub license: String,
    /// `https://github.com/OWNER/REPO`
    pub repository: String,
}

impl Meta {
    /// Reads the `smartcar-mcp` package of the workspace at `root` with `cargo metadata`.
    pub fn load(root: &Path) -> Result<Meta> {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let out = Command::new(cargo)
            .args([
                "metadata",
                "--format-version",
                "1",
                "--no-deps",
                "--offline",
            ])
            .arg("--manifest-path")
            .arg(root.join("Cargo.toml"))
            .output()
            .context("running cargo metadata")?;
        if !out.status.success() {
            bail!(
                "cargo metadata failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let v: Value = serde_json::from_slice(&out.stdout).context("parsing cargo metadata")?;
        let pkg = v["packages"]
            .as_array()
            .and_then(|ps| ps.iter().find(|p| p["name"] == "smartcar-mcp"))
            .context("no smartcar-mcp package in the workspace")?;
        let field = |k: &str| -> Result<String> {
            pkg[k]
                .as_str()
                .map(str::to_owned)
                .with_context(|| format!("Cargo.toml has no package.{k}"))
        };
        let meta = Meta {
            name: field("name")?,
            version: field("version")?,
            description: field("description")?,
            license: field("license")?,
            repository: field("repository")?.trim_end_matches('/').to_owned(),
        };
        if meta.description.chars().count() > 100 {
            bail!(
                "package.description is {} characters; the MCP Registry takes at most 100",
                meta.description.chars().count()
            );
        }
        meta.github_owner()?;
        Ok(meta)
    }

    /// `OWNER` of `https://github.com/OWNER/REPO`.
    pub fn github_owner(&self) -> Result<&str> {
        self.repository
            .strip_prefix("https://github.com/")
            .and_then(|rest| rest.split('/').next())
            .filter(|o| !o.is_empty())
            .with_context(|| {
                format!(
                    "package.repository {} is not https://github.com/OWNER/REPO",
                    self.repository
                )
            })
    }

    /// The MCP Registry name, `io.github.OWNER/smartcar-mcp` (namespace proven by GitHub login).
    pub fn server_name(&self) -> Result<String> {
        Ok(format!("io.github.{}/{}", self.github_owner()?, self.name))
    }

    /// The container image the release pushes: `ghcr.io/owner/smartcar-mcp:VERSION`.
    pub fn image(&self) -> Result<String> {
        Ok(format!(
            "ghcr.io/{}/{}:{}",
            self.github_owner()?.to_lowercase(),
            self.name,
            self.version
        ))
    }

    /// URL of a release asset of this version.
    pub fn release_asset_url(&self, file: &str) -> String {
        format!(
            "{}/releases/download/v{}/{file}",
            self.repository, self.version
        )
    }

    /// File name of this platform's bundle.
    pub fn mcpb_file(&self, p: &Platform) -> String {
        format!("{}-{}-{}.mcpb", self.name, self.version, p.name)
    }

    /// Directory and file stem of the release archive, the names `[package.metadata.binstall]` expects.
    pub fn archive_stem(&self, target: &str) -> String {
        format!("{}-{target}-v{}", self.name, self.version)
    }
}

/// Options of `cargo xtask dist`.
#[derive(Debug, Clone)]
pub struct DistOptions {
    /// The workspace root (where Cargo.toml is).
    pub root: PathBuf,
    /// The built server binary to package.
    pub bin: PathBuf,
    /// The Rust target it was built for.
    pub target: String,
    /// Where to write everything.
    pub out: PathBuf,
    /// The `tools/list` JSON, when the binary cannot run here (cross builds); else it is asked.
    pub tools_json: Option<PathBuf>,
}

/// What `dist` wrote.
#[derive(Debug, Clone)]
pub struct DistOutput {
    pub platform: Platform,
    pub npm_main: PathBuf,
    pub npm_platform: PathBuf,
    pub mcpb_dir: PathBuf,
    pub mcpb: PathBuf,
    pub archive: PathBuf,
    pub server_json: PathBuf,
}

/// The workspace root: the parent of this crate's directory.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in a workspace")
        .to_path_buf()
}

/// The Rust host triple (`rustc -vV`).
pub fn host_target() -> Result<String> {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let out = Command::new(rustc)
        .arg("-vV")
        .output()
        .context("running rustc -vV")?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(str::to_owned))
        .context("rustc -vV printed no host line")
}

/// Writes every artefact for one platform into `opts.out`.
pub fn dist(opts: &DistOptions) -> Result<DistOutput> {
    let meta = Meta::load(&opts.root)?;
    let platform = Platform::for_target(&opts.target)?;
    if !opts.bin.is_file() {
        bail!(
            "no binary at {} (build it first, e.g. cargo build --release)",
            opts.bin.display()
        );
    }
    let tools = match &opts.tools_json {
        Some(path) => {
            fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?
        }
        None => tools_from_binary(&opts.bin)?,
    };
    let tools = tool_summaries(&tools)?;
    fs::create_dir_all(&opts.out).with_context(|| format!("creating {}", opts.out.display()))?;

    let npm_main = write_npm_main(&meta, &opts.out.join("npm").join(&meta.name))?;
    let npm_platform = write_npm_platform(&meta, &platform, &opts.bin, &opts.out.join("npm"))?;
    let (mcpb_dir, mcpb) = write_mcpb(&meta, &platform, &opts.bin, &tools, &opts.out)?;
    let archive = write_archive(
        &meta,
        &platform,
        &opts.target,
        &opts.bin,
        &opts.root,
        &opts.out,
    )?;
    for asset in [&mcpb, &archive] {
        write_sha256_file(asset)?;
    }
    let server_json = write_server_json(&meta, &opts.out)?;
    Ok(DistOutput {
        platform,
        npm_main,
        npm_platform,
        mcpb_dir,
        mcpb,
        archive,
        server_json,
    })
}

/// `BIN tools --json`: the exact `tools/list` the server answers (no credentials needed).
pub fn tools_from_binary(bin: &Path) -> Result<String> {
    let out = Command::new(bin)
        .args(["tools", "--json"])
        .env_remove("SMARTCAR_CLIENT_SECRET")
        .output()
        .with_context(|| format!("running {} tools --json", bin.display()))?;
    if !out.status.success() {
        bail!(
            "{} tools --json failed ({}): {}",
            bin.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    String::from_utf8(out.stdout).context("tools --json printed non-UTF-8")
}

/// `[{name, description}]` from a `tools/list` result (or its bare `tools` array).
pub fn tool_summaries(tools_json: &str) -> Result<Vec<Value>> {
    let v: Value = serde_json::from_str(tools_json).context("tools --json is not JSON")?;
    let list = v
        .get("tools")
        .unwrap_or(&v)
        .as_array()
        .context("tools --json has no tools array")?;
    let tools: Vec<Value> = list
        .iter()
        .map(|t| {
            let name = t["name"].as_str().context("a tool without a name")?;
            let description = t["description"].as_str().unwrap_or_default();
            // The bundle's list is for people browsing extensions: the first sentence is enough.
            let short = first_sentence(description);
            Ok(json!({ "name": name, "description": short }))
        })
        .collect::<Result<_>>()?;
    if tools.is_empty() {
        bail!("tools --json listed no tools");
    }
    Ok(tools)
}

fn first_sentence(text: &str) -> String {
    let line = text.lines().next().unwrap_or_default().trim();
    match line.find(". ") {
        Some(i) => line[..=i].to_owned(),
        None => line.to_owned(),
    }
}

fn write_json(path: &Path, value: &Value) -> Result<()> {
    let mut text = serde_json::to_string_pretty(value)?;
    text.push('\n');
    fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

fn fresh_dir(dir: &Path) -> Result<()> {
    if dir.exists() {
        fs::remove_dir_all(dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))
}

fn copy_executable(from: &Path, to: &Path) -> Result<()> {
    fs::copy(from, to)
        .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(to, fs::Permissions::from_mode(0o755))?;
    }
    Ok(())
}

fn npm_repository(meta: &Meta) -> Value {
    json!({ "type": "git", "url": format!("git+{}.git", meta.repository) })
}

/// The main package: the launcher, with every platform package as an optional dependency.
pub fn npm_main_package_json(meta: &Meta) -> Result<Value> {
    let optional: serde_json::Map<String, Value> = PLATFORMS
        .iter()
        .map(|p| (p.npm_package(), Value::String(meta.version.clone())))
        .collect();
    Ok(json!({
        "name": meta.name,
        "version": meta.version,
        "description": meta.description,
        "license": meta.license,
        "repository": npm_repository(meta),
        "homepage": format!("{}#readme", meta.repository),
        "bugs": { "url": format!("{}/issues", meta.repository) },
        "keywords": ["mcp", "model-context-protocol", "smartcar", "vehicle", "ev", "mcp-server"],
        "mcpName": meta.server_name()?,
        "bin": { "smartcar-mcp": "bin/smartcar-mcp.js" },
        "files": ["bin/", "README.md"],
        "engines": { "node": ">=18" },
        "optionalDependencies": optional,
    }))
}

fn write_npm_main(meta: &Meta, dir: &Path) -> Result<PathBuf> {
    fresh_dir(dir)?;
    fs::create_dir_all(dir.join("bin"))?;
    write_json(&dir.join("package.json"), &npm_main_package_json(meta)?)?;
    let packages: serde_json::Map<String, Value> = PLATFORMS
        .iter()
        .map(|p| (p.name.to_owned(), Value::String(p.npm_package())))
        .collect();
    let shim = include_str!("shim.js")
        .replace("__PACKAGES__", &serde_json::to_string(&packages)?)
        .replace("__VERSION__", &serde_json::to_string(&meta.version)?);
    let shim_path = dir.join("bin").join("smartcar-mcp.js");
    fs::write(&shim_path, shim)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&shim_path, fs::Permissions::from_mode(0o755))?;
    }
    let readme = format!(
        "# smartcar-mcp\n\n{description}\n\nNo installation needed: MCP clients start it with npx. \
         For Claude Desktop, `claude_desktop_config.json`:\n\n```json\n{config}\n```\n\n\
         npm installs the prebuilt binary for your platform from one of the optional dependencies \
         ({platforms}). Documentation: {repo}#readme\n",
        description = meta.description,
        config = serde_json::to_string_pretty(&npx_client_config())?,
        platforms = PLATFORMS
            .iter()
            .map(|p| format!("`{}`", p.npm_package()))
            .collect::<Vec<_>>()
            .join(", "),
        repo = meta.repository,
    );
    fs::write(dir.join("README.md"), readme)?;
    Ok(dir.to_path_buf())
}

/// The client configuration that starts the server through npx.
pub fn npx_client_config() -> Value {
    json!({
        "mcpServers": {
            "smartcar": {
                "command": "npx",
                "args": ["-y", "smartcar-mcp"],
                "env": {
                    "SMARTCAR_CLIENT_ID": "client_your-client-id",
                    "SMARTCAR_CLIENT_SECRET": "your-client-secret"
                }
            }
        }
    })
}

/// The package carrying one platform's binary.
pub fn npm_platform_package_json(meta: &Meta, p: &Platform) -> Value {
    json!({
        "name": p.npm_package(),
        "version": meta.version,
        "description": format!("The {} binary of smartcar-mcp (installed by the smartcar-mcp package)", p.name),
        "license": meta.license,
        "repository": npm_repository(meta),
        "homepage": format!("{}#readme", meta.repository),
        "os": [p.os],
        "cpu": [p.cpu],
        "files": ["bin/"],
        "preferUnplugged": true,
    })
}

fn write_npm_platform(meta: &Meta, p: &Platform, bin: &Path, npm_dir: &Path) -> Result<PathBuf> {
    let dir = npm_dir.join(p.name);
    fresh_dir(&dir)?;
    fs::create_dir_all(dir.join("bin"))?;
    write_json(
        &dir.join("package.json"),
        &npm_platform_package_json(meta, p),
    )?;
    copy_executable(bin, &dir.join("bin").join(p.exe()))?;
    fs::write(
        dir.join("README.md"),
        format!(
            "# {}\n\nThe {} binary of [smartcar-mcp]({}). Install `smartcar-mcp`, not this package: \
             it depends on this one.\n",
            p.npm_package(),
            p.name,
            meta.repository
        ),
    )?;
    Ok(dir)
}

/// The `.mcpb` manifest for one platform's bundle.
pub fn mcpb_manifest(meta: &Meta, p: &Platform, tools: &[Value]) -> Value {
    let entry = format!("server/{}", p.exe());
    json!({
        "manifest_version": MCPB_MANIFEST_VERSION,
        "name": meta.name,
        "display_name": "Smartcar",
        "version": meta.version,
        "description": meta.description,
        "long_description": "Read vehicle signals (battery, range, location, locks, charging) and send \
            commands (lock, unlock, start and stop charging, charge limit, navigation destination) \
            through Smartcar's v3 API with your Smartcar M2M (client-credentials) application. \
            Unlocking and deleting connections ask for your confirmation first.",
        "author": { "name": "smartcar-mcp contributors", "url": meta.repository },
        "repository": { "type": "git", "url": meta.repository },
        "homepage": meta.repository,
        "documentation": format!("{}#readme", meta.repository),
        "support": format!("{}/issues", meta.repository),
        "license": meta.license,
        "keywords": ["smartcar", "vehicle", "ev", "telemetry", "charging"],
        "privacy_policies": [PRIVACY_POLICY],
        "server": {
            "type": "binary",
            "entry_point": entry,
            "mcp_config": {
                "command": format!("${{__dirname}}/{entry}"),
                "args": [],
                "env": {
                    "SMARTCAR_CLIENT_ID": "${user_config.client_id}",
                    "SMARTCAR_CLIENT_SECRET": "${user_config.client_secret}"
                }
            }
        },
        "tools": tools,
        "tools_generated": false,
        "user_config": {
            "client_id": {
                "type": "string",
                "title": "Smartcar client id",
                "description": "Client id of your Smartcar M2M application (it starts with client_), from the Smartcar dashboard",
                "required": true,
                "sensitive": false
            },
            "client_secret": {
                "type": "string",
                "title": "Smartcar client secret",
                "description": "Client secret of the same application; stored in the OS keychain, never shown",
                "required": true,
                "sensitive": true
            }
        },
        "compatibility": {
            "claude_desktop": ">=0.10.0",
            "platforms": [p.os],
        }
    })
}

fn write_mcpb(
    meta: &Meta,
    p: &Platform,
    bin: &Path,
    tools: &[Value],
    out: &Path,
) -> Result<(PathBuf, PathBuf)> {
    let dir = out.join("mcpb").join(p.name);
    fresh_dir(&dir)?;
    fs::create_dir_all(dir.join("server"))?;
    let manifest = mcpb_manifest(meta, p, tools);
    write_json(&dir.join("manifest.json"), &manifest)?;
    copy_executable(bin, &dir.join("server").join(p.exe()))?;

    let path = out.join(meta.mcpb_file(p));
    let mut zip = zip::ZipWriter::new(fs::File::create(&path)?);
    let file = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .unix_permissions(0o644);
    zip.start_file("manifest.json", file)?;
    zip.write_all(&fs::read(dir.join("manifest.json"))?)?;
    zip.start_file(format!("server/{}", p.exe()), file.unix_permissions(0o755))?;
    zip.write_all(&fs::read(bin)?)?;
    zip.finish()?;
    Ok((dir, path))
}

/// The release archive `cargo binstall` downloads: `NAME-TARGET-vVERSION/{smartcar-mcp, README.md}`.
fn write_archive(
    meta: &Meta,
    p: &Platform,
    target: &str,
    bin: &Path,
    root: &Path,
    out: &Path,
) -> Result<PathBuf> {
    let stem = meta.archive_stem(target);
    let readme = fs::read(root.join("README.md")).context("reading README.md")?;
    let binary = fs::read(bin)?;
    if p.os == "win32" {
        let path = out.join(format!("{stem}.zip"));
        let mut zip = zip::ZipWriter::new(fs::File::create(&path)?);
        let file = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        zip.start_file(format!("{stem}/{}", p.exe()), file.unix_permissions(0o755))?;
        zip.write_all(&binary)?;
        zip.start_file(format!("{stem}/README.md"), file.unix_permissions(0o644))?;
        zip.write_all(&readme)?;
        zip.finish()?;
        return Ok(path);
    }
    let path = out.join(format!("{stem}.tar.gz"));
    let gz =
        flate2::write::GzEncoder::new(fs::File::create(&path)?, flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    for (name, data, mode) in [(p.exe(), &binary, 0o755), ("README.md", &readme, 0o644)] {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(mode);
        header.set_cksum();
        tar.append_data(&mut header, format!("{stem}/{name}"), data.as_slice())?;
    }
    tar.into_inner()?.finish()?;
    Ok(path)
}

/// Lower-case hex SHA-256 of a file.
pub fn sha256_hex(path: &Path) -> Result<String> {
    let bytes = fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

fn write_sha256_file(asset: &Path) -> Result<()> {
    let name = asset
        .file_name()
        .and_then(|n| n.to_str())
        .context("asset without a name")?;
    let line = format!("{}  {name}\n", sha256_hex(asset)?);
    fs::write(asset.with_file_name(format!("{name}.sha256")), line)?;
    Ok(())
}

/// The environment variables of the registry entry's packages.
fn registry_env() -> Value {
    json!([
        {
            "name": "SMARTCAR_CLIENT_ID",
            "description": "Client id of your Smartcar M2M application (starts with client_)",
            "isRequired": true,
            "isSecret": false,
            "format": "string"
        },
        {
            "name": "SMARTCAR_CLIENT_SECRET",
            "description": "Client secret of your Smartcar M2M application",
            "isRequired": true,
            "isSecret": true,
            "format": "string"
        },
        {
            "name": "SMARTCAR_READ_ONLY",
            "description": "true serves only the read-only tools",
            "isRequired": false,
            "format": "boolean",
            "default": "false"
        },
        {
            "name": "SMARTCAR_TOOLSETS",
            "description": "Comma-separated toolsets to serve: connections, signals, commands, management, all",
            "isRequired": false,
            "format": "string",
            "default": "all"
        }
    ])
}

/// `server.json` for the MCP Registry: the npm package, every `.mcpb` bundle in `dist_dir`
/// (with its SHA-256), and the container image.
pub fn server_json(meta: &Meta, dist_dir: &Path) -> Result<Value> {
    let mut packages = vec![json!({
        "registryType": "npm",
        "registryBaseUrl": "https://registry.npmjs.org",
        "identifier": meta.name,
        "version": meta.version,
        "runtimeHint": "npx",
        "transport": { "type": "stdio" },
        "environmentVariables": registry_env(),
    })];
    for p in &PLATFORMS {
        let file = meta.mcpb_file(p);
        let path = dist_dir.join(&file);
        if path.is_file() {
            packages.push(json!({
                "registryType": "mcpb",
                "identifier": meta.release_asset_url(&file),
                "version": meta.version,
                "fileSha256": sha256_hex(&path)?,
                "transport": { "type": "stdio" },
                "environmentVariables": registry_env(),
            }));
        }
    }
    let env_arg = |var: &str, placeholder: &str, secret: bool| {
        json!({
            "type": "named",
            "name": "-e",
            "value": format!("{var}={{{placeholder}}}"),
            "isRequired": true,
            "variables": {
                placeholder: { "isRequired": true, "isSecret": secret, "format": "string" }
            }
        })
    };
    packages.push(json!({
        "registryType": "oci",
        "identifier": meta.image()?,
        "runtimeHint": "docker",
        // The client runs `docker run ARGS IMAGE`; the image serves stdio MCP by default.
        "runtimeArguments": [
            { "type": "named", "name": "-i" },
            { "type": "named", "name": "--rm" },
            env_arg("SMARTCAR_CLIENT_ID", "client_id", false),
            env_arg("SMARTCAR_CLIENT_SECRET", "client_secret", true),
        ],
        "transport": { "type": "stdio" },
    }));
    Ok(json!({
        "$schema": SERVER_SCHEMA_URL,
        "name": meta.server_name()?,
        "title": "Smartcar",
        "description": meta.description,
        "version": meta.version,
        "repository": { "url": meta.repository, "source": "github" },
        "websiteUrl": format!("{}#readme", meta.repository),
        "packages": packages,
    }))
}

/// Writes `dist_dir/server.json` (see [`server_json`]).
pub fn write_server_json(meta: &Meta, dist_dir: &Path) -> Result<PathBuf> {
    let path = dist_dir.join("server.json");
    write_json(&path, &server_json(meta, dist_dir)?)?;
    Ok(path)
}
