#!/usr/bin/env bash
# Amazon ECS on EC2 against a real, private Docker engine
# (lib/dockerd.sh) and the fake ECS agent program (tests/support,
# strict like the agent's introspection API), on 127.0.0.1:
#   1. a container started with the com.amazonaws.ecs.* labels, as the ECS
#      agent starts task containers, is scheduled at once with every ECS
#      tag and template variable; moonwatch asks the agent about it
#      (?dockerid=) and, once the agent lists it, keeps the very same
#      instance (no reschedule) poll after poll;
#   2. a container without labels that the agent lists gets its identity
#      from the agent; one outside ECS stays unresolved with the reason;
#   3. the agent goes away and comes back: one warning, ecs.agent.up
#      CRITICAL then OK in the JSON lines, the checks keep their tags;
#   4. configcheck --json resolves the same identities;
#   5. task events, each said exactly once (counted after a few more polls
#      and flushes, so that a duplicate would show): a task container that
#      exits 3 gives one `fail` (ecs_event:fail, its task and container
#      tags, the exit code in the text), one restarted in place by its
#      restart policy one `fail` per exit; one killed by the OOM killer
#      (--memory 8m, a shell doubling a string) one `oom` and no `fail`
#      (skipped, with the reason, when the engine cannot limit memory);
#      a task whose two containers exit 0 nothing until the agent lists it
#      STOPPED, then one `terminate`.
#
# usage: ecs.sh MOONWATCH_BINARY (fake_ecs_agent is in the build's tests/)
# MW_IT_KEEP=DIR keeps moonwatch's stdout/stderr and the agent's log.
# Needs root, docker.io and busybox-static, else exits 77 (skipped).
# needs: docker
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib/dockerd.sh
. "$here/lib/dockerd.sh"

# shellcheck source-path=SCRIPTDIR source=lib/harness.sh
. "$here/lib/harness.sh"
mw_harness_binary "${1:-}"
fea=$(dirname "$mw")/tests/fake_ecs_agent
mw_harness_need_docker
[ -x "$fea" ] || { echo "FAIL: $fea not built" >&2; exit 1; }
fix=$(cd "$here/../fixtures/integration" && pwd)

REGION=us-east-1
CLUSTER_ARN=arn:aws:ecs:$REGION:012345678910:cluster/it
arn() { echo "arn:aws:ecs:$REGION:012345678910:task/it/$1"; }

mw_pid='' fea_pid='' tmp='' t_all=$(_mw_now_ms)
js() { python3 "$here/lib/mwjson.py" "$@"; }

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

# ------------------------------------------------------------ the agent

# Commands go to the fake agent's stdin (a FIFO held open on fd 7); its
# answers to its log, one line each.
agent() { # agent COMMAND...: sends it, waits for its answer line
  local n
  n=$(wc -l <"$tmp/fea.out")
  echo "$*" >&7
  for _ in $(seq 50); do
    [ "$(wc -l <"$tmp/fea.out")" -gt "$n" ] && break
    sleep 0.05
  done
  tail -n 1 "$tmp/fea.out"
}
agent_ok() { [ "$(agent "$@")" = ok ]; }
# The requests of one kind the agent answered so far.
agent_count() { agent stats | tr ' ' '\n' | awk -F= -v k="$1" '$1 == k { print $2 }'; }
polls_reach() { [ "$(agent_count tasks)" -ge "$1" ]; }  # polls_reach N
lookups_reach() { [ "$(agent_count task)" -ge "$1" ]; } # lookups_reach N

start_agent() {
  mkfifo "$tmp/fea.in" || return 1
  "$fea" -c "$CLUSTER_ARN" -P "$tmp/fea.port" <"$tmp/fea.in" >"$tmp/fea.out" 2>"$tmp/fea.err" &
  fea_pid=$!
  exec 7>"$tmp/fea.in"
  for _ in $(seq 50); do
    [ -s "$tmp/fea.port" ] && break
    sleep 0.1
  done
  fea_port=$(awk '{ print $2 }' "$tmp/fea.port" 2>/dev/null)
  [ -n "$fea_port" ]
}

# ------------------------------------------------------------ moonwatch

common=(--no-bundled --checks-dir "$fix/checks" --templates-dir "$fix/ecs/templates")

start_moonwatch() {
  "$mw" run "${common[@]}" --docker-host "$DOCKER_HOST" --flush-interval 1 \
    --log-format json --log-level info \
    --set "ecs_agent_url=http://127.0.0.1:$fea_port" --set ecs_poll_interval=0.5 \
    --set "state_dir=$tmp/state" >"$tmp/out" 2>"$tmp/err" </dev/null &
  mw_pid=$!
}

stop_moonwatch() {
  local i
  mw_rc=
  [ -n "$mw_pid" ] || return 0
  kill -INT "$mw_pid" 2>/dev/null
  for ((i = 0; i < 100; i++)); do
    kill -0 "$mw_pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -0 "$mw_pid" 2>/dev/null && { bad "moonwatch still running 10 s after SIGINT"; kill -KILL "$mw_pid"; }
  wait "$mw_pid"
  mw_rc=$?
  mw_pid=
}

cleanup() {
  trap - EXIT INT TERM
  [ -z "$mw_pid" ] || { kill -KILL "$mw_pid" 2>/dev/null; wait "$mw_pid" 2>/dev/null; }
  exec 7>&- # no redirection here: it would stay for the rest of the script
  [ -z "$fea_pid" ] || { kill -TERM "$fea_pid" 2>/dev/null; wait "$fea_pid" 2>/dev/null; }
  if [ "$fail" -gt 0 ] && [ -n "$tmp" ] && [ -f "$tmp/err" ]; then
    echo "--- moonwatch stderr, last 30 lines" >&2
    tail -n 30 "$tmp/err" | cut -c1-240 >&2
  fi
  if [ -n "${MW_IT_KEEP:-}" ] && [ -n "$tmp" ]; then
    # not fea.in: a FIFO with no writer left, cp would wait on it for ever
    mkdir -p "$MW_IT_KEEP" && cp "$tmp"/out "$tmp"/err "$tmp"/fea.out "$tmp"/fea.err "$MW_IT_KEEP"/ 2>/dev/null
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

# ------------------------------------------------- what moonwatch wrote

unresolved_for() { test -n "$(logged warn "%: the container is not part of an ECS task" "docker://$1")"; }
nothing_live() { test -z "$(js live "$tmp/err" 2>/dev/null)"; }
sched_count() { js events "$tmp/err" | awk -v c="$1" '$1 == "S" && $3 == c' | wc -l; }
unsched_count() { js events "$tmp/err" | awk -v c="$1" '$1 == "U" && $3 == c' | wc -l; }
is_live() { js live "$tmp/err" 2>/dev/null | awk -v c="$1" '$2 == c' | grep -q .; }
metric() { js metric "$tmp/out" "$@" >/dev/null; }
# Messages of log lines at LEVEL containing TEXT (from SOURCE, when given).
logged() { # logged LEVEL TEXT [SOURCE]
  python3 - "$tmp/err" "$1" "$2" "${3:-}" <<'PY'
import json, sys
path, level, text, source = sys.argv[1:5]
for line in open(path, errors="replace"):
    try:
        o = json.loads(line)
    except ValueError:
        continue
    if (isinstance(o, dict) and o.get("level") == level and text in str(o.get("msg"))
            and (not source or o.get("source") == source)):
        print(o["msg"])
PY
}
# ecs.agent.up statuses in the order flushed, as one string: "0 0 2 2 0".
agent_up_statuses() {
  python3 - "$tmp/out" <<'PY'
import json, sys
out = []
for line in open(sys.argv[1], errors="replace"):
    try:
        o = json.loads(line)
    except ValueError:
        continue
    if isinstance(o, dict) and o.get("type") == "service_check" and o.get("check") == "ecs.agent.up":
        out.append(str(o.get("status")))
print(" ".join(out))
PY
}
last_agent_up_is() { [ "$(agent_up_statuses | awk '{ print $NF }')" = "$1" ]; }
# An ecs.agent.up CRITICAL whose message holds TEXT was flushed.
agent_down_says() {
  python3 - "$tmp/out" "$1" <<'PY'
import json, sys
for line in open(sys.argv[1], errors="replace"):
    try:
        o = json.loads(line)
    except ValueError:
        continue
    if (isinstance(o, dict) and o.get("check") == "ecs.agent.up" and o.get("status") == 2
            and sys.argv[2] in str(o.get("message"))):
        sys.exit(0)
sys.exit(1)
PY
}
ecs_tags() { # ecs_tags TASK VERSION CONTAINER: the tags every sample of it carries
  echo "task_arn:$(arn "$1")" "task_family:itweb" "task_version:$2" "task_name:itweb" \
    "ecs_cluster_name:it" "cluster_name:it" "ecs_container_name:$3" "region:$REGION" \
    "ecs_launch_type:ec2" "arn:$(arn "$1")" "name:itweb" "role:$3" "url:ecs://it/itweb:$2"
}

# ------------------------------------------------------------ containers

# task_ctr NAME TASK CONTAINER: a container as the ECS agent starts one.
task_ctr() {
  mw_docker run -d --init --network host --name "$1" \
    --label "com.amazonaws.ecs.task-arn=$(arn "$2")" \
    --label "com.amazonaws.ecs.container-name=$3" \
    --label com.amazonaws.ecs.task-definition-family=itweb \
    --label com.amazonaws.ecs.task-definition-version=5 \
    --label "com.amazonaws.ecs.cluster=$CLUSTER_ARN" \
    mwecs:1 sleep 600
}
plain_ctr() { mw_docker run -d --init --network host --name "$1" mwecs:1 sleep 600; }
# job_ctr NAME TASK CONTAINER FAMILY VERSION [OPTION...] IMAGE COMMAND...:
# a task container created, not started, as the ECS agent creates one
# (the agent knows its id before it starts); its id in $cid.
job_ctr() {
  local name=$1 task=$2 cname=$3 family=$4 version=$5
  shift 5
  jobs_made+=("$name")
  cid=$(mw_docker create --init --network host --name "$name" \
    --label "com.amazonaws.ecs.task-arn=$(arn "$task")" \
    --label "com.amazonaws.ecs.container-name=$cname" \
    --label "com.amazonaws.ecs.task-definition-family=$family" \
    --label "com.amazonaws.ecs.task-definition-version=$version" \
    --label "com.amazonaws.ecs.cluster=$CLUSTER_ARN" "$@")
}
jobs_made=() cid=
# exited_with NAME CODE: the container has exited with CODE.
exited_with() { [ "$(mw_docker inspect -f '{{.State.Status}} {{.State.ExitCode}}' "$1" 2>/dev/null)" = "exited $2" ]; }
has_exited() { [ "$(mw_docker inspect -f '{{.State.Status}}' "$1" 2>/dev/null)" = exited ]; }
# exited_after NAME N: exited for good after N restarts by its restart policy.
exited_after() { [ "$(mw_docker inspect -f '{{.State.Status}} {{.RestartCount}}' "$1" 2>/dev/null)" = "exited $2" ]; }

# ------------------------------------------------------------ task events

# The ECS events flushed for task TASK (of kind KIND, or any: -), with
# every further TAG: "kind<TAB>title<TAB>text<TAB>tags" lines.
task_events() { # task_events KIND|- TASK [TAG...]
  local kind=$1 task=$2
  shift 2
  [ "$kind" = - ] || set -- "ecs_event:$kind" "$@"
  js ecs_events "$tmp/out" "task_arn:$(arn "$task")" "$@"
}
events_n() { task_events "$@" | wc -l; }
events_reach() { [ "$(events_n "${@:2}")" -ge "$1" ]; } # events_reach N KIND TASK
# One line per event of task TASK, as "kind" words: "fail", "oom terminate".
event_kinds() { task_events - "$1" | cut -f1 | tr '\n' ' ' | sed 's/ $//'; }
# The agent lists TASK (FAMILY VERSION) RUNNING with CONTAINER=CID...,
# and moonwatch polled it twice since.
agent_runs() { # agent_runs TASK FAMILY VERSION NAME=CID...
  local task=$1 family=$2 version=$3 pair n
  shift 3
  agent_ok task "$(arn "$task")" "$family" "$version" RUNNING RUNNING || return 1
  for pair in "$@"; do
    agent_ok container "$(arn "$task")" "${pair%%=*}" "${pair#*=}" || return 1
  done
  n=$(agent_count tasks)
  wait_for "moonwatch polled task $task RUNNING" 10 polls_reach $((n + 2))
}
# The agent lists TASK STOPPED, container NAME with exit code CODE...
agent_stops() { # agent_stops TASK NAME=CODE...
  local task=$1 pair
  shift
  for pair in "$@"; do
    agent_ok stop "$(arn "$task")" "${pair%%=*}" "${pair#*=}" || return 1
  done
  agent_ok status "$(arn "$task")" STOPPED STOPPED
}
# A few more polls and flushes: time enough for a duplicate to show.
settle() {
  local n
  n=$(agent_count tasks)
  wait_for "four more polls" 15 polls_reach $((n + 4))
  sleep 1.5 # one more flush (--flush-interval 1)
}

# ================================================================= setup
tmp=$(mktemp -d /tmp/mw-ecs.XXXXXX) || die "mktemp"
mw_dockerd_start "$tmp/e" || die "engine start"
ok "engine ready in ${MW_DOCKERD_READY_MS} ms"
mw_dockerd_image mwecs:1 || die "image import"
start_agent || die "fake ECS agent did not start"
ok "fake ECS agent on 127.0.0.1:$fea_port"
start_moonwatch
wait_for "moonwatch asked the agent's metadata and tasks" 15 polls_reach 1

# ======================================= 1. labels first, the agent agrees
echo "== 1. a task container: its labels, then the agent"
c1=$(task_ctr web-1 t1 web) || die "docker run web-1"
wait_for "web-1 scheduled" 15 is_live "$c1"
# shellcheck disable=SC2046 # one tag per word
wait_for "web-1: probe.run with every ECS tag and variable" 15 \
  metric probe.run "container_id:$c1" $(ecs_tags t1 5 web)
wait_for "moonwatch asked the agent about web-1 (?dockerid=)" 10 lookups_reach 1
check "that was GET /v1/tasks?dockerid=<web-1's id>, 404: the agent did not list it yet" \
  test "$(agent last task)" = "404 GET /v1/tasks?dockerid=$c1"
check "agent: task t1" agent_ok task "$(arn t1)" itweb 5 RUNNING RUNNING
check "agent: web-1 in task t1" agent_ok container "$(arn t1)" web "$c1" ecs-itweb-5-web
n_polls=$(agent_count tasks)
wait_for "four more polls" 15 polls_reach $((n_polls + 4))
check "web-1 scheduled once, never again (the agent said what the labels said)" \
  test "$(sched_count "$c1")" -eq 1 -a "$(unsched_count "$c1")" -eq 0
from=$(($(wc -l <"$tmp/out") + 1))
# shellcheck disable=SC2046
wait_for "web-1: new samples still carry the same tags" 10 \
  metric probe.run --from "$from" "container_id:$c1" $(ecs_tags t1 5 web)

# =========================================== 2. the agent only; outside ECS
echo "== 2. a container only the agent knows; one outside ECS"
c2=$(plain_ctr web-2) || die "docker run web-2"
c3=$(plain_ctr web-3) || die "docker run web-3"
wait_for "web-2 unresolved before the agent lists it" 10 unresolved_for "$c2"
check "agent: task t2 with web-2" agent_ok task "$(arn t2)" itweb 5 RUNNING RUNNING
check "agent: web-2 in task t2" agent_ok container "$(arn t2)" api "$c2"
wait_for "web-2 scheduled with the agent's identity" 15 is_live "$c2"
# shellcheck disable=SC2046
wait_for "web-2: probe.run with the ECS tags (cluster from /v1/metadata)" 15 \
  metric probe.run "container_id:$c2" $(ecs_tags t2 5 api)
check "web-3 (outside ECS) not scheduled" test "$(sched_count "$c3")" -eq 0
check "web-3: unresolved, the ECS variable named with the reason" unresolved_for "$c3"

# ====================================================== 3. the agent away
echo "== 3. the agent goes away and comes back"
wait_for "ecs.agent.up OK in the JSON lines" 10 last_agent_up_is 0
check "agent down" agent_ok down
wait_for "ecs.agent.up CRITICAL" 15 last_agent_up_is 2
check "... with the reason" agent_down_says "connect to 127.0.0.1:$fea_port: Connection refused"
sleep 3 # polls fail meanwhile
check "one warning for the outage" test "$(logged warn "ECS agent at http://127.0.0.1:$fea_port" | wc -l)" -eq 1
from=$(($(wc -l <"$tmp/out") + 1))
# shellcheck disable=SC2046
wait_for "web-1 keeps reporting with its ECS tags meanwhile" 10 \
  metric probe.run --from "$from" "container_id:$c1" $(ecs_tags t1 5 web)
check "agent up" agent_ok up
wait_for "ecs.agent.up OK again" 30 last_agent_up_is 0
check "the log says the outage ended" test -n "$(logged info "answers again after")"
check "web-1 and web-2 still scheduled once each" \
  test "$(sched_count "$c1")" -eq 1 -a "$(sched_count "$c2")" -eq 1
echo "   ecs.agent.up statuses: $(agent_up_statuses)"

# ========================================================= 4. configcheck
echo "== 4. configcheck --json"
if timeout 60 "$mw" configcheck --json "${common[@]}" --docker-host "$DOCKER_HOST" \
  --set "ecs_agent_url=http://127.0.0.1:$fea_port" >"$tmp/cc.json" 2>"$tmp/cc.err" &&
  js configcheck "$tmp/cc.json" >"$tmp/cc.txt"; then
  ok "configcheck --json"
  for pair in "$c1 t1 web" "$c2 t2 api"; do
    read -r cid task name <<<"$pair"
    line=$(awk -v s="docker://$cid" '$1 == "R" && $2 == s' "$tmp/cc.txt")
    case $line in
    *"\"task_arn:$(arn "$task")\""*"\"url\":\"ecs://it/itweb:5\""*) ok "configcheck: $name resolved from ECS" ;;
    *) bad "configcheck: $name: $line" ;;
    esac
  done
  u=$(awk -v s="docker://$c3" '$1 == "U" && $2 == s' "$tmp/cc.txt")
  case $u in *"%%: the container is not part of an ECS task"*) ok "configcheck: web-3 unresolved, with the reason" ;; *) bad "configcheck: web-3: $u" ;; esac
else
  bad "configcheck failed: $(head -c 300 "$tmp/cc.err")"
fi

# ========================================================== 5. task events
echo "== 5. task events: a container exits 3, one is OOM-killed, a task stops cleanly"
echo "-- fail: job-4 of task t4 runs sh -c 'sleep 2; exit 3'"
job_ctr job-4 t4 job itjob 2 mwecs:1 sh -c 'sleep 2; exit 3' || die "docker create job-4"
c4=$cid
agent_runs t4 itjob 2 "job=$c4" || die "agent: task t4"
mw_docker start job-4 >/dev/null || die "docker start job-4"
wait_for "job-4 exited with 3" 20 exited_with job-4 3
wait_for "a fail event for task t4" 10 events_reach 1 fail t4
check "agent: t4 STOPPED, job exited 3" agent_stops t4 job=3
settle
check "task t4: exactly one event, a fail (got: $(event_kinds t4))" test "$(event_kinds t4)" = fail
check "... with the task's and the container's tags" test "$(events_n fail t4 \
  "container_id:$c4" container_name:job-4 ecs_container_name:job task_family:itjob \
  task_version:2 task_name:itjob ecs_cluster_name:it cluster_name:it "region:$REGION" \
  ecs_launch_type:ec2)" -eq 1
check "... and the exit code in its title and text" \
  grep -q "exited with 3	.*exited with code 3\." <<<"$(task_events fail t4)"
echo "   $(task_events fail t4 | cut -f2,3)"

echo "-- a fail per exit: retry-7 of task t7, --restart on-failure:2, sh -c 'sleep 1; exit 3'"
job_ctr retry-7 t7 retry itretry 1 --restart on-failure:2 mwecs:1 sh -c 'sleep 1; exit 3' ||
  die "docker create retry-7"
c7=$cid
agent_runs t7 itretry 1 "retry=$c7" || die "agent: task t7"
mw_docker start retry-7 >/dev/null || die "docker start retry-7"
wait_for "retry-7 exited 3 times, restarted in place twice" 30 exited_after retry-7 2
wait_for "three fail events for task t7" 10 events_reach 3 fail t7
settle
check "task t7: exactly three events, one fail per exit (got: $(event_kinds t7))" \
  test "$(event_kinds t7)" = "fail fail fail"
check "... each for retry-7, exit code 3" test "$(events_n fail t7 "container_id:$c7" \
  ecs_container_name:retry)" -eq 3 -a "$(task_events fail t7 | cut -f3 | grep -c 'exited with code 3\.')" -eq 3

echo "-- oom: hog-5 of task t5, --memory 8m, doubles a string until killed"
if [ "$(mw_docker info --format '{{.MemoryLimit}}' 2>/dev/null)" != true ]; then
  echo "SKIP (oom): the engine has no memory limit support (docker info: MemoryLimit false)"
else
  # shellcheck disable=SC2016 # expanded by the container's shell
  job_ctr hog-5 t5 hog ithog 1 --memory 8m mwecs:1 sh -c 'x=a; while :; do x=$x$x; done' ||
    die "docker create hog-5"
  c5=$cid
  agent_runs t5 ithog 1 "hog=$c5" || die "agent: task t5"
  mw_docker start hog-5 >/dev/null || die "docker start hog-5"
  wait_for "hog-5 exited" 30 has_exited hog-5
  st=$(mw_docker inspect -f '{{.State.OOMKilled}} {{.State.ExitCode}}' hog-5)
  if [ "${st%% *}" != true ]; then
    echo "SKIP (oom): the engine did not OOM-kill hog-5 under an 8 MiB limit (OOMKilled, exit code: $st)"
  else
    ok "hog-5 killed by the OOM killer (exit code ${st#* })"
    wait_for "an oom event for task t5" 10 events_reach 1 oom t5
    check "agent: t5 STOPPED, hog exited ${st#* }" agent_stops t5 "hog=${st#* }"
    settle
    check "task t5: exactly one event, an oom, no fail (got: $(event_kinds t5))" \
      test "$(event_kinds t5)" = oom
    check "... with the task's and the container's tags" test "$(events_n oom t5 \
      "container_id:$c5" container_name:hog-5 ecs_container_name:hog task_family:ithog \
      task_version:1 ecs_cluster_name:it "region:$REGION")" -eq 1
    check "... and the exit code in its text" \
      grep -q "(exit code ${st#* })" <<<"$(task_events oom t5 | cut -f3)"
    echo "   $(task_events oom t5 | cut -f2,3)"
  fi
fi

echo "-- terminate: task t6, containers main and sidecar, both exit 0"
job_ctr once-6a t6 main itonce 3 mwecs:1 sh -c 'sleep 1' || die "docker create once-6a"
c6a=$cid
job_ctr once-6b t6 sidecar itonce 3 mwecs:1 sh -c 'sleep 2' || die "docker create once-6b"
c6b=$cid
agent_runs t6 itonce 3 "main=$c6a" "sidecar=$c6b" || die "agent: task t6"
mw_docker start once-6a once-6b >/dev/null || die "docker start once-6a once-6b"
wait_for "once-6a and once-6b exited with 0" 20 eval 'exited_with once-6a 0 && exited_with once-6b 0'
settle
check "task t6: no event while the agent still lists it RUNNING (got: $(event_kinds t6))" \
  test -z "$(event_kinds t6)"
check "agent: t6 STOPPED, both exited 0" agent_stops t6 main=0 sidecar=0
wait_for "a terminate event for task t6" 10 events_reach 1 terminate t6
settle
check "task t6: exactly one event, a terminate (got: $(event_kinds t6))" \
  test "$(event_kinds t6)" = terminate
check "... with the task's tags and both containers" test "$(events_n terminate t6 \
  task_family:itonce task_version:3 ecs_cluster_name:it "region:$REGION" \
  ecs_container_name:main ecs_container_name:sidecar)" -eq 1
echo "   $(task_events terminate t6 | cut -f2,3)"

# ================================================================ the end
mw_docker rm -f web-1 web-2 web-3 "${jobs_made[@]}" >/dev/null || bad "docker rm"
wait_for "nothing scheduled once the containers are gone" 15 nothing_live
stop_moonwatch
check "moonwatch exits 0 on SIGINT (rc=$mw_rc)" [ "$mw_rc" = 0 ]
check "stdout is JSON lines" js alljson "$tmp/out"
check "no error line in the log" not grep -q '"level":"error"' "$tmp/err"
check "every command to the agent was accepted" not grep -q "^error" "$tmp/fea.out"
