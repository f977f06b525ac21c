#!/usr/bin/env bash
# Installs the external services the tests run against, when missing: etcd (Debian packages
# etcd-server and etcd-client) and Redis (redis-server). Runs before `npm test` (the "pretest"
# script). Quiet when everything is already installed: one line.
set -euo pipefail

# command on PATH -> Debian packages that provide it
declare -a wanted=(
  "etcd:etcd-server etcd-client"
  "redis-server:redis-server"
)

missing_cmds=()
missing_pkgs=()
for entry in "${wanted[@]}"; do
  cmd=${entry%%:*}
  pkgs=${entry#*:}
  if ! command -v "$cmd" >/dev/null 2>&1; then
    missing_cmds+=("$cmd")
    read -r -a list <<<"$pkgs"
    missing_pkgs+=("${list[@]}")
  fi
done

if [ "${#missing_cmds[@]}" -eq 0 ]; then
  echo "install-services: etcd and redis-server already installed"
  exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
  as_root=()
elif command -v sudo >/dev/null 2>&1; then
  as_root=(sudo)
else
  echo "install-services: ${missing_cmds[*]} not installed, and this is not root and sudo is missing." >&2
  echo "install-services: as root, run: apt-get update && apt-get install -y ${missing_pkgs[*]}" >&2
  exit 1
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-services: apt-get not found; install ${missing_pkgs[*]} (Debian package names) by hand." >&2
  exit 1
fi

echo "install-services: missing ${missing_cmds[*]}; installing ${missing_pkgs[*]}"
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update -qq
"${as_root[@]}" apt-get install -y -qq --no-install-recommends "${missing_pkgs[@]}"

for cmd in "${missing_cmds[@]}"; do
  if ! command -v "$cmd" >/dev/null 2>&1; then
    echo "install-services: $cmd is still not on PATH after installing ${missing_pkgs[*]}" >&2
    exit 1
  fi
done
echo "install-services: installed ${missing_pkgs[*]}"
