#!/usr/bin/env bash
# Builds crates/hesse-wasm for wasm32 twice and generates the JS glue into ts/wasm/
# (wasm-bindgen --target web: an ES module whose init takes a URL, Response, bytes or Module,
# which is what lets one build serve Node, Deno, browsers and edge runtimes):
#
#   ts/wasm/hesse_bg.wasm          +simd128                (every runtime hesse targets)
#   ts/wasm/hesse_relaxed_bg.wasm  +simd128,+relaxed-simd  (Lanes::mul_add = relaxed_madd; Deno,
#                                  Chromium, workerd; Node 20 only with --experimental-wasm-relaxed-simd)
#
# The two have the same exports, so wasm-bindgen writes the same hesse.js for both (checked
# below): one glue module serves either .wasm, which ts/runtime.ts picks by WebAssembly.validate.
# Each .wasm carries a custom section `hesse.build` naming its build, so init can say which one
# it got even when the caller supplied the module. The builds use separate target dirs (their
# RUSTFLAGS differ, which would otherwise rebuild everything each time) and run in parallel.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f target/hesse-toolchain.env ] || bash scripts/setup-toolchain.sh
. target/hesse-toolchain.env
build() { cargo ${CARGO_TOOLCHAIN:-} build -q --release --target wasm32-unknown-unknown -p hesse-wasm "$@"; }
# simd128 comes from .cargo/config.toml; RUSTFLAGS replaces that setting, so it names both features.
build & simd=$!
RUSTFLAGS="${RUSTFLAGS:+$RUSTFLAGS }-C target-feature=+simd128,+relaxed-simd" build --target-dir target/relaxed & relaxed=$!
status=0
wait $simd || status=$?
wait $relaxed || status=$? # both finish before a failure exits, so no cargo is left running
[ "$status" = 0 ] || { echo "[build-wasm] cargo build failed" >&2; exit "$status"; }
rm -rf ts/wasm target/relaxed/glue
wasm-bindgen --target web --out-dir ts/wasm --out-name hesse target/wasm32-unknown-unknown/release/hesse_wasm.wasm
wasm-bindgen --target web --out-dir target/relaxed/glue --out-name hesse target/relaxed/wasm32-unknown-unknown/release/hesse_wasm.wasm
for f in hesse.js hesse.d.ts; do
  cmp -s "ts/wasm/$f" "target/relaxed/glue/$f" || { echo "[build-wasm] the relaxed build's $f differs from the simd128 build's: one glue cannot serve both" >&2; exit 1; }
done
cp target/relaxed/glue/hesse_bg.wasm ts/wasm/hesse_relaxed_bg.wasm
node scripts/tag-wasm.mjs ts/wasm/hesse_bg.wasm simd128
node scripts/tag-wasm.mjs ts/wasm/hesse_relaxed_bg.wasm relaxed-simd
for f in hesse_bg.wasm hesse_relaxed_bg.wasm; do echo "[build-wasm] ts/wasm/$f: $(stat -c %s "ts/wasm/$f") bytes" >&2; done
