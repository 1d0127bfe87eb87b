#!/usr/bin/env bash
# From a fresh clone to a built package: toolchain (scripts/setup-toolchain.sh), npm packages,
# wasm + TypeScript build. With --test, also what the runtime tests need (Debian's Chromium;
# Deno, playwright-core and workerd come from npm).
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf '[bootstrap] %s\n' "$*" >&2; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

bash scripts/setup-toolchain.sh
if [ "${1:-}" = "--test" ] && ! [ -x /usr/bin/chromium ]; then
  say "apt-get install chromium (browser tests)"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq chromium >/dev/null
fi
say "npm ci"
npm ci --no-audit --no-fund --loglevel=error
say "building wasm and TypeScript"
npm run -s build
say "ready"
