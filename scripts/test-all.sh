#!/usr/bin/env bash
# Every test: Rust (kernels against their references, natively), the type check, vitest (the
# wasm build through the TS API), the runtimes (Node ESM and CommonJS, Deno, Chromium, workerd),
# and the package as users get it (npm pack, installed into a scratch project, the README's
# examples run there: test/packaging/pack.mjs). Needs a build (npm run build).
set -euo pipefail
cd "$(dirname "$0")/.."
step() { printf '\n== %s\n' "$*" >&2; }
step "cargo test";        cargo test -q --workspace
step "tsc (type check)";  node node_modules/typescript/bin/tsc -p tsconfig.json --noEmit  # TypeScript 7 by path: typescript5 also ships a tsc bin
step "vitest";            npx vitest run
step "runtimes";          node test/runtimes/run-all.mjs
step "packaging";         node test/packaging/pack.mjs
