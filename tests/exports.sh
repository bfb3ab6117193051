#!/usr/bin/env bash
#
# exports.sh - the shared library exports exactly the calls moonwatch.h
# declares with MW_API, and holds nothing of the CLI.
#
#   tests/exports.sh LIBMOONWATCH_SO MOONWATCH_H
set -euo pipefail
so=$1 header=$2

exported=$(nm -D --defined-only "$so" | awk '$2 == "T" { print $3 }' | sort)
declared=$(tr '\n' ' ' <"$header" | grep -oE 'MW_API [^;{]*\(' |
    grep -oE '[a-z_0-9]+\($' | tr -d '(' | sort)
[ -n "$declared" ] || { echo "exports.sh: no MW_API declaration in $header" >&2; exit 2; }

status=0
extra=$(comm -23 <(echo "$exported") <(echo "$declared"))
missing=$(comm -13 <(echo "$exported") <(echo "$declared"))
if [ -n "$extra" ]; then
    echo "exported but not in moonwatch.h:" $extra >&2
    status=1
fi
if [ -n "$missing" ]; then
    echo "declared in moonwatch.h but not exported:" $missing >&2
    status=1
fi
# The CLI is a program on the library, not part of it.
if nm "$so" | grep -qE ' mw__(cmd|cli)_'; then
    echo "the CLI's code is in $so" >&2
    status=1
fi
[ $status -ne 0 ] || echo "exports.sh: $(wc -l <<<"$declared") calls exported, the CLI outside"
exit $status
