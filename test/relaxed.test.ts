/**
 * The two wasm builds: hesse_relaxed_bg.wasm (relaxed SIMD, `relaxed_madd` in the GEMM
 * microkernel and the towers) and hesse_bg.wasm (simd128). test/relaxed-compute.mjs runs the
 * package (dist/) in a child process per runtime: Node 20 without flags must pick simd128, Node
 * with --experimental-wasm-relaxed-simd and Deno must pick relaxed SIMD, and the builds' GEMMs,
 * gradients, HVPs, GGN diagonals and Hessians must agree within f32 rounding (relaxed madd may
 * fuse or not, so never bitwise), each also checked against the float64 program's values.
 * Needs the build (npm run build).
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const root = new URL('..', import.meta.url).pathname;
const script = `${root}test/relaxed-compute.mjs`;
const DENO = `${root}node_modules/.bin/deno`;
const RELAXED_WASM = `${root}dist/wasm/hesse_relaxed_bg.wasm`;
const SIMD_WASM = `${root}dist/wasm/hesse_bg.wasm`;
const FLAG = '--experimental-wasm-relaxed-simd';

interface Output {
  variant: string;
  error?: { code: string; message: string };
  results: Record<string, number[]>;
}

async function node(flags: string[], args: string[] = []): Promise<Output> {
  const { stdout } = await run(process.execPath, [...flags, script, ...args], { cwd: root, maxBuffer: 64 << 20 });
  return JSON.parse(stdout);
}

async function deno(): Promise<Output> {
  const { stdout } = await run(DENO, ['run', '--no-lock', '--no-prompt', `--allow-read=${root}dist,${root}node_modules`, script], { cwd: root, maxBuffer: 64 << 20 });
  return JSON.parse(stdout);
}

/** ‖x − y‖₂ / ‖y‖₂, computed in float64. */
function relErr(x: number[], y: number[]): number {
  expect(x.length).toBe(y.length);
  let d = 0;
  let n = 0;
  for (let i = 0; i < x.length; i++) {
    d += (x[i] - y[i]) ** 2;
    n += y[i] ** 2;
  }
  return Math.sqrt(d) / Math.sqrt(n);
}

/**
 * Normwise tolerances, about 10× the errors measured (2026-12-03): f32 GEMMs ≤ 3e-7 from the
 * float64 product and from each other; the MLP's loss, gradient, HVP and GGN diagonal and the
 * small Hessian (tanh, softmax, several GEMMs) ≤ 5e-7; float64 programs ≤ 7e-16 between builds.
 */
const TOL = { float32: { matmul: 3e-6, other: 5e-6 }, float64: 1e-14 };
const tolOf = (key: string) => (key.startsWith('matmul') ? TOL.float32.matmul : TOL.float32.other);

let simd: Output;
let relaxed: Output;
beforeAll(async () => {
  [simd, relaxed] = await Promise.all([node([]), node([FLAG])]);
}, 120_000);

describe('which build init() picks', () => {
  it('the relaxed build really needs relaxed SIMD: Node 20 without the flag rejects it, accepts the simd128 build', () => {
    expect(WebAssembly.validate(readFileSync(RELAXED_WASM))).toBe(false);
    expect(WebAssembly.validate(readFileSync(SIMD_WASM))).toBe(true);
  });

  it('Node without the flag: simd128 (the relaxed probe fails cleanly)', () => {
    expect(simd.variant).toBe('simd128');
  });

  it(`Node ${FLAG}: relaxed-simd`, () => {
    expect(relaxed.variant).toBe('relaxed-simd');
  });

  it('Deno: relaxed-simd, and the same values as Node with the flag (within f32 rounding)', async () => {
    const d = await deno();
    expect(d.variant).toBe('relaxed-simd');
    for (const [key, ys] of Object.entries(relaxed.results)) {
      expect(relErr(d.results[key], ys), key).toBeLessThanOrEqual(key.includes('float64') ? TOL.float64 : tolOf(key));
    }
  }, 60_000);

  it('init({ bytes }) of the relaxed build where relaxed SIMD is missing: LOAD_FAILED saying so; init() then loads simd128', async () => {
    const out = await node([], ['--bytes', RELAXED_WASM]);
    expect(out.error?.code).toBe('LOAD_FAILED');
    expect(out.error?.message).toContain('these are hesse_relaxed_bg.wasm, which needs relaxed SIMD, and this runtime lacks it');
    expect(out.error?.message).toContain('pass hesse_bg.wasm');
    expect(out.variant).toBe('simd128');
  });

  it('init({ bytes }) runs the build it is given, and wasmVariant() names it', async () => {
    const out = await node([FLAG], ['--bytes', SIMD_WASM]);
    expect(out.error).toBeUndefined();
    expect(out.variant).toBe('simd128');
  });
});

describe('the builds agree', () => {
  it('ran every quantity in both builds', () => {
    const keys = Object.keys(simd.results);
    expect(keys.length).toBe(2 * (3 + 5));
    expect(Object.keys(relaxed.results)).toEqual(keys);
    for (const k of keys) expect(simd.results[k].every(Number.isFinite), k).toBe(true);
  });

  it.each(['matmul', 'mlp', 'small'])('%s float32: relaxed vs simd128, and each vs the float64 program', (prefix) => {
    const keys = Object.keys(simd.results).filter((k) => k.startsWith(`${prefix} float32`));
    expect(keys.length).toBeGreaterThan(0);
    for (const key of keys) {
      const ref = simd.results[key.replace('float32', 'float64')];
      const tol = tolOf(key);
      expect(relErr(relaxed.results[key], simd.results[key]), `${key}: relaxed vs simd128`).toBeLessThanOrEqual(tol);
      expect(relErr(simd.results[key], ref), `${key}: simd128 vs float64`).toBeLessThanOrEqual(tol);
      expect(relErr(relaxed.results[key], ref), `${key}: relaxed vs float64`).toBeLessThanOrEqual(tol);
    }
  });

  it('float64 programs: relaxed vs simd128 within f64 rounding', () => {
    for (const key of Object.keys(simd.results).filter((k) => k.includes('float64'))) {
      expect(relErr(relaxed.results[key], simd.results[key]), key).toBeLessThanOrEqual(TOL.float64);
    }
  });
});
