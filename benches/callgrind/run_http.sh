#!/usr/bin/env bash
# Instructions per get_signal call over Streamable HTTP, counted by callgrind as run.sh counts
# stdio: a 400-call run minus a 200-call run, divided by 200, over all threads.
#
#   benches/callgrind/run_http.sh BIN stateless|session [LABEL]
#   benches/callgrind/run_http.sh target/release/deps/http-HASH plain floor   (the bench's relay)
#
# Profiles stay in target/callgrind/LABEL.{200,400}.PID for callgrind_annotate.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bin="$(realpath "$1")"
mode="$2"
label="${3:-$(basename "$bin")-$mode}"
out="$here/../../target/callgrind"
mkdir -p "$out"
args=(serve --http "127.0.0.1:{port}")
[ "$mode" = plain ] && args=()
for n in 200 400; do
  rm -rf "$out/home-$label" "$out/$label.$n".*
  mkdir -p "$out/home-$label"
  HOME="$out/home-$label" python3 "$here/drive_http.py" "$mode" "$n" valgrind --tool=callgrind \
    --log-file="$out/$label.$n.log" --callgrind-out-file="$out/$label.$n.%p" "$bin" "${args[@]}" >/dev/null
done
total() { cat "$out/$label.$1".[0-9]* | awk '/^summary:/ { s += $2 } END { print s }'; }
a="$(total 200)"
b="$(total 400)"
echo "$label: $(((b - a) / 200)) instructions per get_signal call"
