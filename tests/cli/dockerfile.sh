#!/usr/bin/env bash
# deploy/Dockerfile, checked without a registry to pull its base image
# from: it builds on Debian 12 (bookworm); every package it installs
# exists in Debian and the runtime stage installs the package of every
# library the program links; every file it copies exists; and its
# install step, run the same way (same prefix, into a temporary DESTDIR),
# gives a moonwatch that starts from there: it validates the bundled
# templates and runs a check with the packaged config. Also: a non-root
# USER, the health check on the status listener's /healthz, ENTRYPOINT
# `moonwatch run`. The facts come from tests/cli/dockerfile_parse.py.
# Arguments: the built moonwatch binary (in the build directory), the
# source directory.

# ok always succeeds, so `test && ok || bad` is an if-then-else here.
# shellcheck disable=SC2015
set -uo pipefail
mw=$1
src=$2
build=$(dirname "$mw")
dockerfile=$src/deploy/Dockerfile
# shellcheck source-path=SCRIPTDIR source=lib/tally.sh
. "$(dirname "$0")/lib/tally.sh"
skip() { echo "SKIP: $*"; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
unset MOONWATCH_DATADIR

if ! python3 "$src/tests/cli/dockerfile_parse.py" "$dockerfile" >"$tmp/facts" 2>"$tmp/parse.err"; then
  bad "cannot read $dockerfile: $(cat "$tmp/parse.err")"
  exit 1
fi
fact() { awk -F'\t' -v k="$1" '$1 == k { sub(/^[^\t]*\t/, ""); print }' "$tmp/facts"; }
prefix=$(fact prefix)
[ -n "$prefix" ] && [ "${prefix#/}" != "$prefix" ] && ok || bad "no absolute ARG MW_PREFIX=..."

# Debian 12 in every stage.
[ "$(fact from | wc -l)" -ge 2 ] && ok || bad "not a multi-stage build"
while IFS=$'\t' read -r _ image; do
  case "$image" in debian:bookworm | debian:bookworm-*) ok ;; *) bad "stage on $image, not debian:bookworm" ;; esac
done < <(fact from)

# Every package exists in Debian (the apt lists of this Debian 12 machine).
mapfile -t runtime < <(fact pkg | awk -F'\t' '$1 == "runtime" { print $2 }')
mapfile -t buildpkgs < <(fact pkg | awk -F'\t' '$1 == "build" { print $2 }')
[ ${#runtime[@]} -gt 0 ] && [ ${#buildpkgs[@]} -gt 0 ] && ok || bad "no apt-get install in a stage"
if ! command -v apt-cache >/dev/null; then
  skip "packages exist in Debian: no apt-cache here"
elif ! grep -q 'n=bookworm,' <<<"$(apt-cache policy 2>/dev/null)"; then
  skip "packages exist in Debian: apt has no Debian 12 (bookworm) package lists here"
else
  for p in "${runtime[@]}" "${buildpkgs[@]}"; do
    apt-cache show --no-all-versions "$p" >"$tmp/show" 2>/dev/null
    grep -qxF "Package: $p" "$tmp/show" && ok \
      || bad "package $p not in Debian"
  done
fi
for p in "${runtime[@]}"; do
  case "$p" in *-dev) bad "runtime stage installs $p" ;; esac
done
printf '%s\n' "${runtime[@]}" >"$tmp/runtime"

# Every file copied from the build context exists, and the build stage
# copies what CMakeLists.txt compiles and installs.
while read -r f; do
  [ -e "$src/$f" ] && ok || bad "COPY $f: not in the repository"
done < <(fact copy)
for need in CMakeLists.txt include/ core/ discovery/ lua/ checks/ templates/; do
  grep -qxF "$need" <<<"$(fact copy)" && ok || bad "the build stage does not COPY $need"
done

# The install step, as the Dockerfile runs it, into a temporary DESTDIR.
IFS=$'\t' read -r -a install_args < <(fact install)
[ ${#install_args[@]} -gt 0 ] && ok || bad "no 'cmake --install build ...' in a RUN"
root=$tmp/root
if DESTDIR=$root cmake --install "$build" "${install_args[@]}" >"$tmp/install.log" 2>&1; then ok; else
  bad "cmake --install ${install_args[*]} failed: $(tail -5 "$tmp/install.log")"
fi
bin=$root$prefix/bin/moonwatch
[ -x "$bin" ] && ok || bad "no $prefix/bin/moonwatch in the install"
[ -d "$root$prefix/share/moonwatch/checks" ] && ok || bad "no $prefix/share/moonwatch/checks"

# moonwatch starts from there: its bundled templates validate, a bundled
# check runs with the config the image ships.
if [ -x "$bin" ]; then
  (cd / && "$bin" validate "$root$prefix/share/moonwatch/templates") >"$tmp/validate.out" 2>&1 && ok \
    || bad "installed moonwatch validate: $(tail -5 "$tmp/validate.out")"
  out=$(cd / && "$bin" check system -c "$src/deploy/moonwatch.yaml" --log-level error) && ok \
    || bad "installed moonwatch check system failed"
  grep -q '"metric":"system.mem.total"' <<<"$out" && ok || bad "installed check: no system.mem.total"

  # ... and runs as the image's CMD says, its health check answering
  # (a port of its own instead of 5001; the state in the test's tmp).
  port=$((20000 + $$ % 20000))
  (cd / && exec "$bin" run -c "$src/deploy/moonwatch.yaml" --listen "127.0.0.1:$port" \
    --set state_dir="$tmp/state" --set docker=off --sink none) >"$tmp/run.out" 2>&1 &
  run_pid=$!
  health=''
  for _ in $(seq 50); do # at most 10 s
    health=$(curl -s --max-time 1 "http://127.0.0.1:$port/healthz") && [ "$health" = ok ] && break
    sleep 0.2
  done
  [ "$health" = ok ] && ok || bad "installed moonwatch run --listen: /healthz said '$health': $(tail -3 "$tmp/run.out")"
  kill "$run_pid" 2>/dev/null
  wait "$run_pid" 2>/dev/null

  # The runtime stage has the package of every library the program links.
  if command -v dpkg >/dev/null && command -v readelf >/dev/null; then
    while read -r lib; do
      case "$lib" in
        ld-linux*.so.* | libc.so.* | libm.so.*) ok; continue ;; # libc6, in every image
        libasan.so.* | libubsan.so.* | libtsan.so.*) continue ;; # a sanitizer build's, not the image's
      esac
      path=$(ldd "$bin" | awk -v l="$lib" '$1 == l { print $3 }')
      pkg=$(dpkg -S "$(readlink -f "$path")" 2>/dev/null | head -1 | cut -d: -f1)
      [ -n "$pkg" ] || pkg=$(dpkg -S "$path" 2>/dev/null | head -1 | cut -d: -f1)
      case "$pkg" in
        "") bad "$lib: no Debian package owns $path" ;;
        *) grep -qxF "$pkg" "$tmp/runtime" && ok || bad "$lib is in $pkg, not installed by the runtime stage" ;;
      esac
    done < <(readelf -d "$bin" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
  else
    skip "runtime packages cover the linked libraries: no dpkg or readelf here"
  fi
fi

# The last stage: not root, the health check on the listener, run.
user=$(fact user)
case "$user" in "" | root | 0 | 0:*) bad "USER '$user' is root or unset" ;; *) ok ;; esac
hc=$(fact healthcheck)
case "$hc" in *"CMD curl "*"http://127.0.0.1:5001/healthz"*) ok ;; *) bad "HEALTHCHECK is not curl on 127.0.0.1:5001/healthz: $hc" ;; esac
grep -qxF curl "$tmp/runtime" && ok || bad "HEALTHCHECK uses curl, not installed"
[ "$(fact entrypoint)" = '["moonwatch", "run"]' ] && ok || bad "ENTRYPOINT is not moonwatch run"
case "$(fact cmd)" in *'"--listen", "127.0.0.1:5001"'*) ok ;; *) bad "CMD does not listen on 127.0.0.1:5001" ;; esac
case "$(fact cmd)" in *'"-c", "/etc/moonwatch/moonwatch.yaml"'*) ok ;; *) bad "CMD does not use /etc/moonwatch/moonwatch.yaml" ;; esac

tally
