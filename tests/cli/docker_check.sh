#!/usr/bin/env bash
# `moonwatch check docker` on the fixture cgroup trees, with procfs_path
# and cgroup_root given by --set and by a config file: the keys reach the
# check through the engine; twice, so the CPU percentages and rates of the
# second run are there (0: the fixture's counters do not move). Then a
# container with no cgroup, and ids that are not ids.
set -u
mw=$1
src=$(cd "${2:-$(dirname "$0")/../..}" && pwd)
fix=$src/tests/fixtures/cgroup
a=06ada57c26aa5cf429e9f2c0a99e3e4a42daecd45fc4c955d7c1399ab4227ae8
c=39610bca9443fdb6ae772d781954447c0bb23c05bcb2f08e72d6cc5f70209726
# shellcheck source-path=SCRIPTDIR source=lib/tally.sh
. "$(dirname "$0")/lib/tally.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# The value of METRIC (with TAGS, comma-joined) in the JSON lines on stdin.
value_of() {
  python3 -c 'import json,sys
v=None
for l in sys.stdin:
    try: r=json.loads(l)
    except ValueError: continue
    if r.get("metric")==sys.argv[1] and ",".join(r["tags"])==sys.argv[2]: v=r["value"]
if v is not None: print(v)' "$1" "$2"
}
expect() { # expect OUTPUT METRIC TAGS WANT
  local got
  got=$(echo "$1" | value_of "$2" "$3")
  [ "$got" = "$4" ] && ok || bad "$2{$3} = '$got', want '$4'"
}

run() { # run INSTANCE [ARGS...]
  local inst=$1
  shift
  "$mw" check docker --no-bundled --checks-dir "$src/checks" --set docker=off \
    --log-level error --instance "$inst" "$@"
}

# v1, container A: its process 4321 has an own network namespace
out=$(run "{\"container_id\": \"$a\", \"pid\": 4321, \"tags\": [\"t:1\"]}" --times 2 \
  --set "procfs_path=$fix/v1/proc" --set "cgroup_root=$fix/v1/sys/fs/cgroup")
[ $? -eq 0 ] && ok || bad "docker check on v1 exited non-zero"
t=runtime:docker,t:1
expect "$out" docker.mem.rss "$t" 52428800
expect "$out" docker.mem.cache "$t" 8388608
expect "$out" docker.mem.limit "$t" 268435456
expect "$out" docker.mem.sw_limit "$t" 536870912
expect "$out" docker.mem.in_use "$t" 0.234375
expect "$out" docker.thread.count "$t" 9
expect "$out" docker.cpu.usage "$t" 0
expect "$out" docker.cpu.throttled "$t" 0
expect "$out" docker.io.read_bytes "$t" 0
expect "$out" docker.net.bytes_rcvd "docker_network:eth0,$t" 0
echo "$out" | grep -q '"docker_network:lo' && bad "lo reported" || ok
echo "$out" | grep -q '"check":"moonwatch.check_status","status":0' && ok || bad "no OK status"

# the same keys from a config file; v2, container C, on the host's network
printf 'procfs_path: %s\ncgroup_root: %s\n' "$fix/v2/proc" "$fix/v2/sys/fs/cgroup" >"$tmp/mw.yaml"
out=$(run "{\"container_id\": \"$c\"}" -c "$tmp/mw.yaml")
[ $? -eq 0 ] && ok || bad "docker check on v2 exited non-zero"
expect "$out" docker.mem.rss runtime:docker 41943040
expect "$out" docker.mem.sw_limit runtime:docker 805306368
expect "$out" docker.thread.count runtime:docker 4
echo "$out" | grep -q '"metric":"docker.cpu.usage"' && bad "a percent from one sample" || ok
echo "$out" | grep -q '"metric":"docker.net' && bad "network numbers of the host's network" || ok

# without the keys (no /host/proc here): the host's real /proc and
# cgroups, where the fixture's container is not
if [ ! -e /host/proc ] && [ ! -e /host/sys/fs/cgroup ]; then
  out=$(run "{\"container_id\": \"$c\"}" --times 2 2>/dev/null)
  [ $? -eq 1 ] && ok || bad "a container of the fixture found on the real host"
  echo "$out" | grep -q "no cgroup of container ${c:0:12} under /sys/fs/cgroup" && ok \
    || bad "no 'no cgroup' message: $out"
fi

# a relative path is refused before anything runs
"$mw" check docker --no-bundled --set procfs_path=proc --instance '{}' >/dev/null 2>"$tmp/err"
[ $? -eq 2 ] && ok || bad "relative procfs_path accepted"
grep -q 'procfs_path: expected an absolute path, got "proc"' "$tmp/err" && ok \
  || bad "no message for a relative procfs_path: $(cat "$tmp/err")"

# ids that are not ids: the run fails naming the option
for id in '""' '"%%container_id%%"' "\"${a^^}\"" "\"../../$a\"" 42; do
  out=$(run "{\"container_id\": $id}" --set "cgroup_root=$fix/v1/sys/fs/cgroup" 2>/dev/null)
  [ $? -eq 1 ] && ok || bad "$id: did not exit 1"
  echo "$out" | grep -q "docker.lua:[0-9]*: bad option 'container_id'" && ok \
    || bad "$id: no message naming container_id: $out"
done

tally
