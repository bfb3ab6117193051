#!/usr/bin/env bash
# The host name records carry: DD_HOSTNAME and `hostname` over the EC2
# instance id, which is read from IMDSv2 (the fake of
# tests/support/fake_aws.h on 127.0.0.1) only when there is a reason;
# the system's name otherwise, and when IMDS fails. The Datadog payloads,
# the JSON lines and /status (with hostname_origin) carry the one chosen.
# The real 169.254.169.254 is never named: every case that may ask IMDS
# points AWS_EC2_METADATA_SERVICE_ENDPOINT at the fake. Every wait is
# bounded.
set -u
mw=$1
src=$2
# shellcheck source-path=SCRIPTDIR source=lib/tally.sh
. "$(dirname "$0")/lib/tally.sh"
tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2> /dev/null && wait "$p" 2> /dev/null; done
  rm -rf "$tmp"
}
trap cleanup EXIT
fake=$(dirname "$mw")/tests/fake_aws
[ -x "$fake" ] || { echo "no $fake"; exit 77; }
for v in $(env | sed -n 's/^\(\(MW\|DD\|AWS\|ECS\)_[A-Za-z0-9_]*\)=.*/\1/p'); do unset "$v"; done
iid=i-0123456789abcdef0
sys=$(hostname)

# start_fake NAME [args]: a fake AWS whose URL is in $tmp/NAME.url
start_fake() {
  local name=$1
  shift
  "$fake" "$@" > "$tmp/$name.out" 2> "$tmp/$name.err" &
  pids+=($!)
  echo $! > "$tmp/$name.pid"
  for _ in $(seq 50); do [ -s "$tmp/$name.out" ] && break; sleep 0.1; done
  head -n1 "$tmp/$name.out" > "$tmp/$name.url"
}
# requests NAME: how many requests that fake was sent
requests() {
  local before
  before=$(grep -c '^requests' "$tmp/$1.out")
  kill -USR2 "$(cat "$tmp/$1.pid")"
  for _ in $(seq 50); do
    [ "$(grep -c '^requests' "$tmp/$1.out")" -gt "$before" ] && break
    sleep 0.1
  done
  grep '^requests' "$tmp/$1.out" | tail -n1 | cut -d' ' -f2
}
start_fake imds
start_fake refusing --imds-status 403
url=$(cat "$tmp/imds.url")
case $url in http://127.0.0.1:*) ok ;; *) bad "the fake did not start"; exit 1 ;; esac

mkdir -p "$tmp/checks" "$tmp/templates/ticker.d"
cat > "$tmp/checks/ticker.lua" <<'LUA'
return { run = function(self)
  mw.gauge("ticker.runs", 1)
  mw.service_check("ticker.up", mw.OK)
end }
LUA
printf 'instances:\n  - min_collection_interval: 0.5\n' > "$tmp/templates/ticker.d/conf.yaml"
common=(--no-bundled --checks-dir "$tmp/checks" --templates-dir "$tmp/templates"
        --set docker=off --set ecs=off --set "state_dir=$tmp/state")

# host_of [env...] -- [args...]: the host of `check ticker`'s gauge
host_of() {
  local envs=()
  while [ "$1" != "--" ]; do envs+=("$1"); shift; done
  shift
  env -u AWS_EC2_METADATA_DISABLED "${envs[@]}" "$mw" check ticker "${common[@]}" "$@" \
    2> "$tmp/check.err" | python3 -c '
import json, sys
for l in sys.stdin:
    r = json.loads(l)
    if r.get("metric") == "ticker.runs":
        print(r["host"])'
}
expect() { # expect WHAT GOT WANT
  if [ "$2" = "$3" ]; then ok; else bad "$1: got '$2', want '$3'"; cat "$tmp/check.err" >&2; fi
}

# --- precedence: --set hostname > DD_HOSTNAME > the instance id > the system's
n0=$(requests imds)
expect "--set over DD_HOSTNAME" \
  "$(host_of AWS_EC2_METADATA_SERVICE_ENDPOINT="$url" DD_HOSTNAME=dd-host -- --set hostname=flag-host)" \
  flag-host
expect "DD_HOSTNAME over the file and IMDS" \
  "$(printf 'hostname: file-host\n' > "$tmp/mw.yaml"
     host_of AWS_EC2_METADATA_SERVICE_ENDPOINT="$url" DD_HOSTNAME=dd-host -- -c "$tmp/mw.yaml")" dd-host
expect "the file over IMDS" \
  "$(host_of AWS_EC2_METADATA_SERVICE_ENDPOINT="$url" -- -c "$tmp/mw.yaml")" file-host
[ "$(requests imds)" -eq "$n0" ] && ok || bad "IMDS asked though a host name was set"
expect "the instance id" "$(host_of AWS_EC2_METADATA_SERVICE_ENDPOINT="$url" --)" "$iid"
[ "$(requests imds)" -eq $((n0 + 2)) ] && ok || bad "not one token and one GET"

# --- no request when told not to, or on Fargate
n0=$(requests imds)
expect "AWS_EC2_METADATA_DISABLED" \
  "$(host_of AWS_EC2_METADATA_SERVICE_ENDPOINT="$url" AWS_EC2_METADATA_DISABLED=true --)" "$sys"
expect "ec2_metadata: off" \
  "$(host_of AWS_EC2_METADATA_SERVICE_ENDPOINT="$url" MW_EC2_METADATA=off --)" "$sys"
expect "Fargate" "$(host_of AWS_EC2_METADATA_SERVICE_ENDPOINT="$url" AWS_EXECUTION_ENV=AWS_ECS_FARGATE \
  ECS_CONTAINER_METADATA_URI_V4=http://127.0.0.1:9/v4 --)" "$sys"
[ "$(requests imds)" -eq "$n0" ] && ok || bad "IMDS asked though disabled, off or on Fargate"

# --- IMDS refuses: the system's name, one warning
expect "IMDS refusing" \
  "$(host_of AWS_EC2_METADATA_SERVICE_ENDPOINT="$(cat "$tmp/refusing.url")" --)" "$sys"
[ "$(grep -c 'no EC2 instance id' "$tmp/check.err")" -eq 1 ] && ok ||
  bad "not one warning for a refusing IMDS: $(cat "$tmp/check.err")"
grep -q 'HTTP 403' "$tmp/check.err" && ok || bad "the warning does not say why"
grep -q 'AQAEA' "$tmp/check.err" && bad "a token in the log" || ok

# --- run: the Datadog payloads and /status carry the instance id
# the demo's stand-in for the intake: one JSON line per request (path, body)
python3 "$src/deploy/demo/dd_intake.py" serve "$tmp/got" "$tmp/port" &
pids+=($!)
for _ in $(seq 1 50); do [ -s "$tmp/port" ] && break; sleep 0.1; done
port=$(cat "$tmp/port")
env -u AWS_EC2_METADATA_DISABLED AWS_EC2_METADATA_SERVICE_ENDPOINT="$url" \
  DD_API_KEY=cli0123456789abcdef0123456789abcd DD_DD_URL="http://127.0.0.1:$port" \
  "$mw" run "${common[@]}" --flush-interval 0.5 --listen "$tmp/status.sock" \
  > /dev/null 2> "$tmp/run.err" &
pid=$!
pids+=($pid)
for _ in $(seq 1 100); do
  grep -q '"/api/v1/check_run"' "$tmp/got" 2> /dev/null && break
  sleep 0.1
done
"$mw" status --listen "$tmp/status.sock" --json > "$tmp/status.json" 2> /dev/null
"$mw" status --listen "$tmp/status.sock" > "$tmp/status.txt" 2> /dev/null
kill -TERM $pid
wait $pid
python3 - "$tmp/got" "$iid" <<'PY' && ok || bad "the intake payloads do not carry the instance id"
import json, sys
reqs = [json.loads(l) for l in open(sys.argv[1])]
series = [s for r in reqs if r["path"] == "/api/v1/series" for s in r["body"]["series"]]
runs = [s for s in series if s["metric"] == "ticker.runs"]
assert runs and all(s["host"] == sys.argv[2] for s in runs), runs[:1]
assert all(s["host"] == sys.argv[2] for s in series if s["metric"].startswith("moonwatch.")), "own"
checks = [c for r in reqs if r["path"] == "/api/v1/check_run" for c in r["body"]]
assert checks and all(c["host_name"] == sys.argv[2] for c in checks), checks[:1]
PY
python3 - "$tmp/status.json" "$iid" <<'PY' && ok || bad "/status: $(cat "$tmp/status.json")"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["hostname"] == sys.argv[2] and d["hostname_origin"] == "ec2_instance_id", d
PY
grep -q 'host name from: ec2_instance_id' "$tmp/status.txt" && ok || bad "moonwatch status: no origin"
grep -q "host name $iid: the EC2 instance id (asked because AWS_EC2_METADATA_SERVICE_ENDPOINT is set)" \
  "$tmp/run.err" && ok || bad "the log does not say where the host name came from"

tally
