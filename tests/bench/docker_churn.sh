#!/usr/bin/env bash
# Churn on a real Docker engine: a private engine (tests/integration/
# lib/dockerd.sh), moonwatch run against it, and RATE `docker run` plus RATE
# `docker rm -f` a second for SECONDS (defaults 5 and 40), each container
# living about one second. Prints moonwatch's RSS as it goes, how long
# after the churn its scheduled containers equal `docker ps`, and the
# warnings and errors it logged. Figures only; nothing is asserted.
# Usage: docker_churn.sh MOONWATCH_BINARY [SECONDS] [RATE]
set -uo pipefail
# Loopback only: on a host whose firmware says EC2, moonwatch would ask the
# instance metadata service (169.254.169.254) for its host name.
export AWS_EC2_METADATA_DISABLED=true
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=../integration/lib/dockerd.sh
. "$here/../integration/lib/dockerd.sh"
mw=$1
secs=${2:-40}
rate=${3:-5}
d=$(mktemp -d /tmp/mwchurn.XXXXXX)
mwpid=
cleanup() {
  [ -n "$mwpid" ] && kill "$mwpid" 2>/dev/null && wait "$mwpid" 2>/dev/null
  mw_dockerd_stop >/dev/null 2>&1
  rm -rf "$d"
}
trap cleanup EXIT
mw_dockerd_start "$d/e" >/dev/null
mw_dockerd_image busybox-mw:1 >/dev/null
mkdir -p "$d/c" "$d/t/churn.d"
printf 'return { run = function(self) mw.gauge("churn.port", self.instance.port) end }\n' \
  > "$d/c/churn.lua"
printf 'ad_identifiers: [busybox-mw]\ninstances:\n  - port: "%%%%port%%%%"\n' \
  > "$d/t/churn.d/auto_conf.yaml"
"$mw" run --no-bundled --checks-dir "$d/c" --templates-dir "$d/t" \
  --docker-host "unix://$d/e/docker.sock" --sink none --log-level info 2>"$d/log" &
mwpid=$!
sleep 1
rss() { awk '/VmRSS/{print $2}' "/proc/$mwpid/status"; }
live() {
  echo $(($(grep -c "scheduled for docker" "$d/log") - $(grep -c "unscheduled: docker" "$d/log")))
}
echo "churn: $rate starts + $rate removals a second for ${secs}s; moonwatch RSS $(rss) kB at start"
gap=$(awk "BEGIN { print 1 / $rate }")
end=$(($(date +%s) + secs))
i=0
while [ "$(date +%s)" -lt "$end" ]; do
  i=$((i + 1))
  mw_docker run -d --network host --init --expose $((20000 + i % 1000)) --name churn$i \
    busybox-mw:1 sleep 3600 >/dev/null 2>&1 &
  [ $i -gt "$rate" ] && mw_docker rm -f churn$((i - rate)) >/dev/null 2>&1 &
  sleep "$gap"
  [ $((i % (rate * 10))) -eq 0 ] && echo "  $((i / rate)) s: RSS $(rss) kB, $(live) instances"
done
echo "churn over after $i containers; waiting for the docker commands still running"
for _ in $(seq 1 240); do # at most 120 s: an overloaded engine lags far behind
  pgrep -f "docker -H unix://$d/e/docker.sock" >/dev/null || break
  sleep 0.5
done
t0=$(date +%s%N)
for _ in $(seq 1 120); do
  n=$(mw_docker ps -q | grep -c .)
  [ "$n" -eq "$(live)" ] && break
  sleep 0.5
done
t1=$(date +%s%N)
echo "docker ps $n, moonwatch $(live) instances; equal $(((t1 - t0) / 1000000)) ms after the last command"
echo "moonwatch RSS $(rss) kB at the end; $(grep -c ' warn ' "$d/log") warnings, $(grep -c ' error ' "$d/log") errors"
grep -E ' (warn|error) ' "$d/log" | cut -c1-160 | head -5 || true
