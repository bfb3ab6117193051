#!/usr/bin/env python3
"""Validates ECS request files against the JSON schemas of tests/schemas.

  ecs_validate.py SCHEMA_DIR FILE...

Each tests/schemas/*.schema.json names the files it applies to with
"x-applies-to" (shell patterns on the file's name). Every schema must be
a valid draft 2020-12 schema that closes each object it describes
(additionalProperties: false), so that a misspelt field fails. Prints
"validated: FILE (SCHEMA)" or "no schema: FILE" per file, and each
problem as "FILE: /json/pointer: message"; exits 1 on any problem."""
import fnmatch
import json
import os
import sys

import jsonschema


def open_objects(node, where="#"):
    """Where an object schema lists properties without closing itself."""
    if isinstance(node, dict):
        if "properties" in node and node.get("additionalProperties") is not False:
            yield where
        for k, v in node.items():
            if k not in ("enum", "const", "if"):  # "if" tests, describes nothing
                yield from open_objects(v, f"{where}/{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from open_objects(v, f"{where}/{i}")


def main(schema_dir, files):
    problems = 0
    schemas = []
    for name in sorted(os.listdir(schema_dir)):
        if not name.endswith(".schema.json"):
            continue
        path = os.path.join(schema_dir, name)
        with open(path, encoding="utf-8") as f:
            schema = json.load(f)
        jsonschema.Draft202012Validator.check_schema(schema)
        for where in open_objects(schema):
            print(f"{path}: {where}: an object without additionalProperties: false")
            problems += 1
        if not schema.get("x-applies-to"):
            print(f"{path}: no x-applies-to")
            problems += 1
        schemas.append((name, schema, jsonschema.Draft202012Validator(schema)))
    for path in files:
        base = os.path.basename(path)
        match = [s for s in schemas if any(fnmatch.fnmatch(base, p) for p in s[1]["x-applies-to"])]
        if not match:
            print(f"no schema: {path}")
            continue
        if len(match) > 1:
            print(f"{path}: more than one schema applies: {[m[0] for m in match]}")
            problems += 1
            continue
        name, _, validator = match[0]
        try:
            with open(path, encoding="utf-8") as f:
                doc = json.load(f)
        except ValueError as e:
            print(f"{path}: not JSON: {e}")
            problems += 1
            continue
        errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))
        for e in errors:
            pointer = "/" + "/".join(str(p) for p in e.absolute_path)
            print(f"{path}: {pointer}: {e.message}")
        problems += len(errors)
        if not errors:
            print(f"validated: {path} ({name})")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2:]))
