#!/usr/bin/env bash
# The amazon_ecs check from the moonwatch program, against the fake ECS
# API as a program of its own (build/tests/fake_aws, on 127.0.0.1) with
# temporary credentials in the environment:
#  - `moonwatch check amazon_ecs` at --log-level debug sends the metrics,
#    can_connect OK and a service event; a second process on the same
#    state_dir does not send that event again;
#  - the bundled templates do not run it (a conf.yaml.example only), and
#    a conf.yaml of it is resolved by `moonwatch configcheck`;
#  - the secret key, the session token and the request signatures appear
#    nowhere in what `check` and `configcheck` print (stdout and stderr),
#    nor does any 64-hex-digit string (the form of a SigV4 signature).
set -u
mw=$1
src=$2
fake=$(dirname "$mw")/tests/fake_aws
# shellcheck source-path=SCRIPTDIR source=lib/tally.sh
. "$(dirname "$0")/lib/tally.sh"
tmp=$(mktemp -d)
fpid=
cleanup() {
  [ -n "$fpid" ] && kill "$fpid" 2>/dev/null && wait "$fpid" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
[ -x "$fake" ] || { echo "no $fake: build the tests first" >&2; exit 1; }

KEY=ASIACLITEST000000001
SECRET='cliSecret/Key+0001abcdefghijklmnopqrstuvw'
TOKEN='cliSessionToken/IQoJb3JpZ2luX2VjEPr//////////wEaCXVzLWVhc3QtMSJHMEUCIQ'
now=$(date +%s)
python3 - "$tmp/model.json" "$now" <<'PY'
import json, sys
now = int(sys.argv[2])
def instance(ec2, connected):
    res = lambda cpu, mem: [{"name": "CPU", "type": "INTEGER", "integerValue": cpu},
                            {"name": "MEMORY", "type": "INTEGER", "integerValue": mem}]
    return {"ec2InstanceId": ec2, "status": "ACTIVE", "agentConnected": connected,
            "runningTasksCount": 2, "pendingTasksCount": 0,
            "registeredResources": res(2048, 3768), "remainingResources": res(1024, 1768),
            "versionInfo": {"agentVersion": "1.80.0"}}
model = {"clusters": [{"name": "prod",
    "containerInstances": [instance("i-0cli000000000001", True), instance("i-0cli000000000002", False)],
    "services": [{"serviceName": "web", "status": "ACTIVE", "desiredCount": 2, "runningCount": 1,
                  "pendingCount": 1, "events": [
        {"id": "ev-2", "createdAt": now - 10.5, "message": "(service web) (task 1) failed to start"},
        {"id": "ev-1", "createdAt": now - 20, "message": "(service web) has started 1 tasks"}]}]}]}
json.dump(model, open(sys.argv[1], "w"))
PY

"$fake" --key "$KEY" --secret "$SECRET" --token "$TOKEN" --model "$tmp/model.json" \
  >"$tmp/fake.out" 2>"$tmp/fake.err" &
fpid=$!
for _ in $(seq 50); do
  [ -s "$tmp/fake.out" ] && break
  sleep 0.1
done
url=$(head -n1 "$tmp/fake.out")
case $url in http://127.0.0.1:*) ok ;; *) bad "the fake did not start: $(cat "$tmp/fake.err")"; exit 1 ;; esac

unset AWS_ENDPOINT_URL AWS_DEFAULT_REGION AWS_CONTAINER_CREDENTIALS_RELATIVE_URI \
  AWS_CONTAINER_CREDENTIALS_FULL_URI AWS_EC2_METADATA_SERVICE_ENDPOINT \
  ECS_CONTAINER_METADATA_URI_V4 ECS_CONTAINER_METADATA_URI
export AWS_EC2_METADATA_DISABLED=true AWS_REGION=us-east-1 AWS_ENDPOINT_URL_ECS=$url
export AWS_ACCESS_KEY_ID=$KEY AWS_SECRET_ACCESS_KEY=$SECRET AWS_SESSION_TOKEN=$TOKEN
common=(--set docker=off --set ecs=off --set "state_dir=$tmp/state" --log-level debug)

"$mw" check amazon_ecs --instance '{}' "${common[@]}" >"$tmp/out1" 2>"$tmp/err1"
rc=$?
[ $rc -eq 0 ] && ok || { bad "check exited $rc"; cat "$tmp/err1" >&2; }
python3 - "$tmp/out1" <<'PY' && ok || bad "the first run's records"
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
def metric(name, **want):
    for r in recs:
        if r["type"] == "metric" and r["metric"] == name and all(
                f"{k}:{v}" in r["tags"] for k, v in want.items()):
            return r["value"]
assert metric("aws.ecs.running_tasks_count", instance_id="i-0cli000000000001") == 2, recs
assert metric("aws.ecs.agent_connected", instance_id="i-0cli000000000002") == 0
assert metric("aws.ecs.service.pending", ecs_service="web") == 1
sc = {r["check"]: r for r in recs if r["type"] == "service_check"}
assert sc["amazon_ecs.can_connect"]["status"] == 0, sc
ev = [r for r in recs if r["type"] == "event"]
assert [e["title"] for e in ev] == ["prod/web: fail"], ev
assert ev[0]["source_type_name"] == "amazon_ecs" and "ecs_event:fail" in ev[0]["tags"], ev
PY
ls "$tmp/state/checks/"amazon_ecs@*.state >/dev/null 2>&1 && ok || bad "no state file"

# another process, the same state: the event is not sent again
"$mw" check amazon_ecs --instance '{}' "${common[@]}" >"$tmp/out2" 2>"$tmp/err2"
[ $? -eq 0 ] && ok || bad "second check failed"
grep -q '"type":"metric","metric":"aws.ecs.running_tasks_count"' "$tmp/out2" && ok \
  || bad "second run: no metrics"
grep -q '"type":"event"' "$tmp/out2" && bad "the event was sent again" || ok

# not run unless configured; a conf.yaml of it is resolved
"$mw" configcheck --json "${common[@]}" >"$tmp/out3" 2>"$tmp/err3"
grep -q '"check":"amazon_ecs"' "$tmp/out3" && bad "the bundled templates run amazon_ecs" || ok
mkdir -p "$tmp/t/amazon_ecs.d"
cp "$src/templates/amazon_ecs.d/conf.yaml.example" "$tmp/t/amazon_ecs.d/conf.yaml"
"$mw" configcheck --json --templates-dir "$tmp/t" "${common[@]}" >"$tmp/out4" 2>"$tmp/err4"
python3 - "$tmp/out4" <<'PY' && ok || bad "configcheck does not resolve amazon_ecs"
import json, sys
doc = json.load(open(sys.argv[1]))
r = [r for r in doc["resolved"] if r["check"] == "amazon_ecs"]
assert len(r) == 1 and r[0]["instance"]["clusters"] == [], doc
PY

# the signature of the last request, from the fake
kill -USR1 "$fpid"
for _ in $(seq 50); do
  [ "$(wc -l <"$tmp/fake.out")" -ge 2 ] && break
  sleep 0.1
done
sig=$(sed -n 2p "$tmp/fake.out")
[ ${#sig} -eq 64 ] && ok || bad "no signature from the fake: '$sig'"
cat "$tmp"/out[1-4] "$tmp"/err[1-4] >"$tmp/all"
grep -q "credentials from the environment" "$tmp/all" && ok || bad "no debug log"
for s in "$SECRET" "$TOKEN" "$sig"; do
  grep -qF -- "$s" "$tmp/all" && bad "a secret (${s:0:6}...) was printed" || ok
done
grep -qE '[0-9a-f]{64}' "$tmp/all" && bad "a 64-hex string was printed" || ok

tally
