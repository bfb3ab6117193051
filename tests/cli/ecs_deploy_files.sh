#!/usr/bin/env bash
# deploy/ecs/*.json against the ECS API: every file that a schema of
# tests/schemas applies to (RegisterTaskDefinition, CreateService:
# field names and types, unknown fields refused) validates, and a
# misspelt field or a wrong type fails it; no file passes DD_API_KEY
# as a plain environment value. Then what the daemon files must say:
# one task per instance (DAEMON), the host network, the Docker socket
# and the host's /proc, cgroup tree and /etc/ecs read-only under /host,
# a host directory for state_dir, 256 MiB and 10 CPU units, DD_API_KEY
# from Secrets Manager or SSM, DD_TAGS, the health check on /healthz,
# logs to awslogs. Needs python3-jsonschema (.ci/deps.sh).
# Arguments: the built moonwatch binary, the source directory.

# ok always succeeds, so `test && ok || bad` is an if-then-else here.
# shellcheck disable=SC2015
set -uo pipefail
src=$2
dir=$src/deploy/ecs
schemas=$src/tests/schemas
validate=$src/tests/cli/ecs_validate.py
# shellcheck source-path=SCRIPTDIR source=lib/tally.sh
. "$(dirname "$0")/lib/tally.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

if ! python3 -c 'import jsonschema' 2>/dev/null; then
  echo "SKIP: no python3 jsonschema (Debian: python3-jsonschema)"
  exit 77
fi

# Every file with a schema validates; the daemon's two are among them.
python3 "$validate" "$schemas" "$dir"/*.json >"$tmp/validate.out" 2>&1 && ok \
  || bad "deploy/ecs does not validate: $(cat "$tmp/validate.out")"
for f in daemon-task-definition.json daemon-service.json; do
  grep -q "^validated: $dir/$f " "$tmp/validate.out" && ok || bad "$f was not validated"
done

# The schemas refuse what the ECS API refuses: each broken copy fails.
broken() { # NAME FILE PYTHON-EXPRESSION-ON-d
  mkdir -p "$tmp/$1"
  python3 - "$dir/$2" "$tmp/$1/$2" "$3" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
exec(sys.argv[3])
json.dump(d, open(sys.argv[2], "w"))
PY
  if python3 "$validate" "$schemas" "$tmp/$1/$2" >"$tmp/$1.out" 2>&1; then
    bad "$1: a broken $2 validates"
  else ok; fi
}
td=daemon-task-definition.json sv=daemon-service.json
broken misspelt_field "$td" 'c = d["containerDefinitions"][0]; c["mountPoint"] = c.pop("mountPoints")'
broken misspelt_nested "$td" 'm = d["containerDefinitions"][0]["mountPoints"][0]; m["readonly"] = m.pop("readOnly")'
broken string_cpu "$td" 'd["containerDefinitions"][0]["cpu"] = "10"'
broken bad_network "$td" 'd["networkMode"] = "hostt"'
broken bad_health "$td" 'd["containerDefinitions"][0]["healthCheck"]["command"][0] = "SHELL"'
broken misspelt_service "$sv" 'd["schedulingstrategy"] = d.pop("schedulingStrategy")'
broken daemon_count "$sv" 'd["desiredCount"] = 1'

# No file gives an API key as a plain environment value.
python3 - "$dir"/*.json <<'PY' && ok || bad "a plain API key in an environment"
import json, re, sys
bad = []
for path in sys.argv[1:]:
    d = json.load(open(path))
    for c in d.get("containerDefinitions", []) if isinstance(d, dict) else []:
        for e in c.get("environment", []):
            if e.get("name") == "DD_API_KEY" or re.search(r"(API|APP)_KEY$", e.get("name", "")):
                bad.append(f"{path}: {c.get('name')}: {e.get('name')} in environment, use secrets")
print("\n".join(bad), file=sys.stderr)
sys.exit(1 if bad else 0)
PY

# What the daemon files say.
python3 - "$dir" "$src/deploy/moonwatch.yaml" <<'PY' && ok || bad "the daemon task definition and service"
import json, os, re, sys
d, config = sys.argv[1], sys.argv[2]
svc = json.load(open(os.path.join(d, "daemon-service.json")))
task = json.load(open(os.path.join(d, "daemon-task-definition.json")))
problems = []
def want(cond, what):
    if not cond:
        problems.append(what)

want(svc.get("schedulingStrategy") == "DAEMON", "service: schedulingStrategy DAEMON")
want("desiredCount" not in svc, "service: no desiredCount with DAEMON")
want(svc.get("launchType") == "EC2", "service: launchType EC2")
want(svc.get("taskDefinition") == task["family"], "service: runs the task definition's family")
want(task.get("networkMode") == "host", "task: networkMode host")
want("EC2" in task.get("requiresCompatibilities", []), "task: EC2")
(c,) = task["containerDefinitions"]
want(c.get("memory") == 256 and c.get("cpu") == 10, "container: memory 256, cpu 10")
want(c.get("essential") is True, "container: essential")

vols = {v["name"]: v.get("host", {}).get("sourcePath", "").rstrip("/") for v in task.get("volumes", [])}
mounts = {}
for m in c.get("mountPoints", []):
    want(m.get("sourceVolume") in vols, f"mount {m}: no such volume")
    mounts[m["containerPath"]] = (vols.get(m.get("sourceVolume")), m.get("readOnly", False))
for host, path in (("/var/run/docker.sock", "/var/run/docker.sock"), ("/proc", "/host/proc"),
                   ("/sys/fs/cgroup", "/host/sys/fs/cgroup"), ("/etc/ecs", "/host/etc/ecs")):
    want(mounts.get(path) == (host, True), f"{host} mounted read-only at {path}")
m = re.search(r"^state_dir:\s*(\S+)", open(config).read(), re.M)
state = m.group(1) if m else "/var/lib/moonwatch"
want(state in mounts and mounts[state][0] and mounts[state][1] is False,
     f"a host directory mounted writable at state_dir {state}")

secrets = {s["name"]: s["valueFrom"] for s in c.get("secrets", [])}
want(re.match(r"arn:aws:(secretsmanager|ssm):", secrets.get("DD_API_KEY", "")),
     "DD_API_KEY from a Secrets Manager secret or an SSM parameter")
env = {e["name"]: e["value"] for e in c.get("environment", [])}
want(env.get("DD_TAGS"), "DD_TAGS set")
want(task.get("executionRoleArn"), "an execution role (it reads the secret)")

hc = c.get("healthCheck", {}).get("command", [])
want(hc[:1] == ["CMD-SHELL"] and "http://127.0.0.1:5001/healthz" in " ".join(hc),
     "health check: CMD-SHELL on http://127.0.0.1:5001/healthz")
cmd = c.get("command", [])
want("--listen" in cmd and cmd[cmd.index("--listen") + 1:][:1] == ["127.0.0.1:5001"],
     "command: --listen 127.0.0.1:5001, where the health check asks")
want(c.get("user") == "0", "user 0: the Docker socket is root:docker")
log = c.get("logConfiguration", {})
opts = log.get("options", {})
want(log.get("logDriver") == "awslogs" and all(
    k in opts for k in ("awslogs-group", "awslogs-region", "awslogs-stream-prefix")),
     "logs: awslogs with a group, a region and a stream prefix")
print("\n".join("missing: " + p for p in problems), file=sys.stderr)
sys.exit(1 if problems else 0)
PY

tally
