#!/usr/bin/env bash
# `moonwatch version`: the version and the allocator the program runs on,
# which is the one it links (jemalloc when the build found it, see
# MW_MALLOC in CMakeLists.txt), while libmoonwatch.so links none: an
# embedding program keeps its own.

# ok always succeeds, so `test && ok || bad` is an if-then-else here.
# shellcheck disable=SC2015
set -uo pipefail
mw=$1
src=$2
build=$(dirname "$mw")
# shellcheck source-path=SCRIPTDIR source=lib/tally.sh
. "$(dirname "$0")/lib/tally.sh"

out=$("$mw" version) && ok || bad "moonwatch version failed"
want=$(sed -n 's/^project(moonwatch VERSION \([0-9.]*\).*/\1/p' "$src/CMakeLists.txt")
[ -n "$want" ] && [ "$(sed -n 1p <<<"$out")" = "moonwatch $want" ] && ok \
  || bad "first line '$(sed -n 1p <<<"$out")', not 'moonwatch $want'"
[ "$("$mw" --version)" = "$out" ] && ok || bad "--version differs from version"

malloc=$(sed -n 's/^malloc: //p' <<<"$out")
if ldd "$mw" | grep -q 'libjemalloc\.so'; then
  case "$malloc" in "jemalloc 5."*) ok ;; *) bad "links jemalloc, says malloc: '$malloc'" ;; esac
else
  [ "$malloc" = libc ] && ok || bad "links no jemalloc, says malloc: '$malloc'"
fi

lib=$build/libmoonwatch.so
if [ -e "$lib" ]; then
  ldd "$lib" | grep -q 'libjemalloc\.so' && bad "libmoonwatch.so links jemalloc" || ok
else
  bad "no $lib beside the program"
fi

tally
