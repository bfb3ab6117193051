#!/usr/bin/env bash
#
# layers.sh - fails when an #include points up the layers of DESIGN.md,
# or when a library's header is included outside the module that owns it.
#
#   tests/layers.sh [SOURCE_DIR]
#
# The layers, bottom up, and what each may include besides itself and
# the public header moonwatch.h:
#
#   base       core/base/     nothing
#   discovery  discovery/     base
#   sandbox    lua/           base
#   pipeline   core/pipeline/ base, sandbox
#              core/sinks/    (the sinks: part of the pipeline layer)
#   engine     core/*.[ch]    base, discovery, sandbox, pipeline
#   cli        core/cli/      everything below it (it is not in the library)
#
# Third-party headers that one module wraps: Lua only in lua/, libcurl
# only in core/base/http.c, libyaml only in core/base/yaml.c, zlib only in
# core/sinks/datadog.c.
set -euo pipefail
src=${1:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$src"

layer_of() {
    case "$1" in
    core/base/*) echo base ;;
    core/pipeline/* | core/sinks/*) echo pipeline ;;
    core/cli/*) echo cli ;;
    core/*/*) echo unknown ;;
    core/*) echo engine ;;
    discovery/*) echo discovery ;;
    lua/*) echo sandbox ;;
    *) echo unknown ;;
    esac
}

may_include() { # may_include FROM TO
    [ "$1" = "$2" ] && return 0
    case "$1:$2" in
    discovery:base | sandbox:base) return 0 ;;
    pipeline:base | pipeline:sandbox) return 0 ;;
    engine:base | engine:discovery | engine:sandbox | engine:pipeline) return 0 ;;
    cli:base | cli:discovery | cli:sandbox | cli:pipeline | cli:engine) return 0 ;;
    esac
    return 1
}

bad=0
report() {
    echo "$1" >&2
    bad=$((bad + 1))
}

files=$(find core discovery lua -name '*.[ch]' | sort)
[ -n "$files" ] || { echo "layers.sh: no sources under $src" >&2; exit 2; }
for f in $files; do
    from=$(layer_of "$f")
    [ "$from" != unknown ] || report "$f: not in any layer (see tests/layers.sh)"
    while IFS=: read -r line text; do
        inc=$(sed -E 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"([^"]+)".*/\1/' <<<"$text")
        [ "$inc" = moonwatch.h ] && continue
        to=$(layer_of "$inc")
        if [ "$to" = unknown ]; then
            report "$f:$line: #include \"$inc\" is not a file of any layer"
        elif ! may_include "$from" "$to"; then
            report "$f:$line: #include \"$inc\": $from may not include $to (it is above or beside it)"
        fi
    done < <(grep -nE '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$f" || true)
    owner_ok() { case "$f" in $1) return 0 ;; esac; return 1; }
    while IFS=: read -r line text; do
        case "$text" in
        *'<lua.h>'* | *'<lauxlib.h>'* | *'<lualib.h>'*) owner_ok 'lua/*' || report "$f:$line: Lua headers belong to lua/" ;;
        *'<curl/'*) owner_ok 'core/base/http.c' || report "$f:$line: libcurl belongs to core/base/http.c" ;;
        *'<yaml.h>'*) owner_ok 'core/base/yaml.c' || report "$f:$line: libyaml belongs to core/base/yaml.c" ;;
        *'<zlib.h>'*) owner_ok 'core/sinks/datadog.c' || report "$f:$line: zlib belongs to core/sinks/datadog.c" ;;
        esac
    done < <(grep -nE '^[[:space:]]*#[[:space:]]*include[[:space:]]*<' "$f" || true)
done

if [ "$bad" -gt 0 ]; then
    echo "layers.sh: $bad include(s) break the layering" >&2
    exit 1
fi
echo "layers.sh: $(wc -w <<<"$files") files, every include points down"
