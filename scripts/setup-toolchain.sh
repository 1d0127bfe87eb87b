#!/usr/bin/env bash
# Installs what building hesse's wasm needs, only where it is missing, and says each step.
#
#   1. a Rust toolchain whose sysroot has the wasm32-unknown-unknown std;
#   2. wasm-bindgen-cli of exactly the version of the `wasm-bindgen` crate in Cargo.lock.
#
# Route for (1), first that works:
#   a. `rustc` already has the target (a user's machine after `rustup target add`): nothing to do;
#   b. `rustup target add wasm32-unknown-unknown` (where rustup can download);
#   c. Debian's rustc-web + rust-web-src: build the wasm32 std from source once and install it
#      into that toolchain's sysroot (this project's machines, which cannot reach rustup's servers).
# The chosen toolchain is written to target/hesse-toolchain.env, which scripts/build-wasm.sh reads.
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf '[setup] %s\n' "$*" >&2; }
ENV_FILE=target/hesse-toolchain.env
mkdir -p target

has_wasm_std() { # $1: a rustc command
  local sysroot
  sysroot="$($1 --print sysroot 2>/dev/null)" || return 1
  [ -d "$sysroot/lib/rustlib/wasm32-unknown-unknown/lib" ] &&
    ls "$sysroot"/lib/rustlib/wasm32-unknown-unknown/lib/libstd-*.rlib >/dev/null 2>&1
}

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

CARGO_TOOLCHAIN=""
if has_wasm_std rustc; then
  say "rustc $(rustc --version | cut -d' ' -f2) already has the wasm32 std: nothing to install"
elif command -v rustup >/dev/null && rustup target add wasm32-unknown-unknown >/dev/null 2>&1 && has_wasm_std rustc; then
  say "installed the wasm32 std with rustup"
else
  say "rustup cannot provide the wasm32 std here: using Debian's rustc-web and building std from its source"
  if ! { [ -x /usr/bin/rustc ] && [ -x /usr/lib/llvm-19/bin/lld ] && ls -d /usr/src/rustc-*/library/vendor >/dev/null 2>&1; }; then
    say "apt-get install rustc-web cargo-web rust-web-src lld-19"
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq rustc-web cargo-web rust-web-src lld-19 >/dev/null
  fi
  rustup toolchain link debian-web /usr
  # rustc links wasm with `rust-lld -flavor wasm`; Debian names it lld.
  command -v rust-lld >/dev/null || as_root ln -sf /usr/lib/llvm-19/bin/lld /usr/local/bin/rust-lld
  CARGO_TOOLCHAIN="+debian-web"
  if has_wasm_std /usr/bin/rustc; then
    say "the wasm32 std is already built into /usr/lib/rustlib"
  else
    src="$(ls -d /usr/src/rustc-*/ | sort -V | tail -1)"
    say "building the wasm32 std from $src (about a minute)"
    tmp="$(mktemp -d)"
    mkdir -p "$tmp/src" && echo > "$tmp/src/lib.rs"
    printf '[package]\nname = "hesse_std_probe"\nversion = "0.0.0"\nedition = "2021"\n[lib]\npath = "src/lib.rs"\n' > "$tmp/Cargo.toml"
    (cd "$tmp" && RUSTC_BOOTSTRAP=1 RUSTFLAGS="-C target-feature=+simd128" cargo +debian-web build -q --release \
      --target wasm32-unknown-unknown -Zbuild-std=std,panic_abort \
      --config 'source.crates-io.replace-with="vendored"' \
      --config "source.vendored.directory=\"${src}library/vendor\"")
    as_root mkdir -p /usr/lib/rustlib/wasm32-unknown-unknown/lib
    as_root cp "$tmp"/target/wasm32-unknown-unknown/release/deps/lib*.rlib /usr/lib/rustlib/wasm32-unknown-unknown/lib/
    as_root rm -f /usr/lib/rustlib/wasm32-unknown-unknown/lib/libhesse_std_probe-*.rlib
    rm -rf "$tmp"
    has_wasm_std /usr/bin/rustc || { say "the wasm32 std build did not install"; exit 1; }
  fi
fi
echo "CARGO_TOOLCHAIN=$CARGO_TOOLCHAIN" > "$ENV_FILE"

# wasm-bindgen-cli must match the crate exactly: the generated JS and the wasm's custom section agree only then.
want="$(awk '/^name = "wasm-bindgen"$/{getline; gsub(/[^0-9.]/,""); print; exit}' Cargo.lock)"
have="$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" || true
if [ "$have" = "$want" ]; then
  say "wasm-bindgen-cli $want present"
else
  say "cargo install wasm-bindgen-cli --version =$want (compiles from crates.io, a few minutes)"
  # --locked would pin the CLI's own dependencies, but registry mirrors may lack the exact
  # versions its lockfile names; the resolver picks compatible ones instead.
  cargo install -q wasm-bindgen-cli --version "=$want" --locked 2>/dev/null ||
    cargo install -q wasm-bindgen-cli --version "=$want"
fi
say "toolchain ready"
