#!/usr/bin/env bash
# Hot reload on a real, private Docker engine (lib/dockerd.sh), with
# containers running: two containers of two images, each matched by its
# own template (ad_identifiers); `moonwatch run` watches its directories.
#   1. the web template changed on disk: the web container's instance is
#      replaced (new id), the db container's keeps its id and its runs;
#   2. the db template broken (YAML): reported as file:line:col under
#      reload.errors in /status, its previous instance still running;
#   3. fixed, and the web check script changed, then SIGHUP (or the
#      watch, whichever comes first): the errors clear, the web instance is
#      replaced under the same id, the db instance is left alone;
#   4. a container started after the reload is scheduled from it.
# Needs root, docker.io and busybox-static, else exits 77 (skipped).
# Every wait is bounded; leaves no engine, container, process or file.
# needs: docker
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib/dockerd.sh
. "$here/lib/dockerd.sh"

# shellcheck source-path=SCRIPTDIR source=lib/harness.sh
. "$here/lib/harness.sh"
mw_harness_binary "${1:-}"
mw_harness_need_docker

mw_pid='' tmp=''
# wait_for DESCRIPTION COMMAND...: up to 30 s
wait_for() {
  local what=$1
  shift
  for _ in $(seq 1 150); do
    if "$@" > /dev/null 2>&1; then
      ok "$what"
      return 0
    fi
    sleep 0.2
  done
  bad "$what (not within 30 s)"
  return 1
}

cleanup() {
  trap - EXIT INT TERM
  if [ -n "$mw_pid" ]; then
    kill -KILL "$mw_pid" 2> /dev/null
    wait "$mw_pid" 2> /dev/null
  fi
  if [ "$fail" -gt 0 ] && [ -n "$tmp" ] && [ -f "$tmp/err" ]; then
    echo "--- moonwatch stderr, last 30 lines" >&2
    tail -n 30 "$tmp/err" >&2
  fi
  mw_dockerd_stop || bad "engine cleanup"
  [ -n "$tmp" ] && rm -rf "$tmp"
  echo "$pass passed, $fail failed"
  [ "$fail" -eq 0 ]
}
trap cleanup EXIT
trap 'exit 130' INT TERM

tmp=$(mktemp -d /tmp/mw-reload-it.XXXXXX)
mw_dockerd_start "$tmp/e" || { bad "engine start"; exit 1; }
mw_dockerd_image rl-web:1 || { bad "image import"; exit 1; }
mw_dockerd_image rl-db:1 || { bad "image import"; exit 1; }

mkdir -p "$tmp/checks" "$tmp/templates/web.d" "$tmp/templates/db.d"
counter='return { run = function(self)
  self.n = (self.n or 0) + 1
  mw.gauge("rl.count", self.n, {"n:" .. self.instance.n})
end }'
echo "$counter" > "$tmp/checks/web.lua"
echo "$counter" > "$tmp/checks/db.lua"
tpl() { # tpl IMAGE NAME
  printf 'ad_identifiers: [%s]\ninstances:\n  - n: %s\n    min_collection_interval: 1\n' "$1" "$2"
}
tpl rl-web w > "$tmp/templates/web.d/auto.yaml"
tpl rl-db d > "$tmp/templates/db.d/auto.yaml"

mw_docker run -d --init --network host --name web rl-web:1 sleep 3600 > /dev/null \
  || bad "docker run web"
mw_docker run -d --init --network host --name db rl-db:1 sleep 3600 > /dev/null \
  || bad "docker run db"

"$mw" run --no-bundled --checks-dir "$tmp/checks" --templates-dir "$tmp/templates" \
  --docker-host "$DOCKER_HOST" --sink none --set ecs=off --listen 127.0.0.1:0 \
  > "$tmp/out" 2> "$tmp/err" < /dev/null &
mw_pid=$!
wait_for "status listener" grep -q 'status listener on 127.0.0.1:[0-9]' "$tmp/err"
addr=$(grep -o 'status listener on 127.0.0.1:[0-9]*' "$tmp/err" | head -1 | sed 's/.* on //')

# q EXPR: EXPR over the /status document `d`; inst NAME FIELD: a field of
# the instance whose check is NAME
q() { curl -s -m 2 "http://$addr/status" | python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
qis() { [ "$(q "$1")" = "$2" ]; }
inst() { q "[i['$2'] for i in d['instances'] if i['check'] == '$1'][0]"; }
runs_past() { [ "$(inst "$1" runs)" -gt "$2" ]; }

wait_for "both containers' instances scheduled" qis "len(d['instances'])" 2
wait_for "db ran" runs_past db 0
web_id=$(inst web id) db_id=$(inst db id)

echo "== 1. the web template changed (watched)"
db_runs=$(inst db runs)
tpl rl-web w2 > "$tmp/templates/web.d/auto.yaml"
wait_for "web instance replaced" qis "[i['id'] for i in d['instances'] if i['check'] == 'web'][0] != '$web_id'" True
[ "$(inst db id)" = "$db_id" ] && ok "db kept its id" || bad "db id changed"
[ "$(inst db runs)" -ge "$db_runs" ] && ok "db kept its runs" || bad "db runs reset"
web_id=$(inst web id)

echo "== 2. the db template broken"
printf 'ad_identifiers: [rl-db]\ninstances: [\n' > "$tmp/templates/db.d/auto.yaml"
wait_for "reload.errors has db.d/auto.yaml:line:col" \
  qis "any(':' in e and 'db.d/auto.yaml:' in e for e in d['reload']['errors'])" True
q "d['reload']['errors'][0]" | grep -Eq 'db\.d/auto\.yaml:[0-9]+:[0-9]+:' \
  && ok "file:line:col" || bad "not file:line:col"
[ "$(inst db id)" = "$db_id" ] && ok "db's previous version runs" || bad "db lost"
db_runs=$(inst db runs)
wait_for "db still running" runs_past db "$db_runs"

echo "== 3. fixed, the web script changed, SIGHUP"
tpl rl-db d > "$tmp/templates/db.d/auto.yaml"
{ echo '-- v2'; echo "$counter"; } > "$tmp/checks/web.lua"
kill -HUP "$mw_pid"
wait_for "errors cleared" qis "len(d['reload']['errors'])" 0
wait_for "the web script's instance replaced" grep -q '1 scripts changed, 1 instances replaced' "$tmp/err"
[ "$(inst web id)" = "$web_id" ] && ok "web kept its id" || bad "web id changed"
[ "$(inst db id)" = "$db_id" ] && ok "db untouched" || bad "db replaced"

echo "== 4. a container started after the reload"
mw_docker run -d --init --network host --name web2 rl-web:1 sleep 3600 > /dev/null \
  || bad "docker run web2"
# its own instance (the container's tags are part of the config)
wait_for "web2 scheduled" qis "len([i for i in d['instances'] if i['check'] == 'web'])" 2
grep -q "scheduled for docker://[0-9a-f]* (web2) from $tmp/templates/web.d/auto.yaml" "$tmp/err" \
  && ok "web2 from the web template" || bad "web2 not from the web template"

kill -TERM "$mw_pid"
wait "$mw_pid"
rc=$?
mw_pid=
[ "$rc" = 0 ] && ok "moonwatch exit 0" || bad "moonwatch exit $rc"
mw_docker rm -f web web2 db > /dev/null 2>&1
