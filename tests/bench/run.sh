#!/usr/bin/env bash
# Builds the benchmarks (optimized) and runs each one; they print figures.
# bench_discovery runs its two modes one after the other (CHURN_SECONDS
# shortens the churn, 60 s by default). bench_docker_latency needs a real
# Docker engine: docker_latency.sh starts a private one (root, docker.io,
# busybox-static) and runs it with 200 containers, plain and as ECS task
# containers. bench_ecs needs nothing but its in-process fakes.
set -euo pipefail
# Loopback only: on a host whose firmware says EC2, moonwatch would ask the
# instance metadata service (169.254.169.254) for its host name.
export AWS_EC2_METADATA_DISABLED=true
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
bash .ci/deps.sh >/dev/null
cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release -DMW_BENCH=ON >/dev/null
cmake --build build-bench -j"$(nproc)" >/dev/null
for b in build-bench/tests/bench/bench_*; do
  [ -x "$b" ] || continue
  case $(basename "$b") in
  bench_discovery)
    for mode in sync churn; do
      echo "== bench_discovery $mode"
      "$b" "$mode"
    done
    continue
    ;;
  bench_docker_latency)
    echo "== bench_docker_latency (private Docker engine)"
    bash tests/bench/docker_latency.sh "$b" 200
    echo "== docker_churn (private Docker engine)"
    bash tests/bench/docker_churn.sh build-bench/moonwatch 40 5
    continue
    ;;
  esac
  echo "== $(basename "$b")"
  MOONWATCH_DATADIR="$root" "$b"
done
