#!/usr/bin/env node
// Launcher of the smartcar-mcp npm package (written by `cargo xtask dist`): finds the binary in the
// platform package npm installed (an optional dependency) and runs it. The binary owns stdin and
// stdout (the MCP stdio stream): this script writes nothing to stdout, only errors to stderr.
"use strict";

const { spawn } = require("node:child_process");

// process.platform-process.arch -> the package that carries the binary for it.
const PACKAGES = __PACKAGES__;
const VERSION = __VERSION__;

function fail(message) {
  process.stderr.write(`smartcar-mcp: ${message}\n`);
  process.exit(1);
}

function binaryPath() {
  // For testing a locally built binary through this launcher.
  if (process.env.SMARTCAR_MCP_BINARY) return process.env.SMARTCAR_MCP_BINARY;
  const platform = `${process.platform}-${process.arch}`;
  const pkg = PACKAGES[platform];
  if (!pkg) {
    fail(
      `no prebuilt binary for this platform (${platform}); prebuilt: ${Object.keys(PACKAGES).join(", ")}. ` +
        "Build it from source instead: cargo install smartcar-mcp",
    );
  }
  const exe = process.platform === "win32" ? "smartcar-mcp.exe" : "smartcar-mcp";
  try {
    return require.resolve(`${pkg}/bin/${exe}`);
  } catch {
    fail(
      `the package ${pkg}@${VERSION}, which carries the binary for this platform (${platform}), is not installed. ` +
        "npm installs it as an optional dependency of smartcar-mcp: reinstall without --omit=optional/--no-optional, " +
        `or install it directly: npm install ${pkg}@${VERSION}`,
    );
  }
}

const child = spawn(binaryPath(), process.argv.slice(2), { stdio: "inherit", windowsHide: true });

// An MCP client stops a stdio server by closing stdin or with SIGTERM/SIGINT sent to this process:
// pass the signal on, and exit once the binary has.
const FORWARDED = ["SIGINT", "SIGTERM", "SIGHUP"];
for (const signal of FORWARDED) {
  process.on(signal, () => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
  });
}

child.on("error", (err) => fail(`cannot start ${child.spawnfile}: ${err.message}`));

child.on("exit", (code, signal) => {
  if (signal) {
    // Die of the same signal, so the caller sees what the binary did.
    for (const s of FORWARDED) process.removeAllListeners(s);
    process.kill(process.pid, signal);
    // A signal Node ignores (SIGPIPE) does not end it: exit as a shell reports a signal death.
    setTimeout(() => process.exit(128 + (require("node:os").constants.signals[signal] || 0)), 500);
    return;
  }
  process.exit(code ?? 1);
});
