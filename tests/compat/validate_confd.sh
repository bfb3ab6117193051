#!/usr/bin/env bash
# Validates a directory laid out like the Datadog Agent's conf.d
# (<check>.d/*.yaml, <check>.yaml, *.yaml.default) with moonwatch and
# prints a summary: the files the Agent would read, the templates that
# loaded, the problems (each as file:line:col: message), and what would
# run - static configs, templates waiting for a container, and templates
# that schedule nothing, grouped by why.
#
# usage: validate_confd.sh [--strict] DIR [MOONWATCH]
#   MOONWATCH defaults to $MOONWATCH, else build/moonwatch beside this
#   script's repository. The bundled checks count as present; the bundled
#   templates are left out of the summary. Docker is not asked.
# Exit status: 0 when there is no problem, 1 when there is, 2 on misuse.
set -u
strict=()
if [ "${1:-}" = --strict ]; then
  strict=(--strict)
  shift
fi
dir=${1:-}
if [ -z "$dir" ] || [ ! -d "$dir" ]; then
  echo "usage: $0 [--strict] DIR [MOONWATCH]" >&2
  exit 2
fi
dir=$(cd "$dir" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
mw=${2:-${MOONWATCH:-$here/../../build/moonwatch}}
if [ ! -x "$mw" ]; then
  echo "$0: no moonwatch binary at $mw (give it as the second argument)" >&2
  exit 2
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# What the Agent reads: *.yaml / *.yml (and .default) in DIR and in its
# <check>.d folders, one level down, hidden files aside.
find "$dir" -maxdepth 2 -type f ! -name '.*' \
  \( -name '*.yaml' -o -name '*.yml' -o -name '*.yaml.default' -o -name '*.yml.default' \) \
  | awk -v d="$dir" '{ rel = substr($0, length(d) + 2)
      n = split(rel, p, "/")
      if (n == 1 || p[1] ~ /\.d$/) print }' | sort >"$tmp/files"

"$mw" validate "${strict[@]}" "$dir" >"$tmp/problems" 2>"$tmp/notes"
vrc=$?
"$mw" configcheck --json --templates-dir "$dir" --set docker=off >"$tmp/cc.json" 2>"$tmp/cc.err"
crc=$?

python3 - "$dir" "$tmp" "$vrc" "$crc" <<'PY'
import collections, json, os, re, sys

d, tmp, vrc, crc = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
files = [l.rstrip("\n") for l in open(os.path.join(tmp, "files")) if l.strip()]
problems = [l.rstrip("\n") for l in open(os.path.join(tmp, "problems")) if l.strip()]
notes = open(os.path.join(tmp, "notes")).read().splitlines()
summary = next((l for l in reversed(notes) if re.match(r"^\d+ path\(s\), ", l)), "")
m = re.match(r"^\d+ path\(s\), (\d+) template\(s\), (\d+) problem\(s\), (\d+) note\(s\)$", summary)
if vrc not in (0, 1) or not m:
    print(f"moonwatch validate failed (exit {vrc}):", *notes[-5:], sep="\n  ")
    sys.exit(2)
templates = int(m.group(1))
metrics = sum(1 for f in files if os.path.basename(f) in ("metrics.yaml", "metrics.yml"))
failed = {p.split(":", 1)[0] for p in problems}

print(f"conf.d: {d}")
print(f"  files:         {len(files)} the Datadog Agent would read"
      + (f" ({metrics} JMX metrics.yaml, not configs)" if metrics else ""))
print(f"  templates:     {templates} loaded; {len(files) - metrics - templates - len(failed)} "
      "other files are not checks (logs only, JMX metric lists)")
print(f"  problems:      {len(problems)} (in {len(failed)} file(s))")
for p in problems:
    print(f"    {p}")

if crc == 0:
    doc = json.load(open(os.path.join(tmp, "cc.json")))
    mine = lambda o: str(o.get("source", "")).startswith(d + "/")
    static = [o for o in doc["resolved"] if mine(o)]
    idle = [o for o in doc["not_scheduled"] if mine(o)]
    idle_files = {o["source"] for o in idle}
    why = collections.Counter()
    for o in idle:
        r = o["reason"]
        if r.startswith("configuration discovery"):
            why["configuration discovery"] += 1
        elif r.startswith("every item of"):
            why["only empty instance items"] += 1
        elif r.startswith("\"advanced_ad_identifiers\""):
            why["advanced_ad_identifiers (Kubernetes)"] += 1
        else:
            why["no check script here"] += 1
    no_check = [o for o in idle if "no check named" in o["reason"]]
    checks = sorted({o["check"] for o in no_check})
    print(f"  static:        {len(static)} instance(s) would run at start")
    print(f"  waiting:       {templates - len(idle_files) - len({o['source'] for o in static})} "
          "template(s) wait for a container to match")
    print(f"  not scheduled: {len(idle)} template(s)"
          + "".join(f"\n    {n:4d}  {k}" for k, n in why.most_common()))
    if checks:
        print(f"  no check here: {len(no_check)} template(s) of {len(checks)} check(s) with no "
              f"script: {', '.join(checks)}")
else:
    print("  (configcheck failed: " + open(os.path.join(tmp, "cc.err")).read().strip()[:200] + ")")
print(f"result: {'OK' if not problems else 'FAILED'} ({len(files)} files, {len(problems)} errors)")
sys.exit(1 if problems else 0)
PY
