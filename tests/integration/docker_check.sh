#!/usr/bin/env bash
# The bundled `docker` check against a real, private Docker engine
# (lib/dockerd.sh), its numbers compared with what the kernel's cgroup files
# say for each container:
#   1. `moonwatch run` with the bundled templates gives every discovered
#      container a docker instance (templates/docker.d/auto_conf.yaml,
#      _any_container), with the container's tags; none for a container
#      left out by container_exclude or whose labels turn file templates
#      off; then, for each container, docker.mem.limit, docker.mem.sw_limit
#      and docker.thread.count equal its cgroup files, docker.mem.rss and
#      docker.mem.cache are within a few pages of them, the CPU percent of
#      a container capped at half a core is what its cgroup's CPU time says
#      over the same time, and it is throttled; no network metric for
#      containers on the host's network;
#   2. `moonwatch check docker` once reports no CPU percent (one sample),
#      twice reports one;
#   3. a container that stops: its instance goes, its metrics stop; the
#      container counts per image (docker.containers.running / .stopped and
#      their totals) equal what `docker ps -a` says, the excluded container
#      counted too.
#
# usage: docker_check.sh MOONWATCH_BINARY
# Needs root, docker.io and busybox-static, else exits 77 (skipped). The
# containers run on the host's network (no bridge here) or none.
# MW_IT_KEEP=DIR keeps moonwatch's stdout and stderr in DIR.
# needs: docker
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib/dockerd.sh
. "$here/lib/dockerd.sh"

# shellcheck source-path=SCRIPTDIR source=lib/harness.sh
. "$here/lib/harness.sh"
mw_harness_binary "${1:-}"
mw_harness_need_docker

mw_pid='' tmp='' t_all=$(_mw_now_ms)

cleanup() {
  trap - EXIT INT TERM
  if [ -n "$mw_pid" ]; then
    kill -KILL "$mw_pid" 2>/dev/null
    wait "$mw_pid" 2>/dev/null
  fi
  if [ "$fail" -gt 0 ] && [ -n "$tmp" ] && [ -f "$tmp/err" ]; then
    echo "--- moonwatch stderr, last 30 lines" >&2
    tail -n 30 "$tmp/err" >&2
  fi
  if [ -n "${MW_IT_KEEP:-}" ] && [ -n "$tmp" ]; then
    mkdir -p "$MW_IT_KEEP" && cp "$tmp"/out "$tmp"/err "$MW_IT_KEEP"/ 2>/dev/null
  fi
  mw_dockerd_stop || bad "engine cleanup"
  [ -z "$tmp" ] || rm -rf "$tmp"
  echo "whole test: $(($(_mw_now_ms) - t_all)) ms"
  echo "$pass passed, $fail failed"
  [ "$fail" -eq 0 ] && exit 0
  exit 1
}
trap cleanup EXIT
trap 'bad interrupted; exit 1' INT TERM

tmp=$(mktemp -d /tmp/mw-dockercheck.XXXXXX) || die "mktemp"
mw_dockerd_start "$tmp/e" || die "cannot start the private engine"
mw_dockerd_image mwdc:1 || die "cannot import the busybox image"

# ------------------------------------------------------------ the kernel's numbers

cg_v2=0
[ -e /sys/fs/cgroup/cgroup.controllers ] && cg_v2=1

# The directory of CONTROLLER's cgroup of process PID, as /proc/PID/cgroup
# says (v2: the one hierarchy).
cg_dir() { # cg_dir PID CONTROLLER
  local path
  if [ "$cg_v2" = 1 ]; then
    path=$(awk -F: '$1 == "0" { print $3 }' "/proc/$1/cgroup")
    echo "/sys/fs/cgroup$path"
  else
    path=$(awk -F: -v c="$2" '{ n = split($2, a, ","); for (i = 1; i <= n; i++) if (a[i] == c) print $3 }' \
      "/proc/$1/cgroup")
    echo "/sys/fs/cgroup/$2$path"
  fi
}
stat_of() { awk -v k="$2" '$1 == k { print $2 }' "$1"; } # stat_of FILE KEY
num() { cat "$1" 2>/dev/null; }

# What the kernel says for container pid PID: "limit sw_limit threads rss cache cpu_ns".
kernel() { # kernel PID
  local m c p limit swl rss cache cpu
  m=$(cg_dir "$1" memory) c=$(cg_dir "$1" cpuacct) p=$(cg_dir "$1" pids)
  if [ "$cg_v2" = 1 ]; then
    limit=$(num "$m/memory.max") rss=$(stat_of "$m/memory.stat" anon)
    cache=$(stat_of "$m/memory.stat" file)
    swl=$(($(num "$m/memory.max") + $(num "$m/memory.swap.max")))
    cpu=$(($(stat_of "$m/cpu.stat" usage_usec) * 1000))
  else
    limit=$(num "$m/memory.limit_in_bytes") swl=$(num "$m/memory.memsw.limit_in_bytes")
    rss=$(stat_of "$m/memory.stat" total_rss) cache=$(stat_of "$m/memory.stat" total_cache)
    cpu=$(num "$c/cpuacct.usage")
  fi
  echo "$limit ${swl:--} $(num "$p/pids.current") $rss $cache $cpu"
}

# ------------------------------------------------------------ moonwatch's numbers

# Every sample of METRIC for container CID in $tmp/out, one value a line,
# in order (the first flushes first).
values() { # values METRIC CID
  python3 - "$tmp/out" "$1" "container_id:$2" <<'PY'
import json, sys
for line in open(sys.argv[1], errors="replace"):
    try:
        r = json.loads(line)
    except ValueError:
        continue
    if isinstance(r, dict) and r.get("metric") == sys.argv[2] and sys.argv[3] in r.get("tags", []):
        print(r["value"])
PY
}
last() { values "$1" "$2" | tail -n 1; }
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)] }'; }
near() { # near A B TOLERANCE: |A - B| <= TOLERANCE
  python3 -c 'import sys; a, b, t = map(float, sys.argv[1:]); sys.exit(0 if abs(a - b) <= t else 1)' \
    "${1:-nan}" "${2:-nan}" "$3" 2>/dev/null
}
above() { python3 -c 'import sys; sys.exit(0 if float(sys.argv[1]) > float(sys.argv[2]) else 1)' "${1:-nan}" "$2" 2>/dev/null; }
tags_of() { # tags_of METRIC CID: the tags of its last sample, one a line
  python3 - "$tmp/out" "$1" "container_id:$2" <<'PY'
import json, sys
tags = []
for line in open(sys.argv[1], errors="replace"):
    try:
        r = json.loads(line)
    except ValueError:
        continue
    if isinstance(r, dict) and r.get("metric") == sys.argv[2] and sys.argv[3] in r.get("tags", []):
        tags = r["tags"]
print("\n".join(tags))
PY
}

# ------------------------------------------------------------ 1. every container

run_ctr() { # run_ctr NAME ARGS... -- COMMAND...
  local name=$1
  shift
  mw_docker run -d --init --name "$name" "$@" >/dev/null || die "cannot start $name"
  mw_docker inspect -f '{{.Id}} {{.State.Pid}}' "$name"
}
read -r busy_id busy_pid < <(run_ctr mwdc-busy --network host --cpus 0.5 --memory 64m \
  mwdc:1 sh -c 'while :; do :; done')
read -r idle_id idle_pid < <(run_ctr mwdc-idle --network none --memory 32m --memory-swap 48m \
  mwdc:1 sh -c 'sleep 1000 & sleep 1000 & wait')
read -r excl_id _ < <(run_ctr mwdc-excluded --network host mwdc:1 sleep 1000)
read -r off_id _ < <(run_ctr mwdc-off --network host \
  --label 'com.datadoghq.ad.check_names=[]' mwdc:1 sleep 1000)

cpu0=$(kernel "$busy_pid" | awk '{ print $6 }') t0=$(_mw_now_ms)
"$mw" run --docker-host "$DOCKER_HOST" --flush-interval 1 --set default_interval=1 \
  --set container_exclude=name:mwdc-excluded --log-format json --log-level info \
  >"$tmp/out" 2>"$tmp/err" </dev/null &
mw_pid=$!
sleep 8
cpu1=$(kernel "$busy_pid" | awk '{ print $6 }') t1=$(_mw_now_ms)
read -r idle_k < <(kernel "$idle_pid")
read -r busy_k < <(kernel "$busy_pid")
sleep 1.5

for c in "$busy_id" "$idle_id"; do
  check "container ${c:0:12} reports docker.mem.rss" [ -n "$(last docker.mem.rss "$c")" ]
done
check "no docker metric for the container_exclude'd container" [ -z "$(last docker.mem.rss "$excl_id")" ]
check "no docker metric for the container with check_names: []" [ -z "$(last docker.mem.rss "$off_id")" ]
tags=$(tags_of docker.mem.rss "$busy_id")
for t in container_name:mwdc-busy short_image:mwdc image_tag:1 runtime:docker; do
  check "docker.mem.rss carries $t" grep -qx "$t" <<<"$tags"
done

# Limits and threads: exact; memory in use: within 64 pages of the files
# read a moment apart.
compare() { # compare NAME CID KERNEL-LINE
  local c=$1 id=$2 limit swl threads rss cache
  read -r limit swl threads rss cache _ <<<"$3"
  check "$c: docker.mem.limit = the cgroup's limit ($limit)" near "$(last docker.mem.limit "$id")" "$limit" 0
  if [ "$swl" != - ]; then
    check "$c: docker.mem.sw_limit = the cgroup's memory + swap limit ($swl)" \
      near "$(last docker.mem.sw_limit "$id")" "$swl" 0
  fi
  check "$c: docker.thread.count = pids.current ($threads)" near "$(last docker.thread.count "$id")" "$threads" 0
  check "$c: docker.mem.rss $(last docker.mem.rss "$id") within 256 KiB of the cgroup's ($rss)" \
    near "$(last docker.mem.rss "$id")" "$rss" 262144
  check "$c: docker.mem.cache $(last docker.mem.cache "$id") within 256 KiB of the cgroup's ($cache)" \
    near "$(last docker.mem.cache "$id")" "$cache" 262144
  check "$c: docker.mem.in_use is a fraction" python3 -c \
    'import sys; v = float(sys.argv[1]); sys.exit(0 if 0 < v < 1 else 1)' "$(last docker.mem.in_use "$id")"
}
compare busy "$busy_id" "$busy_k"
compare idle "$idle_id" "$idle_k"
check "idle: sw_limit of --memory 32m --memory-swap 48m is 48 MiB" \
  near "$(last docker.mem.sw_limit "$idle_id")" 50331648 0

# CPU: the busy container is capped at half a core
want=$(python3 -c 'import sys; print(100 * (int(sys.argv[2]) - int(sys.argv[1])) / ((int(sys.argv[4]) - int(sys.argv[3])) * 1e6))' \
  "$cpu0" "$cpu1" "$t0" "$t1")
got=$(values docker.cpu.usage "$busy_id" | median)
echo "   busy: docker.cpu.usage median $got, the cgroup's CPU time over the run says $want"
check "busy: docker.cpu.usage ($got) within 10 points of the cgroup's own count ($want)" near "$got" "$want" 10
check "busy: docker.cpu.usage ($got) is about half a core" near "$got" 50 15
user=$(last docker.cpu.user "$busy_id") sys=$(last docker.cpu.system "$busy_id")
check "busy: docker.cpu.user + docker.cpu.system ($user + $sys) about docker.cpu.usage" \
  near "$(python3 -c "print(${user:-0} + ${sys:-0})")" "$(last docker.cpu.usage "$busy_id")" 20
check "busy: docker.cpu.throttled > 0 (it wants a whole core)" above "$(last docker.cpu.throttled "$busy_id")" 0
check "busy: docker.cpu.throttled.time > 0" above "$(last docker.cpu.throttled.time "$busy_id")" 0
check "idle: docker.cpu.usage under 5" near "$(values docker.cpu.usage "$idle_id" | median)" 0 5
check "docker.io.read_bytes is sent" [ -n "$(last docker.io.read_bytes "$busy_id")" ]
check "no docker.net.* for containers on the host's network" \
  [ -z "$(values docker.net.bytes_rcvd "$busy_id")" ]
# That the first sample has no percent is asserted below, with `moonwatch
# check` (one run, then two): counting flushes here depends on whether
# the first two runs land in one flush interval, which a loaded machine
# decides.

# ------------------------------------------------------------ 3. a container stops

n_rss=$(values docker.mem.rss "$busy_id" | wc -l)
mw_docker stop -t 1 mwdc-idle >/dev/null || bad "cannot stop mwdc-idle"
sleep 2.5
n_before=$(values docker.mem.rss "$idle_id" | wc -l)
sleep 2.5
check "a stopped container's docker metrics stop ($n_before, then $(values docker.mem.rss "$idle_id" | wc -l))" \
  [ "$(values docker.mem.rss "$idle_id" | wc -l)" -eq "$n_before" ]
check "busy still reports" [ "$(values docker.mem.rss "$busy_id" | wc -l)" -gt "$n_rss" ]
check "the stopped container's docker instance is unscheduled" \
  grep -q "unscheduled: docker://$idle_id" "$tmp/err"

# The container counts (discovery lists every container every 15 s):
# once a list made after the stop is flushed, they are what `docker ps
# -a` says, the container_exclude'd container counted too, as Datadog
# counts it. A count from before the stop differs (4 running, no stopped
# gauge), so waiting for the match is bounded, not timed.
gauge() { # gauge METRIC TAG: the last value of METRIC with TAG ("": untagged)
  python3 - "$tmp/out" "$1" "$2" <<'PY'
import json, sys
v = ""
for line in open(sys.argv[1], errors="replace"):
    try:
        r = json.loads(line)
    except ValueError:
        continue
    if not isinstance(r, dict) or r.get("metric") != sys.argv[2]:
        continue
    tags = r.get("tags") or []
    if (sys.argv[3] in tags) if sys.argv[3] else not tags:
        v = "%d" % r["value"]
print(v)
PY
}
want_run=$(mw_docker ps -q | wc -l) want_all=$(mw_docker ps -aq | wc -l)
want_stop=$((want_all - want_run))
counted() {
  [ "$(gauge docker.containers.running docker_image:mwdc:1)" = "$want_run" ] &&
    [ "$(gauge docker.containers.stopped docker_image:mwdc:1)" = "$want_stop" ]
}
deadline=$(($(_mw_now_ms) + 45000))
until counted || [ "$(_mw_now_ms)" -ge "$deadline" ]; do sleep 0.5; done
check "docker.containers.running{docker_image:mwdc:1} = docker ps ($want_run), stopped = $want_stop" counted
check "docker.containers.running.total = docker ps ($want_run)" \
  [ "$(gauge docker.containers.running.total "")" = "$want_run" ]
check "docker.containers.stopped.total = docker ps -a minus docker ps ($want_stop)" \
  [ "$(gauge docker.containers.stopped.total "")" = "$want_stop" ]
count_tags=$(python3 - "$tmp/out" <<'PY'
import json, sys
tags = []
for line in open(sys.argv[1], errors="replace"):
    try:
        r = json.loads(line)
    except ValueError:
        continue
    if isinstance(r, dict) and r.get("metric") == "docker.containers.running" and r.get("tags"):
        tags = r["tags"]
print("\n".join(tags))
PY
)
for t in docker_image:mwdc:1 image_name:mwdc short_image:mwdc image_tag:1; do
  check "docker.containers.running carries $t" grep -qx "$t" <<<"$count_tags"
done
check "docker.containers.running carries only the image's tags" [ "$(wc -l <<<"$count_tags")" -eq 4 ]
kill -INT "$mw_pid"
wait "$mw_pid"
check "moonwatch exits 0" [ $? -eq 0 ]
mw_pid=
errors=$(grep '"level":"error"' "$tmp/err" | head -n 3)
check "no error in the log${errors:+: $errors}" [ -z "$errors" ]

# ------------------------------------------------------------ 2. moonwatch check

one=$("$mw" check docker --no-bundled --checks-dir "$here/../../checks" --set docker=off \
  --log-level error --instance "{\"container_id\": \"$busy_id\", \"pid\": $busy_pid}")
check "check docker: exits 0" [ $? -eq 0 ]
check "check docker once: docker.mem.rss" grep -q '"metric":"docker.mem.rss"' <<<"$one"
check "check docker once: no CPU percent from one sample" not grep -q '"metric":"docker.cpu' <<<"$one"
two=$("$mw" check docker --no-bundled --checks-dir "$here/../../checks" --set docker=off \
  --log-level error --times 2 --instance "{\"container_id\": \"$busy_id\"}")
pct=$(python3 -c 'import json, sys
for l in sys.stdin:
    r = json.loads(l)
    if r.get("metric") == "docker.cpu.usage": print(r["value"])' <<<"$two")
check "check docker twice: docker.cpu.usage ($pct) about half a core" near "$pct" 50 20
