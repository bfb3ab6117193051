#!/usr/bin/env bash
# `moonwatch configcheck` without a Docker engine: static configs are
# listed resolved (text and --json), templates that schedule nothing are
# listed with why (configuration discovery, no check script), an
# unreachable engine fails within --timeout naming the socket, a
# malformed --docker-host is refused.
# (With a real engine: tests/integration/discovery.sh.)
set -u
mw=$1
# shellcheck source-path=SCRIPTDIR source=lib/tally.sh
. "$(dirname "$0")/lib/tally.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

mkdir -p "$tmp/t/web.d" "$tmp/t/redis.d" "$tmp/c"
printf 'init_config: {}\ninstances:\n  - url: http://127.0.0.1:8080/\n' > "$tmp/t/web.d/conf.yaml"
printf 'ad_identifiers: [redis]\ninstances:\n  - host: "%%%%host%%%%"\n' \
  > "$tmp/t/redis.d/auto_conf.yaml"
printf 'return { run = function(self) end }\n' > "$tmp/c/web.lua"
printf 'return { run = function(self) end }\n' > "$tmp/c/redis.lua"
common=(--no-bundled --templates-dir "$tmp/t" --checks-dir "$tmp/c" --set docker=off)

"$mw" configcheck "${common[@]}" --json >"$tmp/out" 2>"$tmp/err"
rc=$?
[ $rc -eq 0 ] && ok || { bad "configcheck --json exit $rc"; cat "$tmp/err" >&2; }
python3 - "$tmp/out" <<'PY' && ok || bad "--json document"
import json, sys
doc = json.load(open(sys.argv[1]))
res, un = doc["resolved"], doc["unresolved"]
assert un == [], un
assert doc["not_scheduled"] == [], doc
assert len(res) == 1, res               # the auto_conf waits for a container
r = res[0]
assert r["check"] == "web" and r["service"] is None, r
assert r["id"].startswith("web:") and len(r["id"]) == 4 + 16, r
assert r["source"].endswith("/web.d/conf.yaml"), r
assert r["instance"] == {"url": "http://127.0.0.1:8080/"}, r
PY
grep -q "Docker discovery is off" "$tmp/err" && ok || bad "no word that discovery is off"

"$mw" configcheck "${common[@]}" >"$tmp/out" 2>/dev/null
grep -q '^=== web (web:[0-9a-f]\{16\}) ===$' "$tmp/out" && ok || bad "text output header"
grep -q '^instance:    {"url":"http://127.0.0.1:8080/"}$' "$tmp/out" && ok || bad "text instance"

# Templates that schedule nothing, whatever the containers: a
# configuration discovery template, and configs of a check with no script
# (said once in the log, listed per file).
mkdir -p "$tmp/t/argo.d" "$tmp/t/ghost.d"
printf 'ad_identifiers: [argo]\ndiscovery: {}\ninit_config:\ninstances: []\n' \
  > "$tmp/t/argo.d/auto_conf.yaml"
printf 'return { run = function(self) end }\n' > "$tmp/c/argo.lua"
printf 'instances:\n  - {}\n' > "$tmp/t/ghost.d/conf.yaml"
printf 'ad_identifiers: [ghost]\ninstances:\n  - {}\n' > "$tmp/t/ghost.d/auto_conf.yaml"
"$mw" configcheck "${common[@]}" --json >"$tmp/out" 2>"$tmp/err"
[ $? -eq 0 ] && ok || { bad "configcheck --json with idle templates"; cat "$tmp/err" >&2; }
python3 - "$tmp/out" <<'PY' && ok || bad "--json not_scheduled"
import json, sys
doc = json.load(open(sys.argv[1]))
assert [r["check"] for r in doc["resolved"]] == ["web"], doc  # not ghost's static config
ns = sorted(doc["not_scheduled"], key=lambda o: o["source"])
assert [(o["check"], o["source"].split("/t/")[1]) for o in ns] == [
    ("argo", "argo.d/auto_conf.yaml"), ("ghost", "ghost.d/auto_conf.yaml"),
    ("ghost", "ghost.d/conf.yaml")], ns
assert ns[0]["reason"].startswith("configuration discovery template"), ns[0]
assert "no check named" not in ns[0]["reason"], ns[0]
for o in ns[1:]:
    assert o["reason"] == "no check named ghost (no ghost.lua in the checks directories)", o
PY
[ "$(grep -c "info  no check named ghost: 2 template files loaded" "$tmp/err")" -eq 1 ] && ok \
  || { bad "the missing check is not logged once at info"; cat "$tmp/err" >&2; }
"$mw" configcheck "${common[@]}" >"$tmp/out" 2>/dev/null
grep -q '^=== not scheduled ===$' "$tmp/out" && ok || bad "text: no not-scheduled section"
grep -q "^argo from $tmp/t/argo.d/auto_conf.yaml: configuration discovery template" "$tmp/out" \
  && ok || bad "text: argo's reason"
grep -q "^ghost from $tmp/t/ghost.d/conf.yaml: no check named ghost " "$tmp/out" && ok \
  || { bad "text: ghost's reason"; cat "$tmp/out" >&2; }

"$mw" configcheck --no-bundled --templates-dir "$tmp/t" --checks-dir "$tmp/c" \
  --docker-host "unix://$tmp/nothing.sock" --timeout 1 >"$tmp/out" 2>"$tmp/err"
rc=$?
[ $rc -eq 1 ] && ok || bad "unreachable engine: exit $rc, want 1"
grep -q "configcheck: discovery did not finish within 1 s" "$tmp/err" && ok \
  || { bad "unreachable engine: message"; cat "$tmp/err" >&2; }
grep -q "$tmp/nothing.sock" "$tmp/err" && ok || bad "the socket is not named"

"$mw" configcheck --docker-host http://127.0.0.1:2375 >"$tmp/out" 2>"$tmp/err"
rc=$?
[ $rc -eq 2 ] && ok || bad "bad --docker-host: exit $rc, want 2"
grep -q "docker_host: expected unix:///path or tcp://host:port" "$tmp/err" && ok \
  || bad "bad --docker-host: message"

tally
