"""Drives one server process for callgrind: a canned Smartcar upstream on 127.0.0.1 (the e2e bench's
token and signal answers), the MCP handshake, then N sequential get_signal calls over stdio.

    python3 drive.py N COMMAND...   (run.sh runs it under valgrind)

SMARTCAR_MCP_BENCH_ROLE is passed through, so the e2e bench executable can be driven as the relay.
"""

import http.server
import os
import socketserver
import subprocess
import sys
import threading

SIGNAL = (
    '{"id":"tractionbattery-stateofcharge","type":"signal","attributes":{"code":"tractionbattery-stateofcharge",'
    '"name":"StateOfCharge","group":"TractionBattery","status":{"value":"SUCCESS"},"body":{"unit":"percent","value":75}},'
    '"meta":{"retrievedAt":1752104218549,"oemUpdatedAt":1752104118549},'
    '"links":{"self":"/vehicles/36ab27d0-fd9d-4455-823a-ce30af709ffc/signals/tractionbattery-stateofcharge"}}'
)
TOKEN = '{"access_token":"bench-token","token_type":"Bearer","expires_in":3600}'
CALL = (
    '{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"get_signal","arguments":'
    '{"vehicle_id":"36ab27d0-fd9d-4455-823a-ce30af709ffc","user_id":"93b3ee5b-2ea2-4c52-9f0f-3e3c0cf1a1b4",'
    '"signal_code":"tractionbattery-stateofcharge"}}}\n'
)


class Upstream(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as Smartcar's API

    def log_message(self, *_):
        pass

    def answer(self, body):
        length = int(self.headers.get("content-length") or 0)
        if length:
            self.rfile.read(length)
        data = body.encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        self.answer(TOKEN)

    def do_GET(self):
        self.answer(SIGNAL)


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True


def main():
    calls, command = int(sys.argv[1]), sys.argv[2:]
    upstream = Server(("127.0.0.1", 0), Upstream)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    base = "http://127.0.0.1:%d" % upstream.server_address[1]
    role = os.environ.get("SMARTCAR_MCP_BENCH_ROLE")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMARTCAR_") and k != "RUST_LOG"}
    env.update(
        SMARTCAR_CLIENT_ID="client_bench",
        SMARTCAR_CLIENT_SECRET="bench-secret",
        SMARTCAR_AUTH_URL=base,
        SMARTCAR_API_URL=base,
        SMARTCAR_MANAGEMENT_API_URL=base,
        SMARTCAR_CONFIRM="off",
    )
    if role:
        env["SMARTCAR_MCP_BENCH_ROLE"] = role
    p = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, text=True)
    p.stdin.write(
        '{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18",'
        '"capabilities":{},"clientInfo":{"name":"callgrind","version":"0"}}}\n'
    )
    p.stdin.flush()
    p.stdout.readline()
    p.stdin.write('{"jsonrpc":"2.0","method":"notifications/initialized"}\n')
    for i in range(1, calls + 1):
        p.stdin.write(CALL % i)
        p.stdin.flush()
        line = p.stdout.readline()
        if '"result"' not in line or '"isError":true' in line:
            sys.exit("call %d failed: %s" % (i, line.strip()))
    p.stdin.close()
    sys.exit(p.wait())


if __name__ == "__main__":
    main()
