#!/usr/bin/env bash
# Every test: Rust (kernels against their references, natively), the type check, vitest (the
# wasm build through the TS API), and the four runtimes (Node, Deno, Chromium, workerd).
set -euo pipefail
cd "$(dirname "$0")/.."
step() { printf '\n== %s\n' "$*" >&2; }
step "cargo test";        cargo test -q --workspace
step "tsc (type check)";  npx tsc -p tsconfig.json --noEmit
step "vitest";            npx vitest run
step "runtimes";          node test/runtimes/run-all.mjs
