#!/usr/bin/env bash
# Installs what building and testing moonwatch needs (Debian, as root).
# Skips apt entirely when everything is already there.
set -euo pipefail
pkgs=(build-essential cmake pkg-config clang-format python3
      libcurl4-openssl-dev libcjson-dev libyaml-dev liblua5.4-dev
      docker.io busybox-static curl)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update
  apt-get install -y --no-install-recommends "${missing[@]}"
fi
