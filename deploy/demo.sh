#!/usr/bin/env bash
# The demo: builds moonwatch, starts three labelled busybox containers on
# a Docker engine (the one at $DOCKER_HOST, a unix socket, or else at
# /var/run/docker.sock when it answers; else a private one of its own),
# and runs `moonwatch run --docker-host` so they are discovered and
# checked by the bundled container, http_check and tcp_check checks, with
# the demo's static checks (host metrics, moonwatch watching itself, a
# runaway check the sandbox stops) beside them. Partway through it stops
# one container (unscheduled) and starts a new one (discovered at once).
# JSON lines go to stdout, the log and the "== ..." headers to stderr; at
# the end a summary of the service checks sent, per check and container.
# DEMO_SECONDS sets how long moonwatch runs (default 35). Everything it
# started is removed at the end, on Ctrl-C too. Needs root on Debian; all
# traffic stays on loopback.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
secs=${DEMO_SECONDS:-35}
case $secs in '' | *[!0-9]*) secs=0 ;; esac
if [ "$secs" -lt 10 ]; then
  echo "demo.sh: DEMO_SECONDS must be a whole number of seconds, at least 10" >&2
  exit 2
fi

# The host's engine: $DOCKER_HOST when it is a unix socket, else the
# default one.
host_sock=/var/run/docker.sock
case ${DOCKER_HOST:-} in unix://?*) host_sock=${DOCKER_HOST#unix://} ;; esac
image=mwdemo-busybox:1 # labelled containers: their labels say what to run
web_image=mwdemo-web:1 # matched by deploy/demo/templates/*/auto_conf.yaml
say() { echo "== $*" >&2; }

# ------------------------------------------------------------ build

say "installing dependencies and building moonwatch into build/"
bash .ci/deps.sh >/dev/null
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" --target moonwatch_cli >/dev/null

# shellcheck source-path=SCRIPTDIR/.. source=tests/integration/lib/dockerd.sh
. tests/integration/lib/dockerd.sh

# ------------------------------------------------------------ cleanup

tmp=$(mktemp -d /tmp/mwdemo.XXXXXX)
engine=          # "host" or "private"
mwpid=           # moonwatch run
tailpid=         # the tail that copies moonwatch's JSON lines to stdout
sleeper=         # the sleep of at()
containers=()    # names of the containers started here
images=()        # images imported into the host's engine
cleaned=0

cleanup() {
  [ "$cleaned" -eq 0 ] || return 0
  cleaned=1
  trap '' INT TERM # a second Ctrl-C must not cut the cleanup short
  [ -z "$sleeper" ] || kill "$sleeper" 2>/dev/null || true
  if [ -n "$mwpid" ] && kill -0 "$mwpid" 2>/dev/null; then
    kill -INT "$mwpid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$mwpid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$mwpid" 2>/dev/null || true
  fi
  [ -z "$mwpid" ] || wait "$mwpid" 2>/dev/null || true
  [ -z "$tailpid" ] || kill "$tailpid" 2>/dev/null || true
  say "cleaning up: containers, images, engine, temporary files"
  if [ ${#containers[@]} -gt 0 ] && [ -n "$engine" ]; then
    MW_DOCKER_CMD_TIMEOUT=30 mw_docker rm -f "${containers[@]}" >/dev/null 2>&1 || true
  fi
  if [ "$engine" = private ]; then
    mw_dockerd_stop || true
  elif [ "$engine" = host ] && [ ${#images[@]} -gt 0 ]; then
    MW_DOCKER_CMD_TIMEOUT=30 mw_docker rmi "${images[@]}" >/dev/null 2>&1 || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ------------------------------------------------------------ engine

if [ -S "$host_sock" ] && timeout 5 "$MW_DOCKER" -H "unix://$host_sock" version >/dev/null 2>&1; then
  engine=host
  # dockerd.sh's client talks to DIR/docker.sock: point that at the
  # host's engine. mw_dockerd_stop is never called on it.
  MW_DOCKERD_DIR=$tmp/host
  mkdir -p "$MW_DOCKERD_DIR"
  ln -s "$host_sock" "$MW_DOCKERD_DIR/docker.sock"
  docker_host=unix://$host_sock
  say "Docker engine: the host's, at $host_sock (only the mwdemo-* containers are watched)"
  filter=(--set 'container_exclude=name:.*' --set 'container_include=name:^mwdemo-')
else
  engine=private
  say "Docker engine: none at $host_sock, starting a private one in $tmp/engine" \
    "(no bridge, no iptables; containers use the host network)"
  mw_dockerd_start "$tmp/engine"
  docker_host=unix://$MW_DOCKERD_DIR/docker.sock
  filter=()
fi

if [ "$engine" = host ] && [ -n "$(mw_docker ps -aq --filter name=^/mwdemo-)" ]; then
  echo "demo.sh: the host's engine already has mwdemo-* containers; not touching them" >&2
  exit 1
fi
say "importing a busybox image as $image (no registry needed), tagged $web_image too"
for ref in "$image" "$web_image"; do
  if [ "$engine" = host ] && mw_docker image inspect "$ref" >/dev/null 2>&1; then
    echo "demo.sh: the host's engine already has an image $ref; not touching it" >&2
    exit 1
  fi
done
images=("$image" "$web_image")
mw_dockerd_image "$image"
mw_docker tag "$image" "$web_image"

# run_web NAME PORT IMAGE [docker run options...]: busybox httpd on
# 127.0.0.1:PORT, serving the image's /index.html ("moonwatch busybox
# image"). --init: httpd as pid 1 would ignore SIGTERM on stop.
run_web() {
  local name=$1 port=$2 img=$3
  shift 3
  containers+=("$name")
  mw_docker run -d --init --network host --name "$name" "$@" "$img" \
    httpd -f -p "127.0.0.1:$port" >/dev/null
}

say "starting 3 containers, each serving HTTP on 127.0.0.1:1808x:"
echo "     mwdemo-v2    label com.datadoghq.ad.checks (v2): the container check on %%pid%%" >&2
run_web mwdemo-v2 18081 "$image" \
  --label 'com.datadoghq.ad.checks={"container":{"instances":[{"pid":"%%pid%%","min_collection_interval":5,"tags":["demo:v2-label"]}]}}'
echo "     mwdemo-v1    labels check_names/init_configs/instances (v1): http_check on http://%%host%%:18082/" >&2
run_web mwdemo-v1 18082 "$image" \
  --label 'com.datadoghq.ad.check_names=["http_check"]' \
  --label 'com.datadoghq.ad.init_configs=[{}]' \
  --label 'com.datadoghq.ad.instances=[{"name":"%%container_name%%","url":"http://%%host%%:18082/","min_collection_interval":5}]'
echo "     mwdemo-auto  no labels, image $web_image: deploy/demo/templates/{http_check,tcp_check,container}.d/auto_conf.yaml" >&2
echo "                  (http_check on http://%%host%%:%%port%%/, tcp_check on %%host%%:%%port%%, container on %%pid%%)" >&2
run_web mwdemo-auto 18083 "$web_image" --expose 18083

# ------------------------------------------------------------ moonwatch

say "moonwatch run --docker-host $docker_host for ${secs}s: lists the containers," \
  "schedules what their labels and the templates ask for, flushes JSON lines every 5 s"
say "beside them the static checks system, moonwatch and runaway: an endless loop that" \
  "its 1 s budget stops (moonwatch.check_status CRITICAL); the others keep their schedule"
# stdout goes to a file too (for the summary); tail copies it to stdout.
./build/moonwatch run --docker-host "$docker_host" --flush-interval 5 \
  --templates-dir deploy/demo/templates --checks-dir deploy/demo/checks \
  --set default_interval=5 "${filter[@]}" >"$tmp/out.jsonl" &
mwpid=$!
tail -n +1 -f --pid="$mwpid" "$tmp/out.jsonl" &
tailpid=$!
start=$(date +%s)

# at SEC: sleeps until SEC seconds after moonwatch started; fails when
# moonwatch is gone. `wait` returns as soon as a trapped signal arrives.
at() {
  local left=$(($1 - ($(date +%s) - start)))
  if [ "$left" -gt 0 ]; then
    sleep "$left" &
    sleeper=$!
    wait "$sleeper" || true
    sleeper=
  fi
  kill -0 "$mwpid" 2>/dev/null || { echo "demo.sh: moonwatch exited early" >&2; return 1; }
}

t=$((secs * 3 / 7))
at "$t"
say "[+${t}s] stopping mwdemo-v1: its die/stop events unschedule its http_check instance"
mw_docker stop -t 2 mwdemo-v1 >/dev/null

t=$((secs * 9 / 14))
at "$t"
say "[+${t}s] starting mwdemo-late (image $web_image, port 18084): discovered from its" \
  "start event, its checks run at once"
run_web mwdemo-late 18084 "$web_image" --expose 18084

at "$secs"
say "[+${secs}s] stopping moonwatch (SIGINT: a last flush, then exit)"
kill -INT "$mwpid"
rc=0
wait "$mwpid" || rc=$?
mwpid=
[ "$rc" -eq 0 ] || { echo "demo.sh: moonwatch exited $rc" >&2; exit "$rc"; }
wait "$tailpid" 2>/dev/null || true
tailpid=

# ------------------------------------------------------------ summary

# Per service check, check and container: how many flushes carried each
# status, the last message when it was not OK, and the last value of the
# response time the same instance reported. moonwatch.check_status (one
# per instance) is listed only for the instances it was not always OK for.
say "summary of the JSON lines: service checks per check and container, flushes by status"
if python3 - "$tmp/out.jsonl" <<'PY' >&2
import json, sys
names = {0: "OK", 1: "WARNING", 2: "CRITICAL", 3: "UNKNOWN"}
checks, times, records = {}, {}, 0
for line in open(sys.argv[1], encoding="utf-8", errors="replace"):
    try:
        r = json.loads(line)
    except ValueError:
        continue
    records += 1
    tags = dict(t.split(":", 1) for t in r.get("tags", []) if ":" in t)
    who = (r.get("check_id") or "-").split(":")[0], tags.get("container_name", "-")
    if r.get("type") == "service_check":
        c = checks.setdefault((r["check"],) + who, {"n": {}, "msg": ""})
        s = names.get(r.get("status"), str(r.get("status")))
        c["n"][s] = c["n"].get(s, 0) + 1
        if s != "OK" and r.get("message"):
            c["msg"] = r["message"]
    elif r.get("metric") in ("network.http.response_time", "network.tcp.response_time"):
        times[who] = "%s last %.4f s" % (r["metric"], r["value"])
print("     %d records" % records)
quiet = 0  # instances whose moonwatch.check_status was always OK
for (sc, check, ctr), c in sorted(checks.items()):
    if sc == "moonwatch.check_status" and list(c["n"]) == ["OK"]:
        quiet += 1
        continue
    line = "%-23s %-10s %-12s %s" % (sc, check, ctr, " ".join(
        "%s %d" % (s, n) for s, n in sorted(c["n"].items())))
    if c["msg"]:
        line += " (last: %s)" % c["msg"][:60]
    elif sc.endswith(".can_connect") and (check, ctr) in times:
        line += ", " + times[(check, ctr)]
    print("     " + line)
print("     moonwatch.check_status  OK at every flush for the other %d instances" % quiet)
PY
then :; else echo "demo.sh: the summary failed (the JSON lines above are complete)" >&2; fi
