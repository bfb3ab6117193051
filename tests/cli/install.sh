#!/usr/bin/env bash
# `cmake --install`: installs the build into a temporary prefix, moves
# the prefix elsewhere (everything installed must be relocatable), then
# checks the layout (binary, libmoonwatch.so with its SONAME, the header,
# moonwatch.pc, the bundled checks and templates), builds
# examples/embed.c with `pkg-config --cflags --libs moonwatch` alone and
# runs it, and runs the installed `moonwatch`: both must find the
# bundled checks in the prefix's share/moonwatch, from their own path.
# Arguments: the built moonwatch binary (in the build directory), the
# source directory.

# ok always succeeds, so `test && ok || bad` is an if-then-else here.
# shellcheck disable=SC2015
set -uo pipefail
mw=$1
src=$2
build=$(dirname "$mw")
# shellcheck source-path=SCRIPTDIR source=lib/tally.sh
. "$(dirname "$0")/lib/tally.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
unset MOONWATCH_DATADIR

for tool in cmake pkg-config cc readelf; do
  command -v "$tool" >/dev/null || { echo "SKIP: no $tool"; exit 77; }
done

if cmake --install "$build" --prefix "$tmp/first" >"$tmp/install.log" 2>&1; then ok; else
  bad "cmake --install failed: $(tail -5 "$tmp/install.log")"
  exit 1
fi
# Relocatable: nothing may point back at the directory it was installed to.
mv "$tmp/first" "$tmp/prefix"
p=$tmp/prefix

# The layout.
for f in bin/moonwatch include/moonwatch.h lib/pkgconfig/moonwatch.pc \
         share/moonwatch/checks/system.lua share/moonwatch/templates/system.d/conf.yaml.default; do
  [ -f "$p/$f" ] && ok || bad "$f not installed"
done
[ -x "$p/bin/moonwatch" ] && ok || bad "bin/moonwatch is not executable"
real=$(readlink -f "$p/lib/libmoonwatch.so")
[ -f "$real" ] && ok || bad "lib/libmoonwatch.so missing or dangling"
soname=$(readelf -d "$real" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[ "$soname" = libmoonwatch.so.0 ] && ok || bad "SONAME '$soname', want libmoonwatch.so.0"
[ -L "$p/lib/$soname" ] && [ "$(readlink -f "$p/lib/$soname")" = "$real" ] && ok \
  || bad "no $soname link to the library"
n_checks=$(find "$src/checks" -name '*.lua' | wc -l)
[ "$(find "$p/share/moonwatch/checks" -name '*.lua' | wc -l)" = "$n_checks" ] && ok \
  || bad "not every bundled check installed"

# pkg-config from the prefix alone.
export PKG_CONFIG_PATH=$p/lib/pkgconfig
version=$(sed -n 's/^#define MW_VERSION  *"\(.*\)"/\1/p' "$p/include/moonwatch.h")
[ -n "$version" ] && [ "$(pkg-config --modversion moonwatch)" = "$version" ] && ok \
  || bad "pkg-config --modversion is not the header's version '$version'"
flags=$(pkg-config --cflags --libs moonwatch)
case "$flags" in *"$p/"*) ok ;; *) bad "pkg-config flags do not point into the prefix: $flags" ;; esac

# A marker check only the installed share/moonwatch holds: whoever runs it
# found the prefix's bundled directory, not the source tree's.
printf 'return { run = function(self) mw.gauge("marker.installed", 1) end }\n' \
  >"$p/share/moonwatch/checks/marker.lua"
mkdir -p "$p/share/moonwatch/templates/marker.d"
printf 'init_config:\ninstances:\n  - min_collection_interval: 1\n' \
  >"$p/share/moonwatch/templates/marker.d/conf.yaml"

# The example embedding program, built with what pkg-config says only
# (and, for a sanitizer build's library, the same sanitizer: its runtime
# must come first).
san=()
grep -q '^MW_SANITIZE:BOOL=ON' "$build/CMakeCache.txt" 2>/dev/null && san=("-fsanitize=address,undefined")
grep -q '^MW_TSAN:BOOL=ON' "$build/CMakeCache.txt" 2>/dev/null && san=(-fsanitize=thread)
# shellcheck disable=SC2086 # the flags are words
if cc -std=c11 -Wall -Wextra -Werror "${san[@]}" "$src/examples/embed.c" $flags -o "$tmp/embed" \
     2>"$tmp/cc.log"; then ok; else bad "examples/embed.c does not build: $(cat "$tmp/cc.log")"; fi
if [ -x "$tmp/embed" ]; then
  if out=$(cd "$tmp" && LD_LIBRARY_PATH=$p/lib timeout 60 ./embed "$tmp/work" 3 2>"$tmp/embed.err")
  then ok; else bad "embed exited non-zero: $out $(cat "$tmp/embed.err")"; fi
  grep -q '^metric hello.answer 42 from:embed' <<<"$out" && ok || bad "no hello.answer record: $out"
  grep -q '^metric marker.installed 1' <<<"$out" && ok \
    || bad "the library did not find the prefix's bundled checks: $out"
  libs=$(LD_LIBRARY_PATH=$p/lib ldd "$tmp/embed")
  grep -qF "$p/lib/libmoonwatch.so.0" <<<"$libs" && ok || bad "embed not linked to the prefix's library"
fi

# The installed binary, run from elsewhere: bundled checks from its prefix.
if out=$(cd / && "$p/bin/moonwatch" check system --log-level error); then ok; else
  bad "installed moonwatch check system failed"
fi
grep -q '"metric":"system.mem.total"' <<<"$out" && ok || bad "installed check system: no system.mem.total"
out=$(cd / && "$p/bin/moonwatch" check marker --log-level error) &&
  grep -q '"metric":"marker.installed"' <<<"$out" && ok \
  || bad "installed moonwatch did not find its prefix's share/moonwatch"
"$p/bin/moonwatch" validate "$p/share/moonwatch/templates" >"$tmp/validate.out" 2>&1 && ok \
  || bad "installed templates do not validate: $(cat "$tmp/validate.out")"
# ... and the build tree's binary still uses the source tree's checks.
"$mw" check marker --log-level off >/dev/null 2>&1 && bad "build-tree moonwatch found the prefix" || ok
out=$("$mw" check system --log-level error)
grep -q '"metric":"system.mem.total"' <<<"$out" && ok \
  || bad "build-tree moonwatch lost its bundled checks"

tally
