#!/usr/bin/env bash
# Installs what building and testing moonwatch needs (Debian, as root):
# clang and its runtimes (libclang-rt-dev) build the fuzz targets;
# libssl-dev's libcrypto lets the tests' fake AWS server check SigV4;
# zlib1g-dev compresses the Datadog sink's payloads; libjemalloc-dev is
# the program's allocator (MW_MALLOC in CMakeLists.txt).
# python3-jsonschema validates deploy/ecs/*.json against tests/schemas.
# Skips apt entirely when everything is already there.
#
# The servers the bundled checks are tested against (nginx, redis-server,
# memcached, prometheus, prometheus-node-exporter) are started by the
# tests themselves on 127.0.0.1; their packages must not start them as
# services, so a policy-rc.d refuses service starts during the install.
set -euo pipefail
pkgs=(build-essential cmake pkg-config clang-format python3 python3-jsonschema openssl
      clang libclang-rt-dev
      libcurl4-openssl-dev libcjson-dev libyaml-dev liblua5.4-dev libssl-dev zlib1g-dev
      libjemalloc-dev
      docker.io busybox-static curl
      nginx redis-server memcached prometheus prometheus-node-exporter)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  policy=/usr/sbin/policy-rc.d made_policy=
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy"
    chmod +x "$policy"
    made_policy=1
  fi
  apt-get update
  apt-get install -y --no-install-recommends "${missing[@]}"
  [ -z "$made_policy" ] || rm -f "$policy"
fi
