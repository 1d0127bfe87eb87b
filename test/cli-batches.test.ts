/**
 * `--batch-size B` on the analysis commands, run as a user runs them (the built CLI, a
 * subprocess): with an x.npy of N samples, B dividing N and not, every command's JSON and --out
 * equal those of the single-batch run (the independent reference: the single-batch CLI is checked
 * against the library and PyTorch elsewhere) to 1e-12 with --f64; the JSON gains `samples` and
 * `batch_size`. Plus the bad input: a bad --batch-size, --wrt input with B < N, a model whose
 * batch dimension is fixed.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import * as h from '../ts/index.js';
import { analyze } from '../ts/cli/analyze.js';
import { encodeModel, hessian } from './cli-run.js';
import { expectClose, randn, rng } from './helpers.js';

await h.init();
const tmp = mkdtempSync(join(tmpdir(), 'hessian-batches-'));
const N = 10;
const [D, HID, C] = [3, 4, 3];

/** A float32 graph input/output whose first dimension is the symbolic 'N' (or fixed, given a number). */
const info = (name: string, dims: (number | string)[]) => ({
  name,
  type: { tensorType: { elemType: 1, shape: { dim: dims.map((d) => (typeof d === 'string' ? { dimParam: d } : { dimValue: d })) } } },
});
const r = rng(11);
const init = (name: string, dims: number[]) => ({ name, dims, dataType: 1, floatData: randn(r, dims.reduce((a, b) => a * b, 1)).map((v) => 0.8 * v) });

/** Gemm → Tanh → Gemm (P = 31), the batch dimension `batch` ('N': any batch size). */
async function mlp(batch: number | string, d = D): Promise<string> {
  const graph = {
    name: 'mlp',
    node: [
      { opType: 'Gemm', input: ['x', 'w1', 'b1'], output: ['h'], attribute: [{ name: 'transB', i: 1, type: 2 }] },
      { opType: 'Tanh', input: ['h'], output: ['t'] },
      { opType: 'Gemm', input: ['t', 'w2', 'b2'], output: ['f'], attribute: [{ name: 'transB', i: 1, type: 2 }] },
    ],
    initializer: [init('w1', [HID, d]), init('b1', [HID]), init('w2', [C, HID]), init('b2', [C])],
    input: [info('x', [batch, d])],
    output: [info('f', [batch, C])],
  };
  const f = join(tmp, `mlp-${batch}-${d}.onnx`);
  writeFileSync(f, await encodeModel(graph));
  return f;
}

const model = await mlp('N');
const P = HID * D + HID + C * HID + C;
const save = (name: string, arr: h.npy.NpyArray) => {
  const f = join(tmp, name);
  writeFileSync(f, h.npy.writeNpy(arr));
  return f;
};
const xs = save('x.npy', { dtype: 'float64', shape: [N, D], data: Float64Array.from(randn(r, N * D)) });
const ys = save('y.npy', { dtype: 'int64', shape: [N], data: BigInt64Array.from({ length: N }, (_, i) => BigInt(i % C)) });
const vs = save('v.npy', { dtype: 'float64', shape: [P], data: Float64Array.from(randn(r, P)) });
const data = ['--x', xs, '--y', ys, '--loss', 'ce'];

/** Runs a command with --json (and --out when `out`); its JSON and the array written. */
async function run(args: string[], out?: string): Promise<{ json: Record<string, unknown>; out?: Float32Array | Float64Array }> {
  const file = out && join(tmp, out);
  const res = await hessian([...args, '--json', ...(file ? ['--out', file] : [])]);
  expect(res.code, `${args.join(' ')}\n${res.stderr}`).toBe(0);
  const json = JSON.parse(res.stdout) as Record<string, unknown>;
  return { json, out: file ? (h.npy.parseNpy(readFileSync(file)).data as Float64Array) : undefined };
}

/** Every number in `a` (nested) within rtol of the same place in `b` (timings aside), and the same keys otherwise. */
function sameJson(a: unknown, b: unknown, rtol: number, where = ''): void {
  if (typeof b === 'number') {
    expect(typeof a, where).toBe('number');
    expect(Math.abs((a as number) - b), `${where}: ${a} vs ${b}`).toBeLessThanOrEqual(rtol * Math.max(1e-3, Math.abs(b)));
  } else if (Array.isArray(b)) {
    expect((a as unknown[]).length, where).toBe(b.length);
    b.forEach((v, i) => sameJson((a as unknown[])[i], v, rtol, `${where}[${i}]`));
  } else if (b && typeof b === 'object') {
    expect(Object.keys(a as object).sort(), where).toEqual(Object.keys(b).sort());
    // `seconds` is a timing, not a result: only its presence and type are compared.
    for (const [k, v] of Object.entries(b)) {
      if (k === 'seconds') expect(typeof (a as Record<string, unknown>)[k], `${where}.seconds`).toBe('number');
      else sameJson((a as Record<string, unknown>)[k], v, rtol, `${where}.${k}`);
    }
  } else expect(a, where).toEqual(b);
}

const COMMANDS: [string, string[], boolean, number][] = [
  // command, extra args, writes --out, rtol (Lanczos iterates to its own tolerance: looser)
  ['loss', [], false, 1e-12],
  ['grad', [], true, 1e-12],
  ['hvp', ['--v', vs], true, 1e-12],
  ['hvp', ['--v', vs, '--matrix', 'ggn'], true, 1e-12],
  ['hvp', ['--v', vs, '--matrix', 'fisher'], true, 1e-12],
  ['hessian', [], true, 1e-11],
  ['ggn', [], true, 1e-11],
  ['diag', [], true, 1e-12],
  ['diag', ['--matrix', 'hessian'], true, 1e-12],
  ['spectrum', ['--top', '3', '--bottom', '2', '--trace'], false, 1e-9],
];

describe('--batch-size: the batched run equals the single-batch run (--f64, 1e-12)', () => {
  it.each(COMMANDS)('%s %j', async (command, extra, out, rtol) => {
    const ref = await run([command, model, ...data, ...extra, '--f64'], out ? `${command}-ref.npy` : undefined);
    expect(ref.json.samples).toBe(N);
    expect(ref.json.batch_size).toBe(N);
    for (const B of [5, 4, 3]) {
      const got = await run([command, model, ...data, ...extra, '--f64', '--batch-size', String(B)], out ? `${command}-${B}.npy` : undefined);
      expect(got.json.samples).toBe(N);
      expect(got.json.batch_size).toBe(B);
      sameJson({ ...got.json, batch_size: N }, ref.json, rtol, `${command} B=${B}`);
      if (out) expectClose(got.out!, ref.out!, 1e-11, 1e-13);
    }
  });

  it('float32 (the default) agrees to float32 rounding; --batch-size ≥ N is one batch', async () => {
    const ref = await run(['grad', model, ...data], 'g32-ref.npy');
    const got = await run(['grad', model, ...data, '--batch-size', '4'], 'g32-4.npy');
    expect(got.out).toBeInstanceOf(Float32Array);
    expectClose(got.out!, ref.out!, 1e-5, 1e-6);
    const one = await run(['grad', model, ...data, '--batch-size', '1000'], 'g32-1000.npy');
    expect(one.json.batch_size).toBe(N);
    expect(one.out).toEqual(ref.out);
  });
});

describe('--batch-size: bad input, exit 2 with one line', () => {
  async function rejects(args: string[], pattern: RegExp): Promise<void> {
    const res = await hessian(args);
    expect(res.code, res.stderr).toBe(2);
    expect(res.stderr).toMatch(/^hessian: [^\n]+; [^\n]+\n$/);
    expect(res.stderr).toMatch(pattern);
    expect(res.stdout).toBe('');
  }
  it.each(['0', '-3', '2.5', 'many', '1e20'])('--batch-size %s', async (B) => {
    await rejects(['loss', model, ...data, '--batch-size', B], /--batch-size must be an integer .*e\.g\. --batch-size 256/);
  });

  it('--wrt input with B < N is refused (it differentiates all of x at once); B ≥ N works', async () => {
    await rejects(['grad', model, ...data, '--wrt', 'input', '--batch-size', '4'], /--wrt input differentiates with respect to all of --x \(10 samples\) at once.*drop --batch-size/);
    const ok = await run(['grad', model, ...data, '--wrt', 'input', '--batch-size', String(N), '--f64']);
    const ref = await run(['grad', model, ...data, '--wrt', 'input', '--f64']);
    sameJson(ok.json, ref.json, 0);
  });

  it('a batch dimension baked into a Reshape constant: another batch size is an error saying so', async () => {
    const graph = {
      name: 'baked',
      node: [
        { opType: 'Reshape', input: ['x', 'shape'], output: ['r'] },
        { opType: 'Gemm', input: ['r', 'w1', 'b1'], output: ['f'], attribute: [{ name: 'transB', i: 1, type: 2 }] },
      ],
      initializer: [init('w1', [C, D]), init('b1', [C]), { name: 'shape', dims: [2], dataType: 7, int64Data: [5, D] }],
      input: [info('x', ['N', D])],
      output: [info('f', ['N', C])],
    };
    const baked = join(tmp, 'baked.onnx');
    writeFileSync(baked, await encodeModel(graph));
    await rejects(['loss', baked, ...data, '--batch-size', '4'], /a batch of 4 samples \(N = 10 in batches of 4\) does not fit the model: ONNX node .*Reshape.*(batch dimension is fixed|bakes the batch size)/);
    // Batches of the baked size work: the mean of the two halves.
    const both = await run(['loss', baked, ...data, '--f64', '--batch-size', '5']);
    expect(both.json.batch_size).toBe(5);
    const all = h.npy.parseNpy(readFileSync(xs)).data as Float64Array;
    const halves = await Promise.all(
      [0, 5].map(async (s0) => {
        const xi = save(`xb-${s0}.npy`, { dtype: 'float64', shape: [5, D], data: all.slice(s0 * D, (s0 + 5) * D) });
        const yi = save(`yb-${s0}.npy`, { dtype: 'int64', shape: [5], data: BigInt64Array.from({ length: 5 }, (_, j) => BigInt((s0 + j) % C)) });
        return (await run(['loss', baked, '--x', xi, '--y', yi, '--loss', 'ce', '--f64'])).json.loss as number;
      }),
    );
    expect(Math.abs((both.json.loss as number) - (halves[0]! + halves[1]!) / 2)).toBeLessThan(1e-12);
  });

  it('a model whose input declares a fixed batch (the exporter without dynamic_axes) runs on any batch its graph allows: the short last batch included', async () => {
    // The declared [4, D] is the export's example batch; Gemm works on any N, so the batched
    // mean over N = 10 in batches of 4 (4, 4, 2) equals the unbatched loss over all 10.
    const fixed = await mlp(4);
    const whole = await run(['loss', fixed, ...data, '--f64']);
    for (const b of ['4', '5', '3']) {
      const batched = await run(['loss', fixed, ...data, '--f64', '--batch-size', b]);
      expect(batched.json.batch_size).toBe(Number(b));
      expect(Math.abs((batched.json.loss as number) - (whole.json.loss as number))).toBeLessThan(1e-12);
    }
  });
});

describe('--batch-size: memory', () => {
  it('x never enters wasm whole: the heap peak of a batched run is a fraction of the unbatched one', async () => {
    const [n, d] = [20000, 32];
    const wide = await mlp('N', d);
    const x = save('x-big.npy', { dtype: 'float64', shape: [n, d], data: Float64Array.from(randn(rng(2), n * d)) });
    const y = save('y-big.npy', { dtype: 'int64', shape: [n], data: BigInt64Array.from({ length: n }, (_, i) => BigInt(i % C)) });
    const io = { read: async (p: string) => readFileSync(p), writable: async () => {} };
    const peak = async (batchSize?: number) => {
      h.memoryStats({ resetPeak: true });
      const before = h.memoryStats().heapBytes;
      const res = await analyze('grad', io, wide, { x, y, loss: 'ce', f64: true, batchSize, workers: 1 }, () => {});
      return { bytes: h.memoryStats().heapPeakBytes - before, res };
    };
    const whole = await peak();
    const batched = await peak(500);
    expect(whole.bytes).toBeGreaterThan(n * d * 8); // x [20000, 32] float64 was staged whole
    expect(batched.bytes).toBeLessThan(whole.bytes / 8);
    expect(batched.res.json.batch_size).toBe(500);
    expectClose(batched.res.out!, whole.res.out!, 1e-11, 1e-13);
  });
});
