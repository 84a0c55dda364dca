#!/usr/bin/env bash
# The browser tests drive Debian's Chromium through playwright-core. Playwright's own browser
# download needs a CDN these machines cannot reach, so the browser comes from apt, with the fonts
# that make screenshots legible.
set -euo pipefail

if [ -x /usr/bin/chromium ]; then
  exit 0
fi
echo "Chromium is not installed; installing it with apt-get"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q chromium fonts-liberation fonts-dejavu-core
