"""Drives one Streamable HTTP server process for callgrind: drive.py's canned upstream on 127.0.0.1,
then N sequential get_signal calls on one kept-alive connection, then SIGTERM so callgrind writes
its profile as the process exits.

    python3 drive_http.py MODE N COMMAND...   (run_http.sh runs it under valgrind)

MODE is `stateless` (2026-07-28: `_meta` and the per-request headers), `session` (2025-11-25:
`initialize`, then calls in the session) or `plain` (the http bench's floor relay, no MCP).
`{port}` in COMMAND becomes the port to serve on; SMARTCAR_MCP_BENCH_PORT carries it too (the
floor reads it there).
"""

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import drive  # noqa: E402  (the upstream and its canned answers)

VEHICLE = "36ab27d0-fd9d-4455-823a-ce30af709ffc"
USER = "93b3ee5b-2ea2-4c52-9f0f-3e3c0cf1a1b4"
META = {
    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
    "io.modelcontextprotocol/clientCapabilities": {"elicitation": {"form": {}}},
}


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def call_body(mode, i):
    params = {
        "name": "get_signal",
        "arguments": {"vehicle_id": VEHICLE, "user_id": USER, "signal_code": "tractionbattery-stateofcharge"},
    }
    if mode == "stateless":
        params["_meta"] = META
    return json.dumps({"jsonrpc": "2.0", "id": i, "method": "tools/call", "params": params})


def post(conn, body, headers):
    h = {"accept": "application/json, text/event-stream", "content-type": "application/json"}
    h.update(headers)
    conn.request("POST", "/mcp", body=body, headers=h)
    r = conn.getresponse()
    return r.status, r.getheader("mcp-session-id"), r.read().decode()


def main():
    mode, calls, command = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    upstream = drive.Server(("127.0.0.1", 0), drive.Upstream)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    base = "http://127.0.0.1:%d" % upstream.server_address[1]
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMARTCAR_") and k != "RUST_LOG"}
    env.update(
        SMARTCAR_CLIENT_ID="client_bench",
        SMARTCAR_CLIENT_SECRET="bench-secret",
        SMARTCAR_AUTH_URL=base,
        SMARTCAR_API_URL=base,
        SMARTCAR_MANAGEMENT_API_URL=base,
        SMARTCAR_MCP_BENCH_PORT=str(port),
        RUST_LOG="error",
    )
    if mode == "plain":
        env["SMARTCAR_MCP_BENCH_ROLE"] = "http-floor"
    p = subprocess.Popen([a.replace("{port}", str(port)) for a in command], env=env, stdin=subprocess.DEVNULL)
    for _ in range(600):
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            c.request("GET", "/healthz")
            if c.getresponse().status == 200:
                break
        except OSError:
            time.sleep(0.1)
    else:
        sys.exit("the server never became healthy")
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {}
    if mode == "session":
        init = {
            "jsonrpc": "2.0", "id": 0, "method": "initialize",
            "params": {"protocolVersion": "2025-11-25", "capabilities": {},
                       "clientInfo": {"name": "callgrind", "version": "0"}},
        }
        status, session, text = post(conn, json.dumps(init), {})
        if status != 200 or not session:
            sys.exit("initialize failed: %d %s" % (status, text))
        headers = {"mcp-session-id": session, "mcp-protocol-version": "2025-11-25"}
        post(conn, json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}), headers)
    elif mode == "stateless":
        headers = {"mcp-protocol-version": "2026-07-28", "mcp-method": "tools/call", "mcp-name": "get_signal"}
    for i in range(1, calls + 1):
        status, _, text = post(conn, call_body(mode, i), headers)
        if status != 200 or '"result"' not in text or '"isError":true' in text:
            sys.exit("call %d failed (%d): %s" % (i, status, text.strip()))
    conn.close()
    p.send_signal(signal.SIGTERM)
    sys.exit(0 if p.wait(timeout=120) in (0, -signal.SIGTERM) else 1)


if __name__ == "__main__":
    main()
