#!/usr/bin/env bash
# Runs the browser end-to-end test against a running site:
#   BASE_URL=http://127.0.0.1:8080 services/web/browser/run.sh
# Installs Debian's chromium when /usr/bin/chromium is missing and the Node
# dependencies when node_modules is missing (no browser download). See
# e2e.mjs for EXPIRY_BASE_URL, SCENARIOS and SCREENSHOT_DIR.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../../.." && pwd)"

if [[ -z "${BASE_URL:-}" ]]; then
  echo "BASE_URL is not set (e.g. http://127.0.0.1:8080)" >&2
  exit 2
fi

# CHROMIUM names another Chromium-based browser (CI runners ship Chrome); by default the
# Debian package is used, and installed when missing.
if [[ -n "${CHROMIUM:-}" && ! -x "$CHROMIUM" ]]; then
  echo "CHROMIUM=$CHROMIUM is not an executable" >&2
  exit 2
fi
if [[ -z "${CHROMIUM:-}" && ! -x /usr/bin/chromium ]]; then
  echo "installing chromium (Debian package)" >&2
  sudo_=""
  if [[ "$(id -u)" != 0 ]]; then sudo_="sudo"; fi
  $sudo_ apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -qq chromium >/dev/null
fi

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "node and npm are needed (apt-get install nodejs npm)" >&2
  exit 2
fi

cd "$here"
if [[ ! -d node_modules/playwright-core ]]; then
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --prefer-offline --no-audit --no-fund
fi

export SCREENSHOT_DIR="${SCREENSHOT_DIR:-$root/target/browser-screenshots}"
exec node e2e.mjs
