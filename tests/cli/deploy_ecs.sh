#!/usr/bin/env bash
# deploy/ecs/: the service and task definitions that run the amazon_ecs
# check once per cluster, and the IAM policy of its task role.
#  - every file is JSON;
#  - the service is REPLICA with desiredCount 1 and deploys with
#    maximumPercent 100 / minimumHealthyPercent 0 (two tasks never run
#    at once), from the task definition's family;
#  - the task definition has a task role and runs moonwatch with only
#    the amazon_ecs check: its conf.yaml (from the environment) passes
#    `moonwatch validate --strict` and is the only template;
#  - the policy allows exactly the ECS actions the check calls (the
#    action names quoted in checks/amazon_ecs.lua), nothing else.
set -u
mw=$1
src=$2
# shellcheck source-path=SCRIPTDIR source=lib/tally.sh
. "$(dirname "$0")/lib/tally.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
dir=$src/deploy/ecs

for f in "$dir"/*.json; do
  python3 -c 'import json, sys; json.load(open(sys.argv[1]))' "$f" && ok || bad "$f is not JSON"
done

python3 - "$dir" "$tmp" <<'PY' && ok || bad "the service and task definitions"
import json, os, re, sys
d, tmp = sys.argv[1], sys.argv[2]
svc = json.load(open(os.path.join(d, "amazon-ecs-check-service.json")))
task = json.load(open(os.path.join(d, "amazon-ecs-check-task.json")))
assert svc["schedulingStrategy"] == "REPLICA" and svc["desiredCount"] == 1, svc
dc = svc["deploymentConfiguration"]
assert dc["maximumPercent"] == 100 and dc["minimumHealthyPercent"] == 0, dc
assert svc["taskDefinition"] == task["family"], (svc, task)
assert task["taskRoleArn"].startswith("arn:aws:iam::") and ":role/" in task["taskRoleArn"], task
(c,) = task["containerDefinitions"]
cmd = " ".join(c.get("entryPoint", []) + c.get("command", []))
assert "moonwatch run --no-bundled" in cmd, cmd
tdir = re.search(r"--templates-dir (\S+)", cmd).group(1)
assert re.search(r"> " + re.escape(tdir) + r"/amazon_ecs\.d/conf\.yaml", cmd), cmd
assert "--set docker=off" in cmd and "--set ecs=off" in cmd, cmd
env = {e["name"]: e["value"] for e in c["environment"]}
os.makedirs(os.path.join(tmp, "t", "amazon_ecs.d"))
open(os.path.join(tmp, "t", "amazon_ecs.d", "conf.yaml"), "w").write(env["AMAZON_ECS_CONF"] + "\n")
state = [m for m in c["mountPoints"] if m["containerPath"] == "/var/lib/moonwatch"]
assert state and "--set state_dir=/var/lib/moonwatch" in cmd, c
PY
"$mw" validate --strict --no-bundled --checks-dir "$src/checks" "$tmp/t" >"$tmp/out" 2>&1 && ok \
  || { bad "the task's conf.yaml does not validate"; cat "$tmp/out" >&2; }
grep -q "1 template(s), 0 problem(s)" "$tmp/out" && ok || { bad "not one template"; cat "$tmp/out" >&2; }

python3 - "$dir/iam-policy.json" "$src/checks/amazon_ecs.lua" <<'PY' && ok || bad "the policy's actions"
import json, re, sys
policy = json.load(open(sys.argv[1]))
allowed = set()
for st in policy["Statement"]:
    assert st["Effect"] == "Allow", st
    acts = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
    allowed |= set(acts)
called = {"ecs:" + a for a in re.findall(r'"((?:List|Describe|Get)[A-Z][A-Za-z]+)"',
                                          open(sys.argv[2]).read())}
assert len(called) == 6, called
assert allowed == called, (sorted(allowed - called), sorted(called - allowed))
PY

tally
