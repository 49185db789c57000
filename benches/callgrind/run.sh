#!/usr/bin/env bash
# Instructions per get_signal call of one server binary, counted by callgrind: a 400-call run minus
# a 200-call run, divided by 200, over all threads, so start-up and shutdown cancel out.
#
#   benches/callgrind/run.sh BIN [LABEL]        (needs valgrind and python3)
#   SMARTCAR_MCP_BENCH_ROLE=relay benches/callgrind/run.sh target/release/deps/e2e-HASH relay
#
# The profiles stay in target/callgrind/LABEL.{200,400}.PID for callgrind_annotate; the audit
# database is a fresh one under target/callgrind/home, so the shared one never skews a run.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bin="$(realpath "$1")"
label="${2:-$(basename "$bin")}"
out="$here/../../target/callgrind"
mkdir -p "$out"
for n in 200 400; do
  rm -rf "$out/home" "$out/$label.$n".*
  mkdir -p "$out/home"
  HOME="$out/home" python3 "$here/drive.py" "$n" valgrind --tool=callgrind --log-file="$out/$label.$n.log" \
    --callgrind-out-file="$out/$label.$n.%p" "$bin" >/dev/null
done
total() { cat "$out/$label.$1".[0-9]* | awk '/^summary:/ { s += $2 } END { print s }'; }
a="$(total 200)"
b="$(total 400)"
echo "$label: $(((b - a) / 200)) instructions per get_signal call"
