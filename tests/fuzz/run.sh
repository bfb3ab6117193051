#!/usr/bin/env bash
#
# run.sh - builds the libFuzzer targets with clang and runs each for a
# bounded time.
#
#   tests/fuzz/run.sh [seconds per target] [target...]
#
# Defaults: 30 seconds, every target: each fuzz_<target>.c next to this
# script is one (tests/CMakeLists.txt builds them all the same way).
# A <target>.dict next to this script is passed as its dictionary.
# BUILD_DIR (default /tmp/moonwatch-fuzz) holds the build, the grown
# corpora (BUILD_DIR/corpus/<target>, seeded from tests/fuzz/corpus) and
# any crash-* / leak-* / timeout-* reproducer. A reproducer replays with
#   BUILD_DIR/tests/fuzz_<target> <file>
# Needs clang and its fuzzer runtime (Debian: libclang-rt-14-dev).
# Exits non-zero when a target finds a problem.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
secs=${1:-30}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    for f in "$here"/fuzz_*.c; do
        t=${f##*/fuzz_}
        targets+=("${t%.c}")
    done
fi
build=${BUILD_DIR:-/tmp/moonwatch-fuzz}

CC=${CC:-clang} cmake -S "$src" -B "$build" -DMW_FUZZ=ON -DMW_BENCH=OFF \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j"$(nproc)" --target $(printf 'fuzz_%s ' "${targets[@]}")

status=0
for t in "${targets[@]}"; do
    corpus="$build/corpus/$t"
    mkdir -p "$corpus" "$build/artifacts/$t"
    dict=() seeds=()
    [ -f "$here/$t.dict" ] && dict=(-dict="$here/$t.dict")
    [ -d "$here/corpus/$t" ] && seeds=("$here/corpus/$t")
    echo "== fuzz_$t: ${secs}s"
    # Leaks are checked per input; the Lua target allocates through the
    # sandbox's capped allocator, whose state is freed with the sandbox.
    if ! "$build/tests/fuzz_$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
        -max_len=4096 -artifact_prefix="$build/artifacts/$t/" "${dict[@]}" \
        "$corpus" "${seeds[@]}"; then
        echo "fuzz_$t: found a problem, see $build/artifacts/$t/" >&2
        status=1
    fi
done
exit $status
