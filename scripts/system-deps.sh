#!/usr/bin/env bash
# Installs the Debian packages orroute builds against, when any is missing.
# As root it runs apt-get; otherwise it uses sudo if available, or says exactly what to install.
set -euo pipefail
packages=(build-essential cmake ninja-build libcurl4-openssl-dev libssl-dev rapidjson-dev catch2 libsqlite3-dev
          pkg-config libhiredis-dev)
# the tests' own services, and ccache: test builds of fresh clones reuse compiled objects
[ "${1:-}" = "--with-test-services" ] && packages+=(redis-server ccache)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "orroute: installing system packages: ${missing[*]}"
if [ "$(id -u)" -eq 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  sudo apt-get update -qq
  sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
else
  echo "orroute: not root and no passwordless sudo; please run:" >&2
  echo "  sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
