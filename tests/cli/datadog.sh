#!/usr/bin/env bash
# `moonwatch run` with the Datadog sink against a fake intake on
# 127.0.0.1 (Python's http.server, inflating what it gets): settings from
# the environment, payloads while running and after SIGTERM, `sink` as a
# list, no sink without a key, `check` printing and sending nothing, and
# the API key in no log line (debug), error message or configcheck output.
set -u
mw=$1
src=$2
# shellcheck source-path=SCRIPTDIR source=lib/tally.sh
. "$(dirname "$0")/lib/tally.sh"
tmp=$(mktemp -d)
intake_pid=
trap '[ -n "$intake_pid" ] && kill $intake_pid 2>/dev/null; rm -rf "$tmp"' EXIT
key=cli0123456789abcdef0123456789abcd

cat > "$tmp/intake.py" <<'PY'
import http.server, json, sys, zlib
out = open(sys.argv[1], "a", buffering=1)
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.headers.get("Content-Encoding") == "deflate":
            body = zlib.decompress(body)
        out.write(json.dumps({"path": self.path, "key": self.headers.get("DD-API-KEY"),
                              "body": json.loads(body)}) + "\n")
        reply = b'{"status":"ok"}'
        self.send_response(202)
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)
    def log_message(self, *a):
        pass
s = http.server.HTTPServer(("127.0.0.1", 0), H)
open(sys.argv[2], "w").write(str(s.server_port))
s.serve_forever()
PY
python3 "$tmp/intake.py" "$tmp/got" "$tmp/port" &
intake_pid=$!
for _ in $(seq 1 50); do [ -s "$tmp/port" ] && break; sleep 0.1; done
port=$(cat "$tmp/port")

mkdir -p "$tmp/checks" "$tmp/templates/ticker.d"
cat > "$tmp/checks/ticker.lua" <<'LUA'
local c = {}
function c.init(self) self.n = 0 end
function c.run(self)
  self.n = self.n + 1
  mw.gauge("ticker.runs", self.n, {"device:sda"})
  mw.service_check("ticker.up", mw.OK)
end
return c
LUA
printf 'instances:\n  - min_collection_interval: 0.5\n' > "$tmp/templates/ticker.d/conf.yaml"
common=(--no-bundled --checks-dir "$tmp/checks" --templates-dir "$tmp/templates"
        --set docker=off --set ecs=off --log-level debug)

# settings from the environment; the sink list says stdout too
DD_API_KEY=$key DD_DD_URL="http://127.0.0.1:$port" DD_TAGS="env:cli team:x" DD_HOSTNAME=cli-host \
  "$mw" run "${common[@]}" --flush-interval 0.5 --sink stdout --set shutdown_timeout=5 \
  > "$tmp/out" 2> "$tmp/err" &
pid=$!
for _ in $(seq 1 100); do
  grep -q '"/api/v1/check_run"' "$tmp/got" 2>/dev/null && break
  sleep 0.1
done
kill -TERM $pid
wait $pid
rc=$?
[ $rc -eq 0 ] && ok || bad "run exited $rc on SIGTERM"
grep -q '"metric":"ticker.runs"' "$tmp/out" && ok || bad "stdout listed, no JSON lines"
python3 - "$tmp/got" "$key" <<'PY' && ok || bad "intake payloads"
import json, sys
reqs = [json.loads(l) for l in open(sys.argv[1])]
assert reqs and all(r["key"] == sys.argv[2] for r in reqs), "key header"
assert all("?" not in r["path"] for r in reqs), "query in a URL"
series = [s for r in reqs if r["path"] == "/api/v1/series" for s in r["body"]["series"]]
runs = [s for s in series if s["metric"] == "ticker.runs"]
assert runs, "no ticker.runs"
s = runs[-1]
assert s["host"] == "cli-host" and s["device"] == "sda" and s["type"] == "gauge", s
assert s["tags"] == ["env:cli", "team:x"], s["tags"]
assert any(s["metric"] == "moonwatch.forwarder.dropped" for s in series), "no dropped counter"
checks = [c for r in reqs if r["path"] == "/api/v1/check_run" for c in r["body"]]
assert checks and checks[0]["check"] == "ticker.up" and checks[0]["host_name"] == "cli-host"
PY
last_run=$(grep -o '"metric":"ticker.runs","kind":"gauge","value":[0-9]*' "$tmp/out" | tail -1 |
           grep -o '[0-9]*$')
python3 - "$tmp/got" "$last_run" <<'PY' && ok || bad "the final flush did not reach the intake"
import json, sys
reqs = [json.loads(l) for l in open(sys.argv[1])]
vals = [s["points"][0][1] for r in reqs if r["path"] == "/api/v1/series"
        for s in r["body"]["series"] if s["metric"] == "ticker.runs"]
assert vals and vals[-1] == float(sys.argv[2]), (vals[-3:], sys.argv[2])
PY
grep -q "$key" "$tmp/err" && bad "the API key is in the log" || ok
grep -q "sending to http://127.0.0.1:$port" "$tmp/err" && ok || bad "no intake URL logged"

# no key: datadog alone cannot start, and says why without a key in it
"$mw" run "${common[@]}" --sink datadog > /dev/null 2> "$tmp/err"
rc=$?
[ $rc -ne 0 ] && grep -q "no API key" "$tmp/err" && ok || { bad "datadog without a key (rc=$rc)"; cat "$tmp/err" >&2; }
"$mw" run "${common[@]}" --sink stdout,prom > /dev/null 2> "$tmp/err"
[ $? -ne 0 ] && grep -q 'sink: expected a list of stdout, datadog, prometheus or none' "$tmp/err" && ok \
  || bad "an unknown sink is not refused"

# `check` prints JSON lines and sends nothing, whatever DD_API_KEY says
before=$(wc -l < "$tmp/got")
DD_API_KEY=$key DD_DD_URL="http://127.0.0.1:$port" "$mw" check ticker "${common[@]}" \
  > "$tmp/check" 2> "$tmp/err"
grep -q '"metric":"ticker.runs"' "$tmp/check" && ok || bad "check printed no JSON lines"
sleep 0.5
[ "$(wc -l < "$tmp/got")" -eq "$before" ] && ok || bad "check sent to the intake"

# configcheck with a key set shows no key
DD_API_KEY=$key DD_DD_URL="http://127.0.0.1:$port" "$mw" configcheck --json "${common[@]}" \
  > "$tmp/cc" 2>&1
grep -q "$key" "$tmp/cc" && bad "the API key is in configcheck's output" || ok

tally
