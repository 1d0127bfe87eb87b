#!/usr/bin/env bash
# Builds crates/hesse-wasm for wasm32 with simd128 and generates its JS glue into ts/wasm/
# (wasm-bindgen --target web: an ES module whose init takes a URL, Response, bytes or Module,
# which is what lets one build serve Node, Deno, browsers and edge runtimes).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f target/hesse-toolchain.env ] || bash scripts/setup-toolchain.sh
. target/hesse-toolchain.env
cargo ${CARGO_TOOLCHAIN:-} build -q --release --target wasm32-unknown-unknown -p hesse-wasm
rm -rf ts/wasm
wasm-bindgen --target web --out-dir ts/wasm --out-name hesse \
  target/wasm32-unknown-unknown/release/hesse_wasm.wasm
echo "[build-wasm] ts/wasm/hesse_bg.wasm: $(stat -c %s ts/wasm/hesse_bg.wasm) bytes" >&2
