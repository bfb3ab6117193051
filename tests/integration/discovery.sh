#!/usr/bin/env bash
# Docker autodiscovery against a real, private Docker engine
# (lib/dockerd.sh):
#   1. a container with a v1 label config, one with a v2 label config and
#      one matched by a probe.d/auto_conf.yaml template (host network,
#      busybox httpd on 127.0.0.1, ports given with --expose) get their
#      probe instance scheduled, with the container's tags and resolved
#      %%host%% / %%port%% (a number) / %%env_X%% / %%container_name%%,
#      and the tags of a com.datadoghq.ad.tags label (its item that is not
#      key:value skipped with a warning);
#      `configcheck --json` shows them resolved with the same ids, and an
#      unknown variable or a non-allowlisted env var unresolved, with why;
#   2. stopping, killing and removing a container unschedules its
#      instance; starting it again or `docker restart` brings back the
#      same instance id;
#   3. restarting the engine itself while containers come and go (restart
#      policies, removal and creation right after it is back) ends with the
#      scheduled containers equal to `docker ps`;
#   4. 50 containers started, then stopped, killed or removed, all
#      concurrently: every one scheduled, every one unscheduled, once.
# Throughout, no instance is scheduled twice without an unschedule between
# and none is unscheduled that was not scheduled.
#
# usage: discovery.sh MOONWATCH_BINARY
# MW_IT_KEEP=DIR keeps moonwatch's stdout/stderr and dockerd.log in DIR;
# MW_STORM_N sets the size of phase 4 (default 50).
# Needs root, docker.io and busybox-static, else exits 77 (skipped).
# Prints phase timings; leaves no engine, container, process or file.
# needs: docker
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib/dockerd.sh
. "$here/lib/dockerd.sh"

# shellcheck source-path=SCRIPTDIR source=lib/harness.sh
. "$here/lib/harness.sh"
mw_harness_binary "${1:-}"
mw_harness_need_docker
fix=$(cd "$here/../fixtures/integration" && pwd)
storm_n=${MW_STORM_N:-50}

mw_pid='' tmp='' t_all=$(_mw_now_ms)
js() { python3 "$here/lib/mwjson.py" "$@"; }

# Polls COMMAND... every 0.2 s until it succeeds or TIMEOUT seconds pass.
wait_for() { # wait_for DESCRIPTION TIMEOUT COMMAND...
  local what=$1 t0 deadline
  t0=$(_mw_now_ms)
  deadline=$((t0 + $2 * 1000))
  shift 2
  until "$@"; do
    if [ "$(_mw_now_ms)" -ge "$deadline" ]; then
      bad "$what (not within $(((deadline - t0) / 1000)) s)"
      return 1
    fi
    sleep 0.2
  done
  ok "$what ($(($(_mw_now_ms) - t0)) ms)"
}

phase_t0=$t_all phase_name=
phase() {
  local now
  now=$(_mw_now_ms)
  [ -z "$phase_name" ] || echo "== $phase_name: $((now - phase_t0)) ms"
  phase_name=$1 phase_t0=$now
  [ -z "$1" ] || echo "== $1"
}

# ------------------------------------------------------------ moonwatch

start_moonwatch() {
  "$mw" run --no-bundled --checks-dir "$fix/checks" --templates-dir "$fix/templates" \
    --docker-host "$DOCKER_HOST" --flush-interval 1 --log-format json --log-level info \
    --set ad_env_allowlist=PROBE_ROLE,OTHER --set host_network_host=127.0.0.1 \
    >"$tmp/out" 2>"$tmp/err" </dev/null &
  mw_pid=$!
}

# SIGINT, then SIGKILL after 10 s; the exit status into $mw_rc.
stop_moonwatch() {
  local i
  mw_rc=
  [ -n "$mw_pid" ] || return 0
  kill -INT "$mw_pid" 2>/dev/null
  for ((i = 0; i < 100; i++)); do
    kill -0 "$mw_pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$mw_pid" 2>/dev/null; then
    bad "moonwatch still running 10 s after SIGINT; killed"
    kill -KILL "$mw_pid" 2>/dev/null
  fi
  wait "$mw_pid"
  mw_rc=$?
  mw_pid=
}

moonwatch_alive() { [ -n "$mw_pid" ] && kill -0 "$mw_pid" 2>/dev/null; }

configcheck() {
  timeout 60 "$mw" configcheck --json --no-bundled --checks-dir "$fix/checks" \
    --templates-dir "$fix/templates" --docker-host "$DOCKER_HOST" \
    --set ad_env_allowlist=PROBE_ROLE,OTHER --set host_network_host=127.0.0.1
}

cleanup() {
  trap - EXIT INT TERM
  if [ -n "$mw_pid" ]; then
    kill -KILL "$mw_pid" 2>/dev/null
    wait "$mw_pid" 2>/dev/null
  fi
  if [ "$fail" -gt 0 ] && [ -n "$tmp" ] && [ -f "$tmp/err" ]; then
    echo "--- moonwatch stderr, last 40 lines" >&2
    tail -n 40 "$tmp/err" >&2
    echo "--- schedule/unschedule log" >&2
    js events "$tmp/err" | tail -n 40 | cut -c1-160 >&2
  fi
  if [ -n "${MW_IT_KEEP:-}" ] && [ -n "$tmp" ]; then # logs for a post-mortem
    mkdir -p "$MW_IT_KEEP" && cp "$tmp"/out "$tmp"/err "$tmp"/e/dockerd.log "$MW_IT_KEEP"/ 2>/dev/null
  fi
  mw_dockerd_stop || bad "engine cleanup"
  [ -z "$tmp" ] || rm -rf "$tmp"
  phase ""
  echo "whole test: $(($(_mw_now_ms) - t_all)) ms"
  echo "$pass passed, $fail failed"
  [ "$fail" -eq 0 ] && exit 0
  exit 1
}
trap cleanup EXIT
trap 'bad interrupted; exit 1' INT TERM

# ------------------------------------------------- what moonwatch logged

# "inst cid" of every live instance; a duplicate or an orphan unschedule
# is remembered in $tmp/anomalies (and makes the final check fail).
live() {
  js live "$tmp/err" 2>>"$tmp/anomalies"
}
live_cids() { live | awk '{ print $2 }' | sort -u; }
inst_of() { live | awk -v c="$1" '$2 == c { print $1 }'; }
is_live() { [ -n "$(inst_of "$1")" ]; }
not_live() { [ -z "$(inst_of "$1")" ]; }
all_live() { # all_live CID...
  local set c
  set=$(live_cids)
  for c in "$@"; do grep -qx "$c" <<<"$set" || return 1; done
}
none_live() {
  local set c
  set=$(live_cids)
  for c in "$@"; do ! grep -qx "$c" <<<"$set" || return 1; done
}
sched_count() { js events "$tmp/err" | awk -v c="$1" '$1 == "S" && $3 == c' | wc -l; }
# The last "scheduled" line of a container: "S inst cid name source".
sched_line() { js events "$tmp/err" | awk -v c="$1" '$1 == "S" && $3 == c' | tail -n 1; }
# Messages of the log lines from SOURCE starting with PREFIX.
log_msgs() { # log_msgs SOURCE PREFIX
  python3 - "$tmp/err" "$1" "$2" <<'PY'
import json, sys
for line in open(sys.argv[1], errors="replace"):
    try:
        o = json.loads(line)
    except ValueError:
        continue
    if isinstance(o, dict) and o.get("source") == sys.argv[2] \
            and str(o.get("msg", "")).startswith(sys.argv[3]):
        print(o.get("level"), o["msg"])
PY
}
has_log() { [ -n "$(log_msgs "$1" "$2")" ]; }
metric() { js metric "$tmp/out" "$@" >/dev/null; }
# The last sample of METRIC with TAG (from line FROM on): its value / check_id.
value_of() { js metric "$tmp/out" "$@" | awk '{ print $1 }'; }
check_id_of() { js metric "$tmp/out" "$@" | awk '{ print $2 }'; }
port_is() { [ "$(value_of probe.port "container_id:$1")" = "$2" ]; } # port_is CID PORT
# reports_as CID INST FROM: probe.run samples from line FROM on say INST.
reports_as() {
  is_live "$1" && [ "$(check_id_of probe.run --from "$3" "container_id:$1")" = "$2" ]
}
unscheduled_line() { js events "$tmp/err" | grep -qx "U $1 $2"; } # INST CID
warned() { log_msgs "docker://$1" unresolved | grep -q "$2"; } # CID WORD
contains() { [[ $1 == *"$2"* ]]; }
nothing_live() { [ -z "$(live_cids)" ]; }
docker_ps() { mw_docker ps -q --no-trunc | sort -u; }
live_is_docker_ps() { [ "$(live_cids)" = "$(docker_ps)" ]; }

# ------------------------------------------------------------ containers

# web NAME PORT IMAGE [docker run options...]: busybox httpd on
# 127.0.0.1:PORT, host network; prints the container id.
web() {
  local name=$1 port=$2 image=$3
  shift 3
  mw_docker run -d --init --network host --expose "$port" --name "$name" "$@" \
    "$image" httpd -f -p "127.0.0.1:$port"
}
# idle NAME PORT IMAGE [options...]: a container that only sleeps.
idle() {
  local name=$1 port=$2 image=$3
  shift 3
  mw_docker run -d --init --network host --expose "$port" --name "$name" "$@" \
    "$image" sleep 600
}
cid_of() { mw_docker inspect -f '{{.Id}}' "$1"; }
http_ok() { # http_ok PORT: the httpd answers (bounded retries)
  local i
  for ((i = 0; i < 25; i++)); do
    [ "$(curl -sf --max-time 2 "http://127.0.0.1:$1/" 2>/dev/null)" = "moonwatch busybox image" ] &&
      return 0
    sleep 0.2
  done
  return 1
}

# ================================================================= setup
phase "engine"
tmp=$(mktemp -d /tmp/mw-it.XXXXXX) || die "mktemp"
: >"$tmp/anomalies"
mw_dockerd_start "$tmp/e" || die "engine start"
ok "engine ready in ${MW_DOCKERD_READY_MS} ms"
mw_dockerd_image mwbox:1 || die "image import"
mw_docker tag mwbox:1 mwweb:2 || die "docker tag mwweb:2"
mw_docker tag mwbox:1 mwbad:3 || die "docker tag mwbad:3"
ok "images mwbox:1, mwweb:2 and mwbad:3"

# Three free loopback ports for the servers from pbase+1 on; the other
# ports are only exposed.
pbase=$(python3 -c '
import random, socket
for _ in range(50):
    base = random.randrange(20000, 50000)
    try:
        for p in range(base + 1, base + 4):
            with socket.socket() as s:
                s.bind(("127.0.0.1", p))
    except OSError:
        continue
    print(base)
    break
')
[ -n "$pbase" ] || die "no free loopback ports"
p1=$((pbase + 1)) p2=$((pbase + 2)) p3=$((pbase + 3))

v1_instances='[{"url":"http://%%host%%:%%port%%/","port":"%%port%%","role":"%%env_PROBE_ROLE%%","min_collection_interval":1,"tags":["variant:v1"]}]'
v2_checks='{"probe":{"init_config":{},"instances":[{"url":"http://%%host%%:%%port%%/v2","port":"%%port%%","role":"%%container_name%%","min_collection_interval":1,"tags":["variant:v2"]}]}}'
secret_checks='{"probe":{"instances":[{"url":"http://%%host%%:%%port%%/","token":"%%env_SECRET%%","min_collection_interval":1}]}}'

# ============================================== 1. schedule, tags, variables
phase "1. three containers scheduled"
# One container exists before moonwatch starts (initial list), the others
# come after (events).
c1=$(web web-v1 "$p1" mwbox:1 -e PROBE_ROLE=front \
  --label 'com.datadoghq.ad.check_names=["probe"]' \
  --label 'com.datadoghq.ad.init_configs=[{}]' \
  --label "com.datadoghq.ad.instances=$v1_instances") || die "docker run web-v1"
start_moonwatch
c2=$(web web-v2 "$p2" mwbox:1 --label "com.datadoghq.ad.checks=$v2_checks") ||
  die "docker run web-v2"
c3=$(web web-tmpl "$p3" mwweb:2 \
  --label 'com.datadoghq.ad.tags=["team:payments","tier:api","no-value"]') ||
  die "docker run web-tmpl"
cbad=$(idle bad-var $((pbase + 4)) mwbad:3) || die "docker run bad-var"
csec=$(idle bad-env $((pbase + 5)) mwbox:1 -e SECRET=hunter2 \
  --label "com.datadoghq.ad.checks=$secret_checks") || die "docker run bad-env"
for p in "$p1" "$p2" "$p3"; do check "httpd answers on 127.0.0.1:$p" http_ok "$p"; done

wait_for "web-v1, web-v2, web-tmpl scheduled" 20 all_live "$c1" "$c2" "$c3"
moonwatch_alive || die "moonwatch exited early"
i1=$(inst_of "$c1") i2=$(inst_of "$c2") i3=$(inst_of "$c3")
for pair in "web-v1 $c1 com.datadoghq.ad.instances" "web-v2 $c2 com.datadoghq.ad.checks" \
  "web-tmpl $c3 probe.d/auto_conf.yaml"; do
  read -r name cid src <<<"$pair"
  read -r _ inst _ lname lsrc <<<"$(sched_line "$cid")"
  check "$name: one instance, id probe:..." [ "$(inst_of "$cid" | wc -l)" -eq 1 ]
  case $inst in probe:?*) ok "$name: instance id $inst" ;; *) bad "$name: instance id '$inst'" ;; esac
  check "$name: log names the container ($lname)" [ "$lname" = "$name" ]
  case $lsrc in *"$src"*) ok "$name: config from $lsrc" ;; *) bad "$name: source '$lsrc', wanted *$src*" ;; esac
done
cids=("$c1" "$c2" "$c3") insts=("$i1" "$i2" "$i3") ports=("$p1" "$p2" "$p3")
names=(web-v1 web-v2 web-tmpl)
check "three distinct instance ids" [ "$(printf '%s\n' "$i1" "$i2" "$i3" | sort -u | wc -l)" -eq 3 ]

# The samples: resolved variables as the check saw them, and the
# container's tags merged with the instance's.
tags1=("url:http://127.0.0.1:$p1/" role:front variant:v1 container_name:web-v1
  short_image:mwbox image_tag:1 "container_id:$c1")
tags2=("url:http://127.0.0.1:$p2/v2" role:web-v2 variant:v2 container_name:web-v2
  short_image:mwbox image_tag:1 "container_id:$c2")
tags3=("url:http://127.0.0.1:$p3/" role:nil variant:tmpl container_name:web-tmpl
  short_image:mwweb image_tag:2 "container_id:$c3" team:payments tier:api)
wait_for "web-v1: probe.run with url, env, labels' and container's tags" 15 \
  metric probe.run "${tags1[@]}"
wait_for "web-v2: probe.run with url, container_name, tags" 15 metric probe.run "${tags2[@]}"
wait_for "web-tmpl: probe.run with url, tags and the ad.tags label's tags" 15 \
  metric probe.run "${tags3[@]}"
check "web-tmpl: the label's item that is not key:value is no tag" \
  not contains "$(js tags "$tmp/out" probe.run "$i3")" no-value
check "web-tmpl: ... and is named in a warning" \
  has_log "docker://$c3" "docker://$c3 label com.datadoghq.ad.tags: [2] \"no-value\" is not key:value"
for k in 0 1 2; do
  cid=${cids[k]} inst=${insts[k]} port=${ports[k]}
  check "${names[k]}: samples carry its instance id" \
    [ "$(check_id_of probe.run "container_id:$cid")" = "$inst" ]
  wait_for "${names[k]}: probe.port = $port, a number" 10 port_is "$cid" "$port"
done
check "no port arrived as a string" not grep -q '"probe.port_not_number"' "$tmp/out"
check "bad-var not scheduled" [ "$(sched_count "$cbad")" -eq 0 ]
check "bad-env not scheduled" [ "$(sched_count "$csec")" -eq 0 ]
wait_for "bad-var: 'unresolved' warning" 10 has_log "docker://$cbad" unresolved
wait_for "bad-env: 'unresolved' warning" 10 has_log "docker://$csec" unresolved
log_msgs "docker://$cbad" unresolved | head -n 1 | sed 's/^/   /'
check "bad-var's warning names %%nosuchvar%%" warned "$cbad" nosuchvar
check "bad-env's warning names SECRET" warned "$csec" SECRET
check "the secret's value is not logged" not grep -q hunter2 "$tmp/err"

phase "1. configcheck --json"
if configcheck >"$tmp/cc.json" 2>"$tmp/cc.err"; then
  ok "configcheck exits 0"
else
  bad "configcheck failed: $(head -c 300 "$tmp/cc.err")"
fi
if js configcheck "$tmp/cc.json" >"$tmp/cc.txt"; then
  ok "configcheck --json has resolved and unresolved lists"
  for k in 0 1 2; do
    cid=${cids[k]} inst=${insts[k]} port=${ports[k]} name=${names[k]}
    line=$(awk -v s="docker://$cid" '$1 == "R" && $2 == s' "$tmp/cc.txt")
    check "configcheck: $name resolved once" [ "$(grep -c . <<<"$line")" -eq 1 ]
    check "configcheck: $name has the run's instance id" [ "$(awk '{ print $4 }' <<<"$line")" = "$inst" ]
    case $line in *"\"port\":$port,"*) ok "configcheck: port $port is a number" ;; *) bad "configcheck: no numeric port $port in: $line" ;; esac
    case $line in *"\"url\":\"http://127.0.0.1:$port/"*) ok "configcheck: url on 127.0.0.1:$port" ;; *) bad "configcheck: url in: $line" ;; esac
    case $line in *"\"container_id:$cid\""*) ok "configcheck: $name tags merged" ;; *) bad "configcheck: no container_id tag in: $line" ;; esac
  done
  line=$(awk -v s="docker://$c3" '$1 == "R" && $2 == s' "$tmp/cc.txt")
  case $line in *'"team:payments","tier:api"'*) ok "configcheck: web-tmpl has the label's tags" ;; *) bad "configcheck: no label tags in: $line" ;; esac
  u=$(awk -v s="docker://$cbad" '$1 == "U" && $2 == s' "$tmp/cc.txt")
  check "configcheck: bad-var unresolved, reason names nosuchvar ($u)" contains "$u" nosuchvar
  u=$(awk -v s="docker://$csec" '$1 == "U" && $2 == s' "$tmp/cc.txt")
  check "configcheck: bad-env unresolved, reason names SECRET ($u)" contains "$u" SECRET
  check "configcheck: nothing resolved for bad-var or bad-env" \
    not grep -qE "^R docker://($cbad|$csec) " "$tmp/cc.txt"
  check "configcheck: the secret's value is not shown" not grep -q hunter2 "$tmp/cc.json"
else
  bad "configcheck --json output: $(head -c 300 "$tmp/cc.json")"
fi
mw_docker rm -f bad-var bad-env >/dev/null || bad "docker rm bad-var bad-env"

# ======================================== 2. stop, kill, remove, restart
phase "2. stop, kill, remove, restart"
mw_docker stop -t 5 web-v1 >/dev/null || bad "docker stop web-v1"
wait_for "stop web-v1 unschedules $i1" 15 not_live "$c1"
mw_docker kill web-v2 >/dev/null || bad "docker kill web-v2"
wait_for "kill web-v2 unschedules $i2" 15 not_live "$c2"
mw_docker rm -f web-tmpl >/dev/null || bad "docker rm -f web-tmpl"
wait_for "rm -f web-tmpl unschedules $i3" 15 not_live "$c3"
for k in 0 1 2; do
  check "${names[k]}: the unscheduled line names ${insts[k]} and the container" \
    unscheduled_line "${insts[k]}" "${cids[k]}"
done
mw_docker start web-v1 web-v2 >/dev/null || bad "docker start web-v1 web-v2"
wait_for "web-v1 and web-v2 scheduled again" 15 all_live "$c1" "$c2"
check "web-v1 is back with the same instance id" [ "$(inst_of "$c1")" = "$i1" ]
check "web-v2 is back with the same instance id" [ "$(inst_of "$c2")" = "$i2" ]
pid_before=$(mw_docker inspect -f '{{.State.Pid}}' web-v1)
from=$(($(wc -l <"$tmp/out") + 1))
mw_docker restart -t 5 web-v1 >/dev/null || bad "docker restart web-v1"
check "docker restart gave web-v1 a new process" \
  [ "$(mw_docker inspect -f '{{.State.Pid}}' web-v1)" != "$pid_before" ]
check "web-v1 serves again" http_ok "$p1"
wait_for "after docker restart, web-v1 reports as $i1 again" 15 reports_as "$c1" "$i1" "$from"
check "after docker restart, web-v1 keeps its instance id" [ "$(inst_of "$c1")" = "$i1" ]

# ===================================================== 3. engine restart
phase "3. engine restart"
k1=$(idle keep-1 $((pbase + 11)) mwweb:2 --restart always) || bad "docker run keep-1"
k2=$(idle keep-2 $((pbase + 12)) mwweb:2 --restart unless-stopped) || bad "docker run keep-2"
g1=$(idle gone-1 $((pbase + 13)) mwweb:2) || bad "docker run gone-1"
wait_for "keep-1, keep-2, gone-1 scheduled" 15 all_live "$k1" "$k2" "$g1"
t0=$(_mw_now_ms)
mw_dockerd_restart 2 || die "engine restart"
ok "engine down 2 s, back in $(($(_mw_now_ms) - t0)) ms (ready after ${MW_DOCKERD_READY_MS} ms)"
# Right away, likely before moonwatch is back: a removal, a creation and
# an old container started again.
mw_docker rm -f keep-2 >/dev/null || bad "docker rm -f keep-2"
n1=$(idle new-1 $((pbase + 14)) mwweb:2) || bad "docker run new-1"
mw_docker start web-v1 >/dev/null || bad "docker start web-v1"
check "keep-1 came back by its restart policy" \
  [ "$(mw_docker inspect -f '{{.State.Running}}' keep-1)" = true ]
check "gone-1 and web-v2 were stopped with the engine" \
  [ "$(mw_docker ps -q --filter name=^/gone-1$ --filter name=^/web-v2$)" = "" ]
wait_for "scheduled containers = docker ps" 30 live_is_docker_ps
# ...and it stays so: no late resync drops or adds anything.
n_events=$(js events "$tmp/err" | wc -l)
sleep 1.5
check "no schedule or unschedule in the 1.5 s after that" \
  [ "$(js events "$tmp/err" | wc -l)" -eq "$n_events" ]
check "still scheduled containers = docker ps" live_is_docker_ps
check "moonwatch survived the engine restart" moonwatch_alive
check "keep-1, new-1 and web-v1 scheduled" all_live "$k1" "$n1" "$c1"
check "keep-2, gone-1, web-v2 unscheduled" none_live "$k2" "$g1" "$c2"
check "web-v1 still has instance id $i1" [ "$(inst_of "$c1")" = "$i1" ]
echo "   running: $(mw_docker ps --format '{{.Names}}' | sort | tr '\n' ' ')"
log_msgs docker disconnected | head -n 1 | cut -c1-150 | sed 's/^/   moonwatch said: /'

# ================================================================ 4. storm
phase "4. $storm_n containers started and stopped concurrently"
mkdir -p "$tmp/storm"
pids=()
t0=$(_mw_now_ms)
for ((i = 1; i <= storm_n; i++)); do
  MW_DOCKER_CMD_TIMEOUT=120 idle "st-$i" $((pbase + 100 + i)) mwweb:2 >"$tmp/storm/$i" 2>&1 &
  pids+=($!)
done
started=0
for p in "${pids[@]}"; do wait "$p" && started=$((started + 1)); done
check "$started of $storm_n docker run -d succeeded ($(($(_mw_now_ms) - t0)) ms)" \
  [ "$started" -eq "$storm_n" ]
[ "$started" -eq "$storm_n" ] || grep -hv "^[0-9a-f]\{64\}$" "$tmp"/storm/* | sort | uniq -c | head -n 5 >&2
mapfile -t storm < <(mw_docker ps -aq --no-trunc --filter name=^/st- | sort)
check "$storm_n storm containers exist" [ "${#storm[@]}" -eq "$storm_n" ]
wait_for "every storm container scheduled (no missed start)" 40 all_live "${storm[@]}"
pids=()
t0=$(_mw_now_ms)
for ((i = 1; i <= storm_n; i++)); do
  case $((i % 3)) in
    0) MW_DOCKER_CMD_TIMEOUT=120 mw_docker stop -t 2 "st-$i" ;;
    1) MW_DOCKER_CMD_TIMEOUT=120 mw_docker kill "st-$i" ;;
    2) MW_DOCKER_CMD_TIMEOUT=120 mw_docker rm -f "st-$i" ;;
  esac >/dev/null 2>&1 &
  pids+=($!)
done
stopped=0
for p in "${pids[@]}"; do wait "$p" && stopped=$((stopped + 1)); done
check "$stopped of $storm_n stop/kill/rm -f succeeded ($(($(_mw_now_ms) - t0)) ms)" \
  [ "$stopped" -eq "$storm_n" ]
wait_for "every storm container unscheduled (no orphan)" 40 none_live "${storm[@]}"
if js audit "$tmp/err" "${storm[@]}" 2>"$tmp/audit"; then
  ok "each storm container scheduled once and unscheduled once"
else
  bad "storm audit: $(head -n 5 "$tmp/audit")"
fi
check "scheduled containers = docker ps after the storm" live_is_docker_ps

# ================================================================ the end
phase "teardown"
# Everything goes, the stopped storm containers too: their removal must not
# unschedule anything twice.
mapfile -t all < <(mw_docker ps -aq --no-trunc)
[ "${#all[@]}" -eq 0 ] || mw_docker rm -f "${all[@]}" >/dev/null || bad "docker rm -f all"
wait_for "nothing scheduled once every container is gone" 20 nothing_live
stop_moonwatch
check "moonwatch exits 0 on SIGINT (rc=$mw_rc)" [ "$mw_rc" = 0 ]
js live "$tmp/err" >/dev/null 2>>"$tmp/anomalies"
if [ -s "$tmp/anomalies" ]; then
  bad "duplicate or orphan (un)schedules: $(sort -u "$tmp/anomalies" | head -n 5)"
else
  ok "no duplicate schedule, no unschedule without a schedule"
fi
check "stdout is JSON lines" js alljson "$tmp/out"
check "stderr is JSON lines" js alljson "$tmp/err"
n=$(grep -c '"level":"error"' "$tmp/err")
echo "   $(js events "$tmp/err" | grep -c '^S') schedules, $n error lines"
[ "$n" -eq 0 ] || grep '"level":"error"' "$tmp/err" | head -n 5 | cut -c1-200
