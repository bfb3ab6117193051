#!/usr/bin/env bash
# The whole test suite: installs dependencies, checks formatting, builds
# with -Werror and runs ctest, then again under AddressSanitizer +
# UndefinedBehaviorSanitizer (leaks fail), then the unit tests under
# ThreadSanitizer (any report fails), then builds the libFuzzer targets
# with clang and runs each over its corpus and a fixed number of new
# inputs (a crash, leak or timeout fails).
set -euo pipefail
# Loopback only: on a host whose firmware says EC2, moonwatch would ask the
# instance metadata service (169.254.169.254) for its host name.
export AWS_EC2_METADATA_DISABLED=true
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash .ci/deps.sh

echo "== clang-format"
files=$(git ls-files '*.c' '*.h' 2>/dev/null || find core discovery lua include tests -name '*.[ch]')
clang-format --dry-run -Werror $files

jobs=$(nproc)
echo "== build + tests"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMW_WERROR=ON >/dev/null
cmake --build build -j"$jobs"
(cd build && ctest --output-on-failure -j"$jobs")

echo "== build + tests under ASan/UBSan"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DMW_WERROR=ON -DMW_SANITIZE=ON \
      -DMW_BENCH=OFF >/dev/null
cmake --build build-asan -j"$jobs"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:halt_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
(cd build-asan && ctest --output-on-failure -j"$jobs")

echo "== build + unit tests under ThreadSanitizer"
cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=Debug -DMW_WERROR=ON -DMW_TSAN=ON -DMW_BENCH=OFF >/dev/null
cmake --build build-tsan -j"$jobs"
export TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1
(cd build-tsan && ctest --output-on-failure -j"$jobs" -L unit)

echo "== fuzz targets (clang, libFuzzer + ASan/UBSan): corpus + fixed runs"
CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMW_WERROR=ON -DMW_FUZZ=ON \
      -DMW_BENCH=OFF >/dev/null
cmake --build build-fuzz -j"$jobs" --target fuzz_targets
(cd build-fuzz && ctest --output-on-failure -j"$jobs" -L fuzz)
