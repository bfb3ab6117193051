#!/usr/bin/env bash
# Memory under churn on a real Docker engine, for as long as it takes to
# tell a leak from a window that fills: moonwatch run (bundled checks
# included) while labelled containers are started and removed at RATE a
# second each (default 3) for SECONDS (default 3600). Each container runs
# `busybox httpd` on its own 127.0.0.1 port (--network host) and carries a
# `com.datadoghq.ad.checks` label asking for an http_check and a tcp_check
# on it every 2 s; it lives LIFETIME seconds (default 10), so about
# RATE * LIFETIME are up at once.
#
# Every SAMPLE seconds (default 5) a CSV line goes to CSV (default
# /tmp/docker_soak.csv): seconds since start, moonwatch's VmRSS and VmHWM
# (kB), containers started and removed so far, and the engine's own
# counters as its `moonwatch` check last reported them (instances,
# aggregator contexts, Lua bytes). At the end it prints the containers
# churned, RSS at the start, at WARMUP (default 600 s) and at the end,
# the growth after WARMUP (median RSS of the last WINDOW seconds, default
# 300, minus the median of WARMUP .. WARMUP+WINDOW), the least-squares
# slope after WARMUP in KiB a minute, and the noise: the residuals'
# standard deviation about that line and the spread (min..max) of the
# samples of the last WINDOW. Figures only; nothing is asserted.
#
# Usage: docker_soak.sh MOONWATCH_BINARY [SECONDS [RATE [LIFETIME]]]
#        docker_soak.sh --report CSV   (the figures of an earlier run)
# Environment: SOAK_CSV, SOAK_SAMPLE, SOAK_WARMUP, SOAK_WINDOW;
# SOAK_MW_ARGS, more arguments for `moonwatch run` (split on spaces, e.g.
# "--set context_expiry=60"); SOAK_DOCKER_HOST=unix:///path to churn on
# that engine instead of a private one (only this run's containers and
# image are removed there).
# Needs root, docker.io and busybox-static for the private engine.
# Everything it started is removed on exit, Ctrl-C included.
set -uo pipefail
# Loopback only: on a host whose firmware says EC2, moonwatch would ask the
# instance metadata service (169.254.169.254) for its host name.
export AWS_EC2_METADATA_DISABLED=true
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=../integration/lib/dockerd.sh
. "$here/../integration/lib/dockerd.sh"
mw=${1:?usage: docker_soak.sh MOONWATCH_BINARY [SECONDS [RATE [LIFETIME]]] | --report CSV}
csv_arg=${2:-}
[ "$mw" = --report ] && set -- "$1" 3600 # $2 is the CSV then
secs=${2:-3600}
rate=${3:-3}
life=${4:-10}
csv=${SOAK_CSV:-${TMPDIR:-/tmp}/docker_soak.csv}
every=${SOAK_SAMPLE:-5}
warm=${SOAK_WARMUP:-600}
win=${SOAK_WINDOW:-300}
for v in "$secs" "$rate" "$life" "$every" "$warm" "$win"; do
  case $v in '' | *[!0-9]* | 0) echo "docker_soak.sh: $v is not a whole number > 0" >&2 && exit 2 ;; esac
done

# The figures of a CSV written by this script (also: docker_soak.sh --report CSV).
report() {
  awk -F, -v warm="$warm" -v win="$win" '
  function median(a, n,   i, j, t) { # sorts a[1..n] in place
    for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j > 0 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
    return n ? (n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2) : "n/a"
  }
  NR > 1 && $2 != "" { n++; t[n] = $1; r[n] = $2 }
  END {
    if (!n) { print "no samples"; exit }
    last = t[n]
    for (i = 1; i <= n; i++) {
      if (at_warm == "" && t[i] >= warm) at_warm = r[i]
      if (t[i] >= warm && t[i] < warm + win) a[++na] = r[i]
      if (t[i] > last - win && t[i] >= warm + win) b[++nb] = r[i]
      if (t[i] >= warm) { m++; sx += t[i]; sy += r[i]; sxx += t[i] * t[i]; sxy += t[i] * r[i] }
    }
    printf "moonwatch RSS: %d kB at start, %s kB at %d s, %d kB at the end (%d s; peak %d kB)\n",
      r[1], at_warm == "" ? "n/a" : at_warm, warm, r[n], last, hwm
    if (na < 3 || nb < 3 || m < 3) { print "run too short for the growth after " warm " s"; exit }
    ma = median(a, na); mb = median(b, nb)
    slope = (m * sxy - sx * sy) / (m * sxx - sx * sx); icpt = (sy - slope * sx) / m
    for (i = 1; i <= n; i++) if (t[i] >= warm) { e = r[i] - icpt - slope * t[i]; ss += e * e }
    lo = hi = b[1]; for (i = 1; i <= nb; i++) { if (b[i] < lo) lo = b[i]; if (b[i] > hi) hi = b[i] }
    printf "growth after %d s: %+d kB (median of the last %d s %d kB, of %d..%d s %d kB)\n",
      warm, mb - ma, win, mb, warm, warm + win, ma
    printf "slope after %d s: %+.2f KiB/min over %d samples\n", warm, slope * 60, m
    printf "noise: residual sd %.1f kB about that line; last %d s span %d..%d kB\n",
      sqrt(ss / m), win, lo, hi
  }' hwm="$(awk -F, 'NR > 1 && $3 > h { h = $3 } END { print h + 0 }' "$1")" "$1"
  tail -n 1 "$1" | awk -F, '{ printf "engine at the end: %s instances, %s contexts, %s Lua bytes\n", $6, $7, $8 }'
}

if [ "$mw" = --report ]; then
  report "${csv_arg:?usage: docker_soak.sh --report CSV}"
  exit
fi
[ -x "$mw" ] || { echo "docker_soak.sh: $mw is not an executable" >&2 && exit 2; }

d=$(mktemp -d /tmp/mwsoak.XXXXXX)
tag=mwsoak$$ # names this run's containers, image and label
image=$tag:1
mwpid='' samplerpid='' started=0 removed=0 own_engine=0
cleanup() {
  trap - EXIT INT TERM
  [ -n "$samplerpid" ] && kill "$samplerpid" 2>/dev/null && wait "$samplerpid" 2>/dev/null
  [ -n "$mwpid" ] && kill "$mwpid" 2>/dev/null && wait "$mwpid" 2>/dev/null
  # docker clients still running in the background (at most 60 s each,
  # mw_docker's timeout): wait for them, so that none starts a container
  # late. Not for the private engine, also a child of this shell.
  local p
  for p in $(jobs -rp); do
    [ "$p" = "$MW_DOCKERD_PID" ] || wait "$p" 2>/dev/null
  done
  if [ "$own_engine" = 1 ]; then
    mw_dockerd_stop >/dev/null 2>&1
  elif [ -n "$MW_DOCKERD_DIR" ]; then
    local ids
    ids=$(mw_docker ps -aq --filter "label=moonwatch.soak=$tag" 2>/dev/null)
    # shellcheck disable=SC2086 # one argument per id
    [ -z "$ids" ] || mw_docker rm -f $ids >/dev/null 2>&1
    mw_docker rmi -f "$image" >/dev/null 2>&1
  fi
  rm -rf "$d" 2>/dev/null || { sleep 1 && rm -rf "$d"; } # grep may still be closing self.jsonl
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ -n "${SOAK_DOCKER_HOST:-}" ]; then
  case $SOAK_DOCKER_HOST in
  unix://*) MW_DOCKERD_DIR=$d/given && mkdir -p "$d/given" &&
    ln -s "${SOAK_DOCKER_HOST#unix://}" "$d/given/docker.sock" ;;
  *) echo "docker_soak.sh: SOAK_DOCKER_HOST must be unix:///path" >&2 && exit 2 ;;
  esac
else
  own_engine=1
  mw_dockerd_start "$d/e" >/dev/null || exit 1
fi
mw_dockerd_image "$image" >/dev/null || exit 1
mkdir -p "$d/empty"

# stdout carries the JSON lines; only the engine's own gauges are kept.
read -ra extra <<<"${SOAK_MW_ARGS:-}"
"$mw" run --checks-dir "$d/empty" --templates-dir "$d/empty" \
  --docker-host "unix://$MW_DOCKERD_DIR/docker.sock" --sink stdout --log-level warn "${extra[@]}" \
  > >(grep --line-buffered -F '"metric":"moonwatch.' >"$d/self.jsonl") 2>"$d/log" &
mwpid=$!

# The last value of the engine gauge $1 ("" before its first report).
gauge() {
  tail -n 40 "$d/self.jsonl" 2>/dev/null |
    sed -n "s/.*\"metric\":\"moonwatch\.$1\",[^}]*\"value\":\([0-9.e+]*\).*/\1/p" | tail -n 1
}
status_kb() { awk -v k="$1:" '$1 == k { print $2 }' "/proc/$mwpid/status" 2>/dev/null; }

# One line every $every seconds, at most secs / every + 10 lines.
sampler() {
  local t0 n k s
  t0=$(date +%s%N)
  echo "t_s,rss_kb,hwm_kb,started,removed,instances,contexts,lua_bytes" >"$csv"
  for ((k = 0; k < secs / every + 10; k++)); do
    kill -0 "$mwpid" 2>/dev/null || break
    read -r s <"$d/count" 2>/dev/null || s="0 0"
    n=$((($(date +%s%N) - t0) / 1000000))
    printf '%d.%03d,%s,%s,%s,%s,%s,%s,%s\n' $((n / 1000)) $((n % 1000)) "$(status_kb VmRSS)" \
      "$(status_kb VmHWM)" "${s% *}" "${s#* }" "$(gauge instances)" "$(gauge contexts)" \
      "$(gauge lua.memory)" >>"$csv"
    sleep "$every"
  done
}
echo "0 0" >"$d/count"
sleep 1
kill -0 "$mwpid" 2>/dev/null || { echo "moonwatch exited:" >&2 && cat "$d/log" >&2 && exit 1; }
sampler &
samplerpid=$!

label() { # the checks of a container serving on 127.0.0.1:$1
  printf '{"http_check":{"instances":[{"name":"soak","url":"http://%%%%host%%%%:%d/","min_collection_interval":2,"timeout":2}]},' "$1"
  printf '"tcp_check":{"instances":[{"name":"soak","host":"%%%%host%%%%","port":%d,"min_collection_interval":2,"timeout":2}]}}' "$1"
}

# A `rm -f` that came while its container was still starting can fail:
# every 10 s the containers of ours numbered $1 or less (their `rm -f`
# went out 5 s ago or more) that are left are removed too, and counted.
sweep() {
  local names
  names=$(mw_docker ps -a --filter "label=moonwatch.soak=$tag" --format '{{.Names}}' 2>/dev/null |
    awk -F- -v max="$1" '$NF + 0 <= max')
  [ -n "$names" ] || return 0
  # shellcheck disable=SC2086 # one argument per name
  mw_docker rm -f $names >/dev/null 2>&1
  echo "$names" | grep -c . >>"$d/swept"
}

echo "soak: $rate starts + $rate removals a second for ${secs}s, containers live ${life}s; CSV $csv"
echo "moonwatch RSS $(status_kb VmRSS) kB at start"
t0=$(date +%s%N)
t_end=$((t0 / 1000000000 + secs))
keep=$((rate * life))
for ((i = 1; i <= secs * rate; i++)); do
  [ "$(date +%s)" -lt "$t_end" ] || break
  kill -0 "$mwpid" 2>/dev/null || { echo "moonwatch exited" >&2 && break; }
  port=$((41000 + i % 2000))
  mw_docker run -d --network host --init --name "$tag-$i" --label "moonwatch.soak=$tag" \
    --label "com.datadoghq.ad.checks=$(label $port)" \
    "$image" httpd -f -p "127.0.0.1:$port" -h / >/dev/null 2>&1 &
  started=$i
  if [ "$i" -gt "$keep" ]; then
    mw_docker rm -f "$tag-$((i - keep))" >/dev/null 2>&1 &
    removed=$((i - keep))
    [ $((i % (10 * rate))) -ne 0 ] || sweep $((removed - 5 * rate)) &
  fi
  echo "$started $removed" >"$d/count.new" && mv "$d/count.new" "$d/count" # whole for the sampler
  # An engine that lags leaves clients running: never more than 8 * RATE
  # at once (besides moonwatch, the sampler and the engine; each client
  # ends within mw_docker's 60 s).
  for ((w = 0; w < 600; w++)); do
    [ "$(jobs -rp | wc -l)" -gt $((8 * rate + 3)) ] || break
    sleep 0.1
  done
  # the next start on its slot (i / rate s after t0), however long this one took
  ahead=$(((t0 + i * 1000000000 / rate - $(date +%s%N)) / 1000000))
  [ "$ahead" -le 0 ] || sleep "$((ahead / 1000)).$(printf %03d $((ahead % 1000)))"
done
echo "churn over: $started started, $removed removed in $((($(date +%s%N) - t0) / 1000000000)) s" \
  "($(awk '{ n += $1 } END { print n + 0 }' "$d/swept" 2>/dev/null || echo 0) removed again by the sweep)"
kill "$samplerpid" 2>/dev/null
wait "$samplerpid" 2>/dev/null
samplerpid=

report "$csv"
echo "$(grep -c ' warn ' "$d/log") warnings, $(grep -c ' error ' "$d/log") errors in moonwatch's log"
grep -E ' (warn|error) ' "$d/log" | cut -c1-160 | sort | uniq -c | sort -rn | head -5 || true
