#!/usr/bin/env bash
# The cluster test also runs the processes through PgBouncer in transaction mode. It uses
# Debian's PgBouncer, installed here when it is missing.
set -euo pipefail

if command -v pgbouncer >/dev/null 2>&1; then
  exit 0
fi
echo "PgBouncer is not installed; installing it with apt-get"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q pgbouncer
