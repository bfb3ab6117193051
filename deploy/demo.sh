#!/usr/bin/env bash
# The demo: builds moonwatch and runs it for a while with the bundled
# checks (host metrics from /proc, moonwatch watching itself) flushing
# JSON lines every 5 seconds. DEMO_SECONDS sets how long (default 35).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash .ci/deps.sh >/dev/null
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" --target moonwatch_cli >/dev/null
secs=${DEMO_SECONDS:-35}
echo "== moonwatch run (for ${secs}s): bundled checks every 5 s, flushed every 5 s" >&2
timeout -s INT "$secs" ./build/moonwatch run --flush-interval 5 \
    --templates-dir deploy/demo/templates --checks-dir deploy/demo/checks \
    --set default_interval=5 || [ $? -eq 124 ]
