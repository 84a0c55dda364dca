#!/usr/bin/env bash
# The cluster suite also runs the processes through PgBouncer in transaction mode and behind
# HAProxy with deploy/haproxy.cfg. Both come from Debian, installed here when missing.
set -euo pipefail

missing=()
command -v pgbouncer >/dev/null 2>&1 || missing+=(pgbouncer)
command -v haproxy >/dev/null 2>&1 || missing+=(haproxy)
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "Installing ${missing[*]} with apt-get"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q "${missing[@]}"
