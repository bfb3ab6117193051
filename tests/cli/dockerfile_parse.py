#!/usr/bin/env python3
"""Reads deploy/Dockerfile for tests/cli/dockerfile.sh: prints one fact a
line, fields separated by tabs:

  prefix   <value of ARG MW_PREFIX>
  from     <stage number> <image>
  pkg      build|runtime <package>        (after `apt-get install`)
  copy     <source>                       (COPY without --from)
  install  <argument>...                  (after `cmake --install build`)
  user|healthcheck|entrypoint|cmd <text>  (of the last stage)

Only what the Dockerfile's header promises is read: continuation lines,
comments, shell-form RUN and COPY."""
import shlex
import sys


def instructions(path):
    """(KEYWORD, rest) per instruction, continuation lines joined."""
    cur = ""
    with open(path, encoding="utf-8") as f:
        for raw in f:
            line = raw.rstrip("\n")
            if line.lstrip().startswith("#") and not cur:
                continue
            if line.endswith("\\"):
                cur += line[:-1] + " "
                continue
            cur += line
            if cur.strip():
                word, _, rest = cur.strip().partition(" ")
                yield word.upper(), rest.strip()
            cur = ""


def segments(cmd):
    """The commands of a shell line, split at && and ;."""
    for part in cmd.replace(";", "&&").split("&&"):
        yield shlex.split(part)


def main(path):
    args = {}
    stages = 0
    last = {}
    for word, rest in instructions(path):
        if word == "ARG":
            name, eq, value = rest.partition("=")
            if eq and stages == 0:
                args[name] = value
                print(f"prefix\t{value}" if name == "MW_PREFIX" else f"arg\t{name}\t{value}")
        elif word == "FROM":
            stages += 1
            print(f"from\t{stages}\t{rest.split()[0]}")
            last = {}
        elif word == "RUN":
            for seg in segments(rest):
                while seg and "=" in seg[0]:  # VAR=value before the command
                    seg = seg[1:]
                if seg[:2] == ["apt-get", "install"]:
                    for p in seg[2:]:
                        if not p.startswith("-"):
                            print(f"pkg\t{'build' if stages == 1 else 'runtime'}\t{p}")
                if seg[:3] == ["cmake", "--install", "build"]:
                    out = []
                    for a in seg[3:]:
                        for k, v in args.items():
                            a = a.replace("${" + k + "}", v).replace("$" + k, v)
                        out.append(a)
                    print("install\t" + "\t".join(out))
        elif word == "COPY":
            parts = shlex.split(rest)
            if not any(p.startswith("--from") for p in parts):
                for src in parts[:-1]:
                    print(f"copy\t{src}")
        elif word in ("USER", "HEALTHCHECK", "ENTRYPOINT", "CMD"):
            last[word] = rest
    for word, rest in last.items():
        print(f"{word.lower()}\t{rest}")


if __name__ == "__main__":
    main(sys.argv[1])
