#!/usr/bin/env bash
# Hot reload of `moonwatch run` on SIGHUP: a template added schedules its
# instance, the untouched one keeps its id and its run count; a broken
# template is reported as file:line:col in the log and under
# reload.errors in /status while its previous version keeps running; the
# config file (-c) is read again: log_level applies at once, a key that
# needs a restart is named; with the directories watched (the default of
# run) a new file is picked up with no signal. Every wait is bounded.
set -u
mw=$1
# shellcheck source-path=SCRIPTDIR source=lib/tally.sh
. "$(dirname "$0")/lib/tally.sh"
tmp=$(mktemp -d)
pid=
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2> /dev/null && wait "$pid" 2> /dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
# shellcheck source-path=SCRIPTDIR source=lib/listener.sh
. "$(dirname "$0")/lib/listener.sh"

mkdir -p "$tmp/checks" "$tmp/templates/probe.d"
cat > "$tmp/checks/probe.lua" <<'LUA'
return { run = function(self) mw.gauge("probe.v", 1, {"n:" .. self.instance.n}) end }
LUA
printf 'instances:\n  - n: a\n    min_collection_interval: 1\n' > "$tmp/templates/probe.d/a.yaml"
printf 'log_level: info\nflush_interval: 30\n' > "$tmp/cfg.yaml"

# wait_for CMD...: up to 10 s for CMD to succeed
wait_for() {
  for _ in $(seq 1 100); do "$@" > /dev/null 2>&1 && return 0; sleep 0.1; done
  return 1
}
status() { curl -s -m 2 "$base/status"; }
# q EXPR: evaluates EXPR on the /status document `d`
q() { status | python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
# qis EXPR VALUE: EXPR on /status prints VALUE (for wait_for, which
# evaluates it again on each try)
qis() { [ "$(q "$1")" = "$2" ]; }
has_n() { q "[i['id'] for i in d['instances']]" | grep -q .; [ "$(q "len(d['instances'])")" = "$1" ]; }

"$mw" run -c "$tmp/cfg.yaml" --no-bundled --checks-dir "$tmp/checks" \
  --templates-dir "$tmp/templates" --sink none --set docker=off --set ecs=off \
  --set watch_config_dirs=false --listen 127.0.0.1:0 > "$tmp/out" 2> "$tmp/err" &
pid=$!
addr=$(listener_addr "$tmp/err") && ok || bad "no listener"
base="http://$addr"
wait_for has_n 1 && ok || bad "one instance at start"
a_id=$(q "d['instances'][0]['id']")
wait_for qis "d['instances'][0]['runs'] >= 1" True && ok || bad "a never ran"

# a template added
printf 'instances:\n  - n: b\n    min_collection_interval: 1\n' > "$tmp/templates/probe.d/b.yaml"
runs_a=$(q "[i['runs'] for i in d['instances'] if i['id'] == '$a_id'][0]")
kill -HUP "$pid"
wait_for has_n 2 && ok || bad "b not added on SIGHUP"
q "[i['runs'] for i in d['instances'] if i['id'] == '$a_id'][0] >= $runs_a" | grep -q True \
  && ok || bad "a replaced (runs reset) by an unrelated change"

# a broken template: reported, its previous version keeps running
printf 'instances: [\n  - n: b2\n' > "$tmp/templates/probe.d/b.yaml"
kill -HUP "$pid"
wait_for grep -q 'reload.*b.yaml:[0-9]*:[0-9]*:' "$tmp/err" && ok || bad "no file:line:col in log"
wait_for qis "len(d['reload']['errors'])" 1 && ok || bad "no reload.errors in /status"
q "d['reload']['errors'][0]" | grep -q 'probe.d/b.yaml:[0-9]*:[0-9]*:' && ok \
  || bad "reload.errors not file:line:col"
[ "$(q "len(d['instances'])")" = 2 ] && ok || bad "previous b not kept"
"$mw" status --listen "$addr" > "$tmp/human" 2>&1 || true
grep -q 'reload errors' "$tmp/human" && ok || bad "moonwatch status does not show reload errors"

# fixed: applied, errors cleared
printf 'instances:\n  - n: b2\n    min_collection_interval: 1\n' > "$tmp/templates/probe.d/b.yaml"
kill -HUP "$pid"
wait_for qis "len(d['reload']['errors'])" 0 && ok || bad "errors not cleared"
q "sorted(i['id'] for i in d['instances'])" > "$tmp/ids"
grep -q "$a_id" "$tmp/ids" && ok || bad "a lost its id"

# the config file again: log_level at once, flush_interval needs a restart
printf 'log_level: debug\nflush_interval: 10\n' > "$tmp/cfg.yaml"
kill -HUP "$pid"
wait_for grep -q 'flush_interval changed; it takes a restart' "$tmp/err" && ok \
  || bad "restart-needed key not named"
wait_for grep -q 'config: applied log_level' "$tmp/err" && ok || bad "log_level not applied"

kill -TERM "$pid"
wait "$pid"
rc=$?
pid=
[ "$rc" = 0 ] && ok || bad "exit $rc"

# watched (watch_config_dirs is on for run by default): no signal needed
"$mw" run --no-bundled --checks-dir "$tmp/checks" --templates-dir "$tmp/templates" \
  --sink none --set docker=off --set ecs=off --listen 127.0.0.1:0 > "$tmp/out" 2> "$tmp/err2" &
pid=$!
addr=$(listener_addr "$tmp/err2") && ok || bad "no listener (2)"
base="http://$addr"
wait_for has_n 2 && ok || bad "two instances at the second start"
printf 'instances:\n  - n: c\n    min_collection_interval: 1\n' > "$tmp/templates/probe.d/c.yaml"
wait_for has_n 3 && ok || bad "a new template not picked up by the watch"
kill -TERM "$pid"
wait "$pid"
pid=
tally
