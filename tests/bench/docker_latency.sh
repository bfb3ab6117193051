#!/usr/bin/env bash
# Starts a private Docker engine (tests/integration/lib/dockerd.sh), imports
# the busybox image and runs bench_docker_latency against it, 1 and then 4
# containers started at a time, for each mode: "docker" (plain containers)
# and "ecs" (ECS task containers, with the in-process fake ECS agent).
# Usage: docker_latency.sh BENCH_BINARY [N [MODE...]]
set -euo pipefail
# Loopback only: on a host whose firmware says EC2, moonwatch would ask the
# instance metadata service (169.254.169.254) for its host name.
export AWS_EC2_METADATA_DISABLED=true
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=../integration/lib/dockerd.sh
. "$here/../integration/lib/dockerd.sh"
bin=$1
n=${2:-200}
shift $(($# < 2 ? $# : 2))
modes=("$@")
[ ${#modes[@]} -gt 0 ] || modes=(docker ecs)
dir=$(mktemp -d /tmp/mwbl.XXXXXX)
trap 'mw_dockerd_stop; rm -rf "$dir"' EXIT
mw_dockerd_start "$dir" >/dev/null
mw_dockerd_image busybox-mw:1 >/dev/null
for mode in "${modes[@]}"; do
  echo "-- $mode"
  "$bin" "$dir/docker.sock" busybox-mw:1 "$n" 1 "$mode"
  "$bin" "$dir/docker.sock" busybox-mw:1 "$n" 4 "$mode"
done
