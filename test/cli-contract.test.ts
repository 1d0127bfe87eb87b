/**
 * The CLI's contract, run as a user runs it (node dist/cli/main.js, a subprocess): exit code 0 on
 * success; on bad input exit code 2, exactly one line on stderr of the form
 * `hessian: <what is wrong>; <what to do>` naming the option, value, file or node, and no file
 * written (no --out, no --density, not even a partial one).
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import * as h from '../ts/index.js';
import { encodeModel, hessian, valueInfo as vi } from './cli-run.js';
import { relError } from './helpers.js';

await h.init();
const fixtures = new URL('./fixtures/onnx/', import.meta.url).pathname;
const tmp = mkdtempSync(join(tmpdir(), 'hessian-cli-'));

/** Nothing new in the scratch directory since `before` (no output file, no temporary file). */
const files = () => readdirSync(tmp).sort();

/** Runs `args`; expects exit 2, one `hessian: …; …` line matching every pattern, no new files. */
async function rejects(args: string[], ...patterns: RegExp[]): Promise<string> {
  const before = files();
  const r = await hessian(args);
  expect(r.code, `${args.join(' ')}\n${r.stderr}`).toBe(2);
  expect(r.stderr, args.join(' ')).toMatch(/^hessian: [^\n]+; [^\n]+\n$/);
  for (const p of patterns) expect(r.stderr, args.join(' ')).toMatch(p);
  expect(r.stdout).toBe('');
  expect(files()).toEqual(before);
  return r.stderr;
}

const c = 'mlp_tanh_ce'; // P = 83, x [6, 6], y int64 labels in 0..3
const model = join(fixtures, c, 'model.onnx');
const data = ['--x', join(fixtures, c, 'x.npy'), '--y', join(fixtures, c, 'y.npy'), '--loss', 'ce'];
const P = 83;

describe('usage errors (commander) in the same one-line form', () => {
  it.each([
    [['--frobnicate'], /unknown option '--frobnicate'.*run 'hessian --help'/],
    [['frobnicate'], /unknown command 'frobnicate'.*run 'hessian --help'/],
    [[], /no command given; run 'hessian --help'/],
    [['spectrum', model, ...data, '--tpo', '3'], /unknown option '--tpo'.*--top.*run 'hessian spectrum --help'/],
    [['spectrum', model, ...data, '--top'], /option '--top <k>' argument missing; run 'hessian spectrum --help'/],
    [['grad', model], /required option '--x <file>' not specified; run 'hessian grad --help'/],
    [['grad', '--x', 'x.npy', '--loss', 'mse'], /missing required argument 'model'/],
    [['grad', model, ...data.slice(0, 4), '--loss', 'hinge'], /'--loss <loss>' argument 'hinge' is invalid.*mse, ce, bce, mean-output/],
    [['spectrum', model, ...data, '--matrix', 'kfac', '--top', '1'], /'--matrix <m>' argument 'kfac' is invalid.*hessian, ggn, fisher/],
    [['grad', model, ...data, '--wrt', 'weights'], /'--wrt <what>' argument 'weights' is invalid.*params, input/],
  ])('%j', async (args, why) => {
    await rejects(args, why);
  });

  it('--help and --version exit 0; --version prints package.json\'s version', async () => {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
    for (const flag of ['--version', '-V']) {
      const r = await hessian([flag]);
      expect(r.code).toBe(0);
      expect(r.stdout).toBe(`${pkg.version}\n`);
    }
    const help = await hessian(['spectrum', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/Usage: hessian spectrum/);
  });
});

const npyOf = (f: string) => h.npy.parseNpy(readFileSync(f));
/** Writes an array into the scratch directory's `inputs/` (so the top level stays empty for the no-file checks). */
const inputs = join(tmp, '..', `${tmp.split('/').pop()}-inputs`);
mkdirSync(inputs, { recursive: true });
function save(name: string, arr: h.npy.NpyArray): string {
  const f = join(inputs, name);
  writeFileSync(f, h.npy.writeNpy(arr));
  return f;
}
const x0 = npyOf(join(fixtures, c, 'x.npy'));
const y0 = npyOf(join(fixtures, c, 'y.npy'));

describe('numeric options: exit 2 naming the option and the value', () => {
  it.each([
    [['--top', 'abc'], /--top must be an integer ≥ 1, got 'abc'; e\.g\. --top 5/],
    [['--top', '-1'], /--top must be an integer ≥ 1, got -1/],
    [['--top', '1.5'], /--top must be an integer ≥ 1, got 1\.5/],
    [['--top', '0'], /--top must be an integer ≥ 1, got 0/],
    [['--top', ''], /--top must be an integer ≥ 1, got ''/],
    [['--bottom', 'two'], /--bottom must be an integer ≥ 1, got 'two'/],
    [['--bottom', '2e0x'], /--bottom must be an integer ≥ 1, got '2e0x'/],
    [['--top', '1', '--seed', 'xyz'], /--seed must be an integer ≥ 0, got 'xyz'; e\.g\. --seed 1/],
    [['--top', '1', '--seed', '-3'], /--seed must be an integer ≥ 0, got -3/],
    [['--top', '1', '--seed', '0.5'], /--seed must be an integer ≥ 0, got 0\.5/],
    [['--top', `${P + 1}`], new RegExp(`--top ${P + 1} asks for more eigenvalues than the ${P} there are.*at most ${P}`)],
    [['--bottom', '1000'], /--bottom 1000 .*P = 83/],
    [['--top', '1', '--repeat', '0'], /--repeat must be an integer ≥ 1, got 0; e\.g\. --repeat 5/],
    [['--top', '1', '--repeat', '2.5'], /--repeat must be an integer ≥ 1, got 2\.5/],
  ])('spectrum %j', async (opts, why) => {
    await rejects(['spectrum', model, ...data, ...opts], why);
  });
  it('valid counts run (exit 0)', async () => {
    const r = await hessian(['spectrum', model, ...data, '--top', '2', '--bottom', '1', '--seed', '3', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.top).toHaveLength(2);
    expect(j.bottom).toHaveLength(1);
  });
  it('--workers 2 (a worker pool, each with a shard of --x) equals --workers 1 (in this thread)', async () => {
    const run = async (args: string[]) => {
      const r = await hessian([...args, '--json']);
      expect(r.code, r.stderr).toBe(0);
      return JSON.parse(r.stdout);
    };
    for (const args of [['hvp', model, ...data, '--v', join(fixtures, c, 'v.npy'), '--f64'], ['spectrum', model, ...data, '--top', '2', '--trace', '--f64'], ['hessian', model, ...data, '--f64']]) {
      const [one, two] = [await run([...args, '--workers', '1']), await run([...args, '--workers', '2'])];
      for (const key of ['loss', 'product_norm', 'trace', 'frobenius']) {
        if (key in one) expect(relError([two[key]], [one[key]]), `${args[0]} ${key}`).toBeLessThan(1e-10);
      }
      for (const key of ['top', 'eigenvalues']) {
        if (key in one) expect(relError(Float64Array.from(two[key]), Float64Array.from(one[key])), `${args[0]} ${key}`).toBeLessThan(1e-8);
      }
    }
    await rejects(['hvp', model, ...data, '--v', join(fixtures, c, 'v.npy'), '--workers', '0'], /--workers must be an integer ≥ 1, got 0/);
    // Shards of a model normalized with batch statistics would each get their own: refused.
    const bn = new URL('./fixtures/models/bn_dropout_mlp/', import.meta.url).pathname;
    await rejects(['grad', join(bn, 'op17_train.onnx'), '--x', join(bn, 'x.npy'), '--y', join(bn, 'y.npy'), '--loss', 'ce', '--workers', '2'], /--workers 2 splits --x.*batch statistics.*--workers 1/);
  });
  it('--repeat R: the same results, and seconds (the median of one computation) a positive number', async () => {
    const once = JSON.parse((await hessian(['spectrum', model, ...data, '--top', '2', '--json'])).stdout);
    const r = await hessian(['spectrum', model, ...data, '--top', '2', '--repeat', '3', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.top).toEqual(once.top);
    for (const s of [j.seconds, once.seconds]) {
      expect(typeof s).toBe('number');
      expect(s).toBeGreaterThan(0);
      expect(s).toBeLessThan(60);
    }
  });
});

describe('--out, --density and --svg are checked before any computation', () => {
  const dir = join(inputs, 'a-directory');
  mkdirSync(dir, { recursive: true });
  const missingX = ['--x', join(inputs, 'no-such-x.npy'), '--y', join(fixtures, c, 'y.npy'), '--loss', 'ce'];
  it.each([
    ['a directory', ['grad', model, ...data, '--out', dir], /--out '.*a-directory': is a directory; give a file name/],
    ['in a missing directory', ['grad', model, ...data, '--out', join(tmp, 'nope', 'g.npy')], /--out '.*nope\/g\.npy': the directory '.*nope' does not exist; create it first/],
    ['under a file', ['grad', model, ...data, '--out', join(model, 'g.npy')], /--out '.*model\.onnx\/g\.npy': '.*model\.onnx' is not a directory/],
    ['an input', ['hvp', model, ...data, '--v', join(fixtures, c, 'v.npy'), '--out', join(fixtures, c, 'v.npy')], /--out '.*v\.npy': is also --v; write the result to another file/],
    // The output path is checked before the inputs are even read.
    ['checked before reading --x', ['grad', model, ...missingX, '--out', dir], /--out '.*a-directory': is a directory/],
    ['--density a directory', ['spectrum', model, ...data, '--trace', '--density', dir], /--density '.*a-directory': is a directory/],
    ['--density in a missing directory', ['spectrum', model, ...data, '--trace', '--density', join(tmp, 'nope', 'd.svg')], /--density .*does not exist/],
    ['--out and --density the same file', ['spectrum', model, ...data, '--top', '1', '--vectors', '--out', join(tmp, 'same'), '--density', join(tmp, 'same')], /is also --(out|density)/],
    ['demo --svg in a missing directory', ['demo', '--svg', join(tmp, 'nope', 'plot.svg')], /--svg '.*plot\.svg': the directory .* does not exist/],
  ])('%s', async (_, args, why) => {
    await rejects(args, why);
  });
  it.skipIf(process.getuid?.() === 0)('a directory that is not writable (not checkable as root)', async () => {
    const { chmodSync } = await import('node:fs');
    const ro = join(inputs, 'read-only');
    mkdirSync(ro, { recursive: true });
    chmodSync(ro, 0o555);
    await rejects(['grad', model, ...data, '--out', join(ro, 'g.npy')], /the directory '.*read-only' is not writable/);
  });
  it('a good --out is written whole, with no temporary file left', async () => {
    const out = join(inputs, 'grad.npy');
    const r = await hessian(['grad', model, ...data, '--out', out, '--f64']);
    expect(r.code, r.stderr).toBe(0);
    expect(npyOf(out).shape).toEqual([P]);
    expect(readdirSync(inputs).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });
});

describe('NaN and ±∞ in the data: exit 2 naming the file, the flat index and the value', () => {
  const withValue = (a: h.npy.NpyArray, i: number, v: number, dtype: 'float32' | 'float64' = 'float32') => {
    const data = dtype === 'float32' ? Float32Array.from(a.data as Float32Array) : Float64Array.from(a.data as Float32Array);
    data[i] = v;
    return { dtype, shape: a.shape, data } as h.npy.NpyArray;
  };
  const mse = 'mlp_relu_mse';
  const mseModel = join(fixtures, mse, 'model.onnx');
  const mseX = join(fixtures, mse, 'x.npy');
  const mseY = npyOf(join(fixtures, mse, 'y.npy'));
  const v0 = npyOf(join(fixtures, c, 'v.npy'));
  it.each([
    ['NaN in x', () => ['grad', model, '--x', save('x-nan.npy', withValue(x0, 13, NaN)), ...data.slice(2)], /--x '.*x-nan\.npy' \(float32 \[6, 6\]\): element 13 \(flat index, at \[2, 1\]\) is NaN; replace NaN/],
    ['+∞ in x (float64)', () => ['loss', model, '--x', save('x-inf.npy', withValue(x0, 0, Infinity, 'float64')), ...data.slice(2), '--f64'], /--x '.*x-inf\.npy' \(float64 \[6, 6\]\): element 0 .*is Infinity/],
    ['-∞ in y', () => ['grad', mseModel, '--x', mseX, '--y', save('y-inf.npy', withValue(mseY, 7, -Infinity)), '--loss', 'mse'], /--y '.*y-inf\.npy' .*element 7 .* is -Infinity/],
    ['NaN in v', () => ['hvp', model, ...data, '--v', save('v-nan.npy', withValue(v0, 82, NaN))], /--v '.*v-nan\.npy' \(float32 \[83\]\): element 82 \(flat index\) is NaN/],
    ['a float64 value beyond float32', () => ['grad', model, '--x', save('x-big.npy', withValue(x0, 5, 1e39, 'float64')), ...data.slice(2)], /--x .*element 5 .*is 1e\+39, beyond the float32 range; pass --f64/],
  ])('%s', async (_, args, why) => {
    await rejects(args(), why);
  });
  it('the same large value computes in float64 (--f64)', async () => {
    const r = await hessian(['loss', model, '--x', save('x-big64.npy', withValue(x0, 5, 1e39, 'float64')), ...data.slice(2), '--f64', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(Number.isFinite(JSON.parse(r.stdout).loss)).toBe(true);
  });
});

describe('spectrum', () => {
  it('with nothing requested says what to ask for', async () => {
    await rejects(['spectrum', model, ...data], /spectrum: nothing to compute; ask for --top K, --bottom K, --trace and\/or --density/);
  });
  it.each([
    [['--top', '2', '--vectors'], /--vectors needs a file; add --out V\.npy/],
    [['--trace', '--vectors', '--out', 'V.npy'], /--vectors needs eigenvalues.*--top K/],
    [['--top', '2', '--out', 'V.npy'], /spectrum --out writes eigenvectors; add --vectors/],
  ])('%j', async (opts, why) => {
    await rejects(['spectrum', model, ...data, ...opts], why);
  });

  it('--vectors --out V.npy: [k, P] rows, top (descending) then bottom (ascending), each a unit eigenvector', async () => {
    for (const matrix of ['hessian', 'ggn'] as const) {
      const out = join(inputs, `V-${matrix}.npy`);
      const r = await hessian(['spectrum', model, ...data, '--f64', '--json', '--top', '3', '--bottom', '2', '--vectors', '--out', out, '--matrix', matrix]);
      expect(r.code, r.stderr).toBe(0);
      const j = JSON.parse(r.stdout);
      const V = npyOf(out);
      expect(V.dtype).toBe('float64');
      expect(V.shape).toEqual([5, P]);
      const values: number[] = [...j.top, ...j.bottom];
      expect(j.top[0]).toBeGreaterThanOrEqual(j.top[2]);
      expect(j.bottom[0]).toBeLessThanOrEqual(j.bottom[1]);
      using obj = h.objective(await h.loadOnnx(readFileSync(model)), 'ce', { x: h.npy.npyToTensor(x0, 'float64'), y: h.npy.npyToTensor(y0, 'float64') }, {});
      const scale = Math.max(...values.map(Math.abs));
      values.forEach((lambda, i) => {
        const v = (V.data as Float64Array).slice(i * P, (i + 1) * P);
        expect(Math.hypot(...v)).toBeCloseTo(1, 8);
        const cv = obj.curvatureProducts(matrix, v, 1);
        const residual = Math.hypot(...Array.from(cv, (a, q) => a - lambda * v[q]!));
        expect(residual / scale, `${matrix} row ${i}`).toBeLessThan(1e-6);
      });
    }
  });

  it("counts the products under 'products' with the matrix named ('matrix'), for each matrix", async () => {
    for (const [matrix, title] of [['hessian', 'Hessian'], ['ggn', 'GGN'], ['fisher', 'Fisher']]) {
      const svg = join(inputs, `density-${matrix}.svg`);
      const r = await hessian(['spectrum', model, ...data, '--json', '--top', '1', '--trace', '--density', svg, '--matrix', matrix]);
      expect(r.code, r.stderr).toBe(0);
      const j = JSON.parse(r.stdout);
      expect(j.matrix).toBe(matrix);
      expect(readFileSync(svg, 'utf8')).toContain(`>${title} spectral density (SLQ, `);
      expect(j.products).toBeGreaterThan(0);
      expect(j).not.toHaveProperty('hvps');
      expect(j.converged).toBe(true);
    }
  });
});

describe('hvp --matrix hessian|ggn|fisher', () => {
  it('equals the library\'s obj.hvp, obj.ggnvp and obj.fisherVp', async () => {
    const onnx = await h.loadOnnx(readFileSync(model));
    using obj = h.objective(onnx, 'ce', { x: h.npy.npyToTensor(x0, 'float64'), y: h.npy.npyToTensor(y0, 'float64') }, { params: onnx.init({ dtype: 'float64' }) });
    const v = Float64Array.from(npyOf(join(fixtures, c, 'v.npy')).data as Float32Array);
    const want = { hessian: obj.hvp(v), ggn: obj.ggnvp(v), fisher: obj.fisherVp(v) };
    // The three differ here, so matching each one means --matrix was used.
    expect(relError(want.ggn, want.fisher)).toBeGreaterThan(1e-3);
    for (const [matrix, flag] of [['hessian', []], ['ggn', ['--matrix', 'ggn']], ['fisher', ['--matrix', 'fisher']]] as const) {
      const out = join(inputs, `hvp-${matrix}.npy`);
      const r = await hessian(['hvp', model, ...data, '--f64', '--json', '--v', join(fixtures, c, 'v.npy'), '--out', out, ...flag]);
      expect(r.code, r.stderr).toBe(0);
      const j = JSON.parse(r.stdout);
      expect(j.matrix).toBe(matrix);
      const got = npyOf(out).data as Float64Array;
      const w = want[matrix];
      expect(relError(got, w), matrix).toBeLessThan(1e-12);
      expect(j.product_norm).toBeCloseTo(Math.hypot(...w), 10);
    }
  });
});

describe('the rest of the command line: each mistake is one line, exit 2', () => {
  const garbage = join(inputs, 'garbage.npy');
  writeFileSync(garbage, 'this is not a numpy file');
  const mse = 'mlp_relu_mse';
  it.each([
    ['--y missing for ce', ['grad', model, ...data.slice(0, 2), '--loss', 'ce'], /--loss ce needs targets; pass --y Y\.npy \(class indices/],
    ['--y missing for mse', ['grad', join(fixtures, mse, 'model.onnx'), '--x', join(fixtures, mse, 'x.npy'), '--loss', 'mse'], /--loss mse needs targets; pass --y/],
    ['--y given for mean-output', ['grad', model, ...data.slice(0, 4), '--loss', 'mean-output'], /--loss mean-output takes no targets; drop --y/],
    ['a label out of range', () => ['grad', model, ...data.slice(0, 2), '--y', save('y-big.npy', { dtype: 'int64', shape: [6], data: BigInt64Array.from([0n, 1n, 2n, 5n, 4n, 1n]) }), '--loss', 'ce'], /--y '.*y-big\.npy': .*label 5 at index 3 is not a class index in 0\.\.3; ce takes integer class indices/],
    ['a negative label', () => ['loss', model, ...data.slice(0, 2), '--y', save('y-neg.npy', { dtype: 'int64', shape: [6], data: BigInt64Array.from([0n, 1n, -1n, 3n, 0n, 1n]) }), '--loss', 'ce'], /label -1 at index 2/],
    ['a label that is not an integer', () => ['grad', model, ...data.slice(0, 2), '--y', save('y-frac.npy', { dtype: 'float64', shape: [6], data: Float64Array.from([0, 1, 2.5, 3, 0, 1]) }), '--loss', 'ce', '--f64'], /label 2\.5 at index 2 is not a class index/],
    ['x of the wrong shape', () => ['grad', model, '--x', save('x-wrong.npy', { dtype: 'float32', shape: [6, 5], data: new Float32Array(30) }), ...data.slice(2)], /the ONNX input .* has shape \[6, 6\] but the data is \[6, 5\]; /],
    ['x and y of different batch sizes', () => ['grad', model, '--x', join(fixtures, c, 'x.npy'), '--y', save('y-short.npy', { dtype: 'int64', shape: [5], data: BigInt64Array.from([0n, 1n, 2n, 1n, 0n]) }), '--loss', 'ce'], /x \[6, 6\] and y \[5\] have different batch sizes/],
    ['v of the wrong length', () => ['hvp', model, ...data, '--v', save('v-short.npy', { dtype: 'float32', shape: [5], data: new Float32Array(5) })], /--v has 5 values but the model has P = 83; pass one value per parameter/],
    ['hvp without --v', ['hvp', model, ...data], /hvp needs a direction; pass --v V\.npy \(P values/],
    ['ggn with --wrt input', ['ggn', model, ...data, '--wrt', 'input'], /GGN is defined for parameters, not for --wrt input/],
    ['--matrix fisher with --wrt input', ['hvp', model, ...data, '--wrt', 'input', '--v', join(fixtures, c, 'vx.npy'), '--matrix', 'fisher'], /Fisher is defined for parameters, not for --wrt input/],
    ['diag (GGN by default) with --wrt input', ['diag', model, ...data, '--wrt', 'input'], /GGN is defined for parameters/],
    ['spectrum with --wrt input', ['spectrum', model, ...data, '--wrt', 'input', '--top', '1'], /spectrum works on parameters.*; drop --wrt input/],
    ['a missing model', ['loss', join(inputs, 'nope.onnx'), ...data], /cannot read the model '.*nope\.onnx' \(.*ENOENT.*\); check the path/],
    ['a missing --x', ['loss', model, '--x', join(inputs, 'nope.npy'), ...data.slice(2)], /cannot read --x '.*nope\.npy'.*; check the path/],
    ['--x that is not a .npy file', ['loss', model, '--x', garbage, ...data.slice(2)], /--x '.*garbage\.npy'.*not a \.npy file/],
    ['a model that is not ONNX', ['info', garbage], /not an ONNX model/],
    ['extra arguments', ['loss', model, 'other.onnx', ...data], /too many arguments for 'loss'/],
    ['help for no command', ['help', 'frobnicate'], /'help frobnicate' names no command; run 'hessian --help'/],
    ['a loss that overflows float32', () => ['loss', join(fixtures, mse, 'model.onnx'), '--x', save('x-huge.npy', { dtype: 'float32', shape: [5, 5], data: new Float32Array(25).fill(1e30) }), '--y', join(fixtures, mse, 'y.npy'), '--loss', 'mse'], /the loss is (Infinity|NaN) for this model and data in float32; check the data's scale, or pass --f64/],
  ] as [string, string[] | (() => string[]), RegExp][])('%s', async (_, args, why) => {
    await rejects(typeof args === 'function' ? args() : args, why);
  });

  it('a model with a NaN weight is named by parameter and index', async () => {
    const graph = {
      name: 'g',
      initializer: [{ name: 'fc.weight', dims: [3, 2], dataType: 1, floatData: [0.5, -0.25, 1.5, NaN, -1, 2] }],
      input: [vi('x', [6, 3])],
      output: [vi('y', [6, 2])],
      node: [{ opType: 'MatMul', input: ['x', 'fc.weight'], output: ['y'], name: 'mm' }],
    };
    const file = join(inputs, 'nan-weight.onnx');
    writeFileSync(file, await encodeModel(graph));
    const x = save('x-63.npy', { dtype: 'float32', shape: [6, 3], data: new Float32Array(18).fill(0.5) });
    await rejects(['grad', file, '--x', x, '--loss', 'mean-output', '--out', join(tmp, 'g.npy')], /parameter 'fc\.weight' \[3, 2\] holds NaN at flat index 3 in float32; re-export the model with finite weights/);
  });
});

describe('diag --matrix hessian|ggn|fisher', () => {
  it("equals the diagonal of the library's dense matrix, in the computation's dtype", async () => {
    const onnx = await h.loadOnnx(readFileSync(model));
    using obj = h.objective(onnx, 'ce', { x: h.npy.npyToTensor(x0, 'float64'), y: h.npy.npyToTensor(y0, 'float64') }, { params: onnx.init({ dtype: 'float64' }) });
    for (const matrix of ['hessian', 'ggn', 'fisher'] as const) {
      const m = obj.dense(matrix);
      const want = Array.from({ length: P }, (_, i) => m[i * P + i]!);
      for (const [flag, dtype, tol] of [[['--f64'], 'float64', 1e-12], [[], 'float32', 1e-5]] as const) {
        const out = join(inputs, `diag-${matrix}-${dtype}.npy`);
        const r = await hessian(['diag', model, ...data, '--matrix', matrix, '--out', out, '--json', ...flag]);
        expect(r.code, r.stderr).toBe(0);
        expect(JSON.parse(r.stdout)).toMatchObject({ matrix, exact: true });
        const got = npyOf(out);
        expect(got.dtype).toBe(dtype);
        expect(relError(got.data as Float64Array, want), `${matrix} ${dtype}`).toBeLessThan(tol);
      }
    }
  });
});

describe('--wrt input', () => {
  it("grad and hvp --out are in the input's shape and equal the library's", async () => {
    const onnx = await h.loadOnnx(readFileSync(model));
    using inp = h.objective(onnx, 'ce', { x: h.npy.npyToTensor(x0, 'float64'), y: h.npy.npyToTensor(y0, 'float64') }, { params: onnx.init({ dtype: 'float64' }), wrt: 'input' });
    const vx = Float64Array.from(npyOf(join(fixtures, c, 'vx.npy')).data as Float32Array);
    const want = { grad: inp.grad(), hvp: inp.hvp(vx) };
    for (const command of ['grad', 'hvp'] as const) {
      const out = join(inputs, `${command}-input.npy`);
      const r = await hessian([command, model, ...data, '--wrt', 'input', '--f64', '--out', out, ...(command === 'hvp' ? ['--v', join(fixtures, c, 'vx.npy')] : [])]);
      expect(r.code, r.stderr).toBe(0);
      const got = npyOf(out);
      expect(got.shape).toEqual(x0.shape);
      const w = want[command];
      expect(relError(got.data as Float64Array, w), command).toBeLessThan(1e-12);
    }
  });
});
