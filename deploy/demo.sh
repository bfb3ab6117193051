#!/usr/bin/env bash
# The demo: builds moonwatch, starts three labelled busybox containers on
# a Docker engine (the one at $DOCKER_HOST, a unix socket, or else at
# /var/run/docker.sock when it answers; else a private one of its own),
# and runs `moonwatch run --docker-host` so they are discovered and
# checked by the bundled container, http_check and tcp_check checks, with
# the demo's static checks (host metrics, moonwatch watching itself, a
# runaway check the sandbox stops) beside them. Partway through it stops
# one container (unscheduled) and starts a new one (discovered at once).
# Amazon ECS too: two of the containers are started as the ECS agent
# starts a task's containers (the com.amazonaws.ecs.* labels), a stand-in
# for the agent (the fake ECS agent the build makes, on 127.0.0.1) lists
# their task, and moonwatch, pointed at it with ecs_agent_url, tags their
# checks' records with the task (task_arn, task_family, ecs_cluster_name,
# ecs_container_name, region, ...); a third task container runs
# `sh -c 'sleep 3; exit 3'`, and its exit gives one ECS `fail` event.
# Where the data goes: the JSON lines, and beside them the two other
# sinks. moonwatch's status listener is on 127.0.0.1 (--listen), and a
# real Prometheus (Debian's, started here on 127.0.0.1 with a config of
# the demo's own) scrapes its /metrics; the Datadog sink posts to a
# stand-in for the Datadog intake on 127.0.0.1 (deploy/demo/dd_intake.py,
# DD_DD_URL; the DD_API_KEY is a made-up one). JSON lines go to stdout,
# the log and the "== ..." headers to stderr. At the end: Prometheus's
# answer to one query, a summary of the service checks sent per check and
# container, what ECS added (the task tags, the docker check's CPU and
# memory of each container, the ECS events), what the intake received,
# and `moonwatch status`.
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
# Amazon ECS: the cluster and the two tasks the fake agent lists.
ecs_region=us-east-1
ecs_cluster=arn:aws:ecs:$ecs_region:123456789012:cluster/mwdemo
shop_arn=arn:aws:ecs:$ecs_region:123456789012:task/mwdemo/6f1c2a4e9b8d4e7fa0c3b5d2e1f4a7c9
batch_arn=arn:aws:ecs:$ecs_region:123456789012:task/mwdemo/d3b8e1a0c7f24b6e9a5d8c1f0e2b4a6d

# ------------------------------------------------------------ build

say "installing dependencies and building moonwatch into build/"
bash .ci/deps.sh >/dev/null
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" --target moonwatch_cli fake_ecs_agent >/dev/null
fea=build/tests/fake_ecs_agent
# Everything below talks to 127.0.0.1 only: no proxy may take it elsewhere.
export no_proxy=127.0.0.1,localhost NO_PROXY=127.0.0.1,localhost
# Loopback only: on a host whose firmware says EC2, moonwatch would ask the
# instance metadata service (169.254.169.254) for its host name.
export AWS_EC2_METADATA_DISABLED=true

# shellcheck source-path=SCRIPTDIR/.. source=tests/integration/lib/dockerd.sh
. tests/integration/lib/dockerd.sh

# ------------------------------------------------------------ cleanup

tmp=$(mktemp -d /tmp/mwdemo.XXXXXX)
engine=          # "host" or "private"
mwpid=           # moonwatch run
tailpid=         # the tail that copies moonwatch's JSON lines to stdout
feapid=          # the fake ECS agent
sleeper=         # the sleep of at()
prompid=         # Prometheus
intakepid=       # the stand-in for the Datadog intake
containers=()    # names of the containers started here
images=()        # images imported into the host's engine
cleaned=0

# stop_pid PID: SIGTERM, SIGKILL after 5 s; nothing when PID is empty.
stop_pid() {
  [ -n "$1" ] || return 0
  kill -TERM "$1" 2>/dev/null || return 0
  for _ in $(seq 1 50); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

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
  stop_pid "$prompid"
  stop_pid "$intakepid"
  if [ -n "$feapid" ]; then
    exec 7>&- # (a redirection on this exec would stay for the rest of the script)
    kill -TERM "$feapid" 2>/dev/null || true
    wait "$feapid" 2>/dev/null || true
  fi
  say "cleaning up: containers, images, engine, fake ECS agent, Prometheus, intake, temporary files"
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

# ------------------------------------------------------------ the ECS agent

# The fake ECS agent serves the agent's introspection API (/v1/metadata,
# /v1/tasks) on 127.0.0.1, a free port; it takes commands on its standard
# input (a FIFO held open on fd 7) and answers each with a line.
start_agent() {
  local port=
  [ -x "$fea" ] || { echo "demo.sh: $fea was not built" >&2; return 1; }
  mkfifo "$tmp/fea.in"
  "$fea" -c "$ecs_cluster" -o -P "$tmp/fea.port" <"$tmp/fea.in" >"$tmp/fea.out" 2>"$tmp/fea.err" &
  feapid=$!
  exec 7>"$tmp/fea.in"
  for _ in $(seq 1 50); do
    [ -s "$tmp/fea.port" ] && break
    sleep 0.1
  done
  port=$(awk '{ print $2 }' "$tmp/fea.port" 2>/dev/null) || true
  [ -n "$port" ] || { echo "demo.sh: the fake ECS agent did not start: $(cat "$tmp/fea.err")" >&2; return 1; }
  agent_url=http://127.0.0.1:$port
}

# agent COMMAND...: one command to the fake agent; fails unless it says ok.
agent() {
  local n answer
  kill -0 "$feapid" 2>/dev/null || { echo "demo.sh: the fake ECS agent is gone" >&2; return 1; }
  n=$(wc -l <"$tmp/fea.out")
  echo "$*" >&7
  for _ in $(seq 1 50); do
    [ "$(wc -l <"$tmp/fea.out")" -gt "$n" ] && break
    sleep 0.05
  done
  answer=$(tail -n 1 "$tmp/fea.out")
  [ "$answer" = ok ] || { echo "demo.sh: the fake ECS agent said '$answer' to: $*" >&2; return 1; }
}

# agent_lists ARN FAMILY VERSION NAME=CONTAINER...: the agent lists task ARN
# RUNNING, with each container under its name in the task definition.
agent_lists() {
  local arn=$1 family=$2 version=$3 pair id
  shift 3
  agent task "$arn" "$family" "$version" RUNNING RUNNING
  for pair in "$@"; do
    id=$(mw_docker inspect -f '{{.Id}}' "${pair#*=}")
    agent container "$arn" "${pair%%=*}" "$id" "${pair#*=}"
  done
}

# ecs_labels ARN FAMILY VERSION NAME: into ecs[], the labels the ECS agent
# puts on every container it starts for a task.
ecs_labels() {
  ecs=(--label "com.amazonaws.ecs.cluster=$ecs_cluster"
    --label "com.amazonaws.ecs.task-arn=$1"
    --label "com.amazonaws.ecs.task-definition-family=$2"
    --label "com.amazonaws.ecs.task-definition-version=$3"
    --label "com.amazonaws.ecs.container-name=$4")
}

# ------------------------------------------------------------ containers

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
echo "                  ECS labels: container api of task mwdemo-shop:7" >&2
ecs_labels "$shop_arn" mwdemo-shop 7 api
run_web mwdemo-v2 18081 "$image" "${ecs[@]}" \
  --label 'com.datadoghq.ad.checks={"container":{"instances":[{"pid":"%%pid%%","min_collection_interval":5,"tags":["demo:v2-label"]}]}}'
echo "     mwdemo-v1    labels check_names/init_configs/instances (v1): http_check on http://%%host%%:18082/" >&2
run_web mwdemo-v1 18082 "$image" \
  --label 'com.datadoghq.ad.check_names=["http_check"]' \
  --label 'com.datadoghq.ad.init_configs=[{}]' \
  --label 'com.datadoghq.ad.instances=[{"name":"%%container_name%%","url":"http://%%host%%:18082/","min_collection_interval":5}]'
echo "     mwdemo-auto  no Datadog labels, image $web_image: deploy/demo/templates/{http_check,tcp_check,container}.d/auto_conf.yaml" >&2
echo "                  (http_check on http://%%host%%:%%port%%/, tcp_check on %%host%%:%%port%%, container on %%pid%%)" >&2
echo "                  ECS labels: container web of task mwdemo-shop:7" >&2
ecs_labels "$shop_arn" mwdemo-shop 7 web
run_web mwdemo-auto 18083 "$web_image" --expose 18083 "${ecs[@]}"
echo "     (every one also gets the bundled docker check: docker.cpu.*, docker.mem.*, ... from its cgroup)" >&2

start_agent
say "Amazon ECS: a fake ECS agent on $agent_url (build/tests/fake_ecs_agent, the agent's" \
  "introspection API) lists task mwdemo-shop:7 of cluster mwdemo, RUNNING: mwdemo-v2 as api, mwdemo-auto as web"
agent_lists "$shop_arn" mwdemo-shop 7 api=mwdemo-v2 web=mwdemo-auto

# ------------------------------------------------------------ the sinks

# free_port: a free TCP port of 127.0.0.1.
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# The Datadog sink's intake: deploy/demo/dd_intake.py records what it gets
# in $tmp/intake.jsonl and writes its port to $tmp/intake.port.
python3 deploy/demo/dd_intake.py serve "$tmp/intake.jsonl" "$tmp/intake.port" 2>"$tmp/intake.err" &
intakepid=$!
for _ in $(seq 1 50); do
  [ -s "$tmp/intake.port" ] && break
  sleep 0.1
done
intake_port=$(cat "$tmp/intake.port" 2>/dev/null) || true
[ -n "$intake_port" ] || { echo "demo.sh: the intake did not start: $(cat "$tmp/intake.err")" >&2; exit 1; }
intake_url=http://127.0.0.1:$intake_port
say "Datadog: a stand-in for the intake on $intake_url (deploy/demo/dd_intake.py); the Datadog" \
  "sink posts there (DD_DD_URL; DD_API_KEY a made-up key), deflated, beside the JSON lines (--sink stdout,datadog)"

# moonwatch's status listener: /status, /healthz and /metrics.
listen=127.0.0.1:$(free_port)
# Prometheus: Debian's, scraping $listen/metrics every 2 s, its API on
# 127.0.0.1 too, its storage in $tmp. Waits up to 30 s (60 tries) to be
# ready.
prom_url=
start_prometheus() {
  local port deadline
  if ! command -v prometheus >/dev/null 2>&1; then
    say "Prometheus: not installed (Debian package prometheus), skipping its part"
    return 0
  fi
  port=$(free_port)
  cat >"$tmp/prometheus.yml" <<YML
global:
  scrape_interval: 2s
  scrape_timeout: 1s
scrape_configs:
  - job_name: moonwatch
    static_configs:
      - targets: ['$listen']
YML
  prometheus --config.file="$tmp/prometheus.yml" --web.listen-address="127.0.0.1:$port" \
    --storage.tsdb.path="$tmp/prometheus" >"$tmp/prometheus.log" 2>&1 &
  prompid=$!
  deadline=$((SECONDS + 30))
  for _ in $(seq 1 60); do
    if curl -fsS --noproxy '*' --max-time 1 "http://127.0.0.1:$port/-/ready" >/dev/null 2>&1; then
      prom_url=http://127.0.0.1:$port
      say "Prometheus: $(prometheus --version 2>&1 | head -n 1 | cut -d' ' -f1-3) on $prom_url," \
        "scraping moonwatch's /metrics at $listen every 2 s"
      return 0
    fi
    if ! kill -0 "$prompid" 2>/dev/null || [ "$SECONDS" -ge "$deadline" ]; then break; fi
    sleep 0.5
  done
  say "Prometheus: did not get ready within 30 s, skipping its part; its log's last lines:"
  tail -n 5 "$tmp/prometheus.log" >&2
  stop_pid "$prompid"
  prompid=
}
start_prometheus

# prom_query EXPR: Prometheus's answer, one line per series (its
# container_name, url and check labels, and its value); nothing when none.
prom_query() {
  curl -fsS --noproxy '*' --max-time 2 -G --data-urlencode "query=$1" \
    "$prom_url/api/v1/query" 2>/dev/null | python3 -c '
import json, sys
res = json.load(sys.stdin).get("data", {}).get("result", [])
for r in sorted(res, key=lambda r: sorted(r["metric"].items())):
    labels = ", ".join("%s=\"%s\"" % kv for kv in sorted(r["metric"].items())
                       if kv[0] in ("container_name", "url", "check"))
    print("     {%s}  %.4f" % (labels, float(r["value"][1])))
' 2>/dev/null || true
}

# ------------------------------------------------------------ moonwatch

say "moonwatch run --docker-host $docker_host --set ecs_agent_url=$agent_url --listen $listen" \
  "for ${secs}s: lists the containers, schedules what their labels and the templates ask for," \
  "flushes every 5 s to the JSON lines, the intake and /metrics"
say "the checks of mwdemo-v2 and mwdemo-auto carry their task's tags (task_arn, task_family," \
  "ecs_cluster_name, ecs_container_name, region, ...); GET /v1/tasks every 2 s (ecs_poll_interval)"
say "beside them the static checks system, moonwatch and runaway: an endless loop that" \
  "its 1 s budget stops (moonwatch.check_status CRITICAL); the others keep their schedule"
# stdout goes to a file too (for the summary); tail copies it to stdout.
# state_dir: where moonwatch keeps the host's boot id once ECS is found
# (for its reboot event); the demo's own, not the host's /var/lib.
DD_API_KEY=mwdemo0000000000000000000000000 DD_DD_URL=$intake_url \
  ./build/moonwatch run --docker-host "$docker_host" --flush-interval 5 \
  --listen "$listen" --sink stdout,datadog \
  --templates-dir deploy/demo/templates --checks-dir deploy/demo/checks \
  --set default_interval=5 --set "ecs_agent_url=$agent_url" --set ecs_poll_interval=2 \
  --set "state_dir=$tmp/state" "${filter[@]}" >"$tmp/out.jsonl" 7>&- &
mwpid=$!
tail -n +1 -f --pid="$mwpid" "$tmp/out.jsonl" &
tailpid=$!
start=$(date +%s)

# Seconds since moonwatch started, for the headers.
elapsed() { echo $(($(date +%s) - start)); }

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

t=$((secs / 5))
at "$t"
say "[+$(elapsed)s] starting mwdemo-job, container job of task mwdemo-batch:1 (ECS labels, listed by the" \
  "agent): sh -c 'sleep 3; exit 3'"
ecs_labels "$batch_arn" mwdemo-batch 1 job
containers+=(mwdemo-job)
mw_docker create --init --network host --name mwdemo-job "${ecs[@]}" "$image" \
  sh -c 'sleep 3; exit 3' >/dev/null
agent_lists "$batch_arn" mwdemo-batch 1 job=mwdemo-job
mw_docker start mwdemo-job >/dev/null

t=$((secs * 2 / 7))
at "$t"
code=$(MW_DOCKER_CMD_TIMEOUT=15 mw_docker wait mwdemo-job) || code=
case $code in
'' | *[!0-9]*)
  echo "demo.sh: mwdemo-job did not exit within 15 s; its task stays RUNNING at the agent" >&2
  ;;
*)
  say "[+$(elapsed)s] mwdemo-job exited with $code: Docker's die event makes an ECS fail" \
    "event (source_type_name amazon_ecs, ecs_event:fail); the agent now lists mwdemo-batch STOPPED"
  agent stop "$batch_arn" job "$code"
  agent status "$batch_arn" STOPPED STOPPED
  ;;
esac

t=$((secs * 3 / 7))
at "$t"
say "[+$(elapsed)s] stopping mwdemo-v1: its die/stop events unschedule its http_check instance"
mw_docker stop -t 2 mwdemo-v1 >/dev/null

t=$((secs * 9 / 14))
at "$t"
say "[+$(elapsed)s] starting mwdemo-late (image $web_image, port 18084): discovered from its" \
  "start event, its checks run at once"
run_web mwdemo-late 18084 "$web_image" --expose 18084

at "$secs"
# Prometheus's answer: up to 30 s (30 tries) for the first scrape that has
# the series.
if [ -n "$prom_url" ]; then
  query=network_http_response_time
  say "[+$(elapsed)s] Prometheus at $prom_url, asked $query (GET /api/v1/query):"
  answer=
  deadline=$((SECONDS + 30))
  for _ in $(seq 1 30); do
    answer=$(prom_query "$query")
    if [ -n "$answer" ] || [ "$SECONDS" -ge "$deadline" ]; then break; fi
    sleep 1
  done
  if [ -n "$answer" ]; then
    echo "$answer" >&2
    echo "     (seconds; a stopped container's last value stays until context_expiry, 300 s)" >&2
  else
    say "Prometheus had no $query within 30 s; its log's last lines:"
    tail -n 5 "$tmp/prometheus.log" >&2
  fi
fi
# moonwatch status, asked now while moonwatch runs; printed at the end.
status_rc=0
./build/moonwatch status --listen "$listen" >"$tmp/status.txt" 2>&1 || status_rc=$?
say "[+$(elapsed)s] stopping moonwatch (SIGINT: a last flush, then exit)"
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

# What ECS added: the task tags on the records of the task containers'
# checks (one sample's shown whole), each container's task and the last
# CPU and memory its docker check sent, the ECS task events, and what
# ecs.agent.up said.
say "what ECS added (the fake agent at $agent_url, the com.amazonaws.ecs.* labels):"
if python3 - "$tmp/out.jsonl" <<'PY' >&2
import json, sys
names = {0: "OK", 1: "WARNING", 2: "CRITICAL", 3: "UNKNOWN"}
ECS_TAGS = ("task_arn", "task_family", "task_version", "task_name", "ecs_cluster_name",
            "cluster_name", "ecs_container_name", "region", "ecs_launch_type")
ctrs, events, agent_up = {}, [], {}
records = tagged = 0
example = None
for line in open(sys.argv[1], encoding="utf-8", errors="replace"):
    try:
        r = json.loads(line)
    except ValueError:
        continue
    records += 1
    tags = r.get("tags") or []
    kv = dict(t.split(":", 1) for t in tags if ":" in t)
    if r.get("type") == "event" and r.get("source_type_name") == "amazon_ecs":
        events.append((kv.get("ecs_event", "?"), r.get("title", ""), r.get("text", ""), kv))
        continue
    if r.get("type") == "service_check" and r.get("check") == "ecs.agent.up":
        s = names.get(r.get("status"), str(r.get("status")))
        agent_up[s] = agent_up.get(s, 0) + 1
        continue
    name = kv.get("container_name")
    if not name or r.get("type") == "event":
        continue
    c = ctrs.setdefault(name, {"task": None, "checks": set(), "cpu": None, "rss": None})
    c["checks"].add((r.get("check_id") or "?").split(":")[0])
    if "task_arn" in kv:
        tagged += 1
        c["task"] = "%s:%s" % (kv.get("task_family"), kv.get("task_version")), \
            kv.get("ecs_container_name", "-")
    if r.get("metric") == "docker.cpu.usage":
        c["cpu"] = r["value"]
    elif r.get("metric") == "docker.mem.rss":
        c["rss"] = r["value"]
        if "task_arn" in kv and (example is None or name == "mwdemo-v2"):
            example = name, sorted((t for t in tags if t.split(":", 1)[0] in ECS_TAGS),
                                   key=lambda t: ECS_TAGS.index(t.split(":", 1)[0]))
print("     %d of the %d records carry a task's tags: those of the checks of its containers" %
      (tagged, records))
if example:
    print("     e.g. docker.mem.rss of %s:" % example[0])
    line = "      "
    for t in example[1]:
        if len(line) + len(t) > 118:
            print(line)
            line = "      "
        line += " " + t
    print(line)
print("     %-12s %-15s %-5s %-38s %-17s %s" % ("container", "task", "as", "checks",
                                               "docker.cpu.usage", "docker.mem.rss"))
for name, c in sorted(ctrs.items(), key=lambda kv: (kv[1]["task"] is None, kv[0])):
    task, as_ = c["task"] if c["task"] else ("(not a task)", "")
    cpu = "-" if c["cpu"] is None else "%.2f %%" % c["cpu"]
    rss = "-" if c["rss"] is None else "%.1f MiB" % (c["rss"] / 1048576)
    print("     %-12s %-15s %-5s %-38s %-17s %s" % (name, task, as_, " ".join(sorted(c["checks"])),
                                                   cpu, rss))
print("     ECS task events (source_type_name amazon_ecs, beside Docker's own): %d" % len(events))
for kind, title, text, kv in events:
    print("       ecs_event:%s  %s" % (kind, title))
    print("         %s" % text)
    print("         tags: task_family:%s ecs_container_name:%s container_name:%s task_arn:...%s" %
          (kv.get("task_family", "-"), kv.get("ecs_container_name", "-"),
           kv.get("container_name", "-"), kv.get("task_arn", "-")[-8:]))
print("     ecs.agent.up (the agent answered GET /v1/tasks): %s" %
      (", ".join("%s %d" % kv for kv in sorted(agent_up.items())) or "never sent"))
PY
then :; else echo "demo.sh: the ECS summary failed (the JSON lines above are complete)" >&2; fi

# What the Datadog sink delivered (the last flush included: moonwatch
# waits for its queue before it exits).
say "what the Datadog intake stand-in at $intake_url received:"
python3 deploy/demo/dd_intake.py summary "$tmp/intake.jsonl" >&2 ||
  echo "demo.sh: the intake summary failed" >&2

say "moonwatch status --listen $listen (asked at +${secs}s, before moonwatch was stopped;" \
  "exit status $status_rc: 0 healthy, 1 failing, 2 no answer):"
sed 's/^/     /' "$tmp/status.txt" >&2
