#!/usr/bin/env python3
"""Reads what `moonwatch run --log-format json` wrote, for discovery.sh.

  events ERR              schedule/unschedule log lines, in order, as
                          "S inst cid name source" / "U inst cid"
  live ERR                the instances scheduled and not unscheduled since,
                          as "inst cid"; exit 3 on a duplicate (scheduled
                          twice with no unschedule between) or an
                          unschedule of an instance that was not scheduled
  audit ERR CID...        exactly one schedule and one unschedule per
                          container, the schedule first; exit 1 if not
  metric OUT NAME [--from N] TAG...
                          the last sample of NAME (from line N on, 1-based)
                          carrying every TAG, as "value check_id"; exit 1
                          when there is none
  tags OUT NAME CHECK_ID  the tags of the last sample of NAME by CHECK_ID
  configcheck FILE        a `configcheck --json` document as
                          "R service check id source instance-json" and
                          "U service check source reason" lines; exit 2
                          when its shape is wrong
  alljson FILE            exit 1 unless every line is a JSON object
  ecs_events OUT [TAG...] the ECS task events (source_type_name amazon_ecs)
                          carrying every TAG, one per line, in order:
                          "<ecs_event kind>\t<title>\t<text>\t<tags>"
                          (tags as one JSON list)

The JSON log line is {"time","level","source","msg"}; the messages are
"scheduled for docker://<64 hex> (<name>) from <source>" (source = the
instance id) and "unscheduled: docker://<64 hex>...".
"""
import json
import os
import re
import sys

SCHED = re.compile(r"^scheduled for docker://([0-9a-f]{64}) \((.*?)\) from (\S+)")
UNSCHED = re.compile(r"^unscheduled: docker://([0-9a-f]{64})")


def json_lines(path):
    """Parsed objects of a file; a line being written (no newline yet) or
    anything that is not a JSON object (sanitizer reports) is skipped."""
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            if not line.endswith("\n"):
                break
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            if isinstance(obj, dict):
                yield obj


def events(path):
    for o in json_lines(path):
        msg, src = o.get("msg"), o.get("source")
        if not isinstance(msg, str) or not isinstance(src, str):
            continue
        m = SCHED.match(msg)
        if m:
            yield ("S", src, m.group(1), m.group(2), m.group(3))
            continue
        m = UNSCHED.match(msg)
        if m:
            yield ("U", src, m.group(1))


def cmd_events(path):
    for e in events(path):
        print(" ".join(e))
    return 0


def cmd_live(path):
    live, rc = {}, 0
    for e in events(path):
        kind, inst, cid = e[0], e[1], e[2]
        if kind == "S":
            if inst in live:
                print(f"duplicate: {inst} scheduled for {cid} while live for "
                      f"{live[inst]}", file=sys.stderr)
                rc = 3
            live[inst] = cid
        elif live.pop(inst, None) is None:
            print(f"orphan unschedule: {inst} for {cid} was not scheduled",
                  file=sys.stderr)
            rc = 3
    for inst, cid in sorted(live.items()):
        print(inst, cid)
    return rc


def cmd_audit(path, cids):
    seq = {c: "" for c in cids}
    for e in events(path):
        if e[2] in seq:
            seq[e[2]] += e[0]
    bad = {c: s for c, s in seq.items() if s != "SU"}
    for c, s in sorted(bad.items()):
        print(f"{c[:12]}: schedule/unschedule sequence {s or 'empty'!r}, "
              "wanted 'SU'", file=sys.stderr)
    return 1 if bad else 0


def cmd_metric(path, name, args):
    start = 1
    if len(args) >= 2 and args[0] == "--from":
        start, args = int(args[1]), args[2:]
    want, last = set(args), None
    with open(path, encoding="utf-8", errors="replace") as f:
        for n, line in enumerate(f, 1):
            if n < start or not line.endswith("\n"):
                continue
            try:
                o = json.loads(line)
            except ValueError:
                continue
            if (isinstance(o, dict) and o.get("type") == "metric"
                    and o.get("metric") == name
                    and want <= set(o.get("tags") or [])):
                last = o
    if last is None:
        return 1
    print(json.dumps(last.get("value")), last.get("check_id"))
    return 0


def cmd_tags(path, name, check_id):
    tags = None
    for o in json_lines(path):
        if o.get("metric") == name and o.get("check_id") == check_id:
            tags = o.get("tags")
    print(json.dumps(tags))
    return 0 if tags is not None else 1


def cmd_configcheck(path):
    with open(path, encoding="utf-8") as f:
        try:
            doc = json.load(f)
        except ValueError as e:
            print(f"{path}: not one JSON document: {e}", file=sys.stderr)
            return 2
    want_r = {"check", "id", "service", "source", "init_config", "instance"}
    want_u = {"check", "service", "source", "reason"}
    res, unres = doc.get("resolved"), doc.get("unresolved")
    if not isinstance(res, list) or not isinstance(unres, list):
        print(f"{path}: wants lists 'resolved' and 'unresolved'", file=sys.stderr)
        return 2
    for r in res:
        if not isinstance(r, dict) or not want_r <= set(r):
            print(f"{path}: resolved item lacks {want_r - set(r or {})}", file=sys.stderr)
            return 2
        inst = json.dumps(r["instance"], sort_keys=True, separators=(",", ":"))
        print("R", r["service"], r["check"], r["id"], r["source"], inst)
    for u in unres:
        if not isinstance(u, dict) or not want_u <= set(u):
            print(f"{path}: unresolved item lacks {want_u - set(u or {})}", file=sys.stderr)
            return 2
        print("U", u["service"], u["check"], u["source"], u["reason"])
    return 0


def cmd_alljson(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        for n, line in enumerate(f, 1):
            try:
                if not isinstance(json.loads(line), dict):
                    raise ValueError("not an object")
            except ValueError as e:
                print(f"{path}:{n}: {e}: {line[:200]!r}", file=sys.stderr)
                return 1
    return 0


def cmd_ecs_events(path, want):
    want = set(want)
    for o in json_lines(path):
        tags = o.get("tags") or []
        if (o.get("type") != "event" or o.get("source_type_name") != "amazon_ecs"
                or not want <= set(tags)):
            continue
        kind = next((t.split(":", 1)[1] for t in tags if t.startswith("ecs_event:")), "?")
        print("\t".join([kind, str(o.get("title")), str(o.get("text")),
                         json.dumps(tags, separators=(",", ":"))]))
    return 0


def main(argv):
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    cmd, path, rest = argv[1], argv[2], argv[3:]
    if cmd == "events":
        return cmd_events(path)
    if cmd == "live":
        return cmd_live(path)
    if cmd == "audit":
        return cmd_audit(path, rest)
    if cmd == "metric" and rest:
        return cmd_metric(path, rest[0], rest[1:])
    if cmd == "tags" and len(rest) == 2:
        return cmd_tags(path, rest[0], rest[1])
    if cmd == "configcheck":
        return cmd_configcheck(path)
    if cmd == "alljson":
        return cmd_alljson(path)
    if cmd == "ecs_events":
        return cmd_ecs_events(path, rest)
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    try:
        rc = main(sys.argv)
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader (grep -q) stopped at its match: not a failure, and the
        # scripts run with pipefail. Keep Python from failing on the flush
        # at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        rc = 0
    sys.exit(rc)
