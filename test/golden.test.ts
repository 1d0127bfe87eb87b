/**
 * Golden values from an independent system: float64 PyTorch references written by
 * test/fixtures/gen_autodiff.py (committed JSON). Each fixture is checked in float64 (relative
 * error ≤ 1e-10) and float32 (≤ 1e-4): loss, gradient, HVP, full Hessian, input gradient, input
 * HVP and Hessian, and the JVP of the network output.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import * as h from '../ts/index.js';
import { relError } from './helpers.js';
import { Graph, traced } from '../ts/trace.js';

await h.init();

interface Fixture {
  name: string;
  model: h.nn.LayerSpec[];
  loss: 'mse' | 'ce' | 'bce';
  input_shape: number[];
  x: number[];
  y: number[];
  y_shape: number[];
  params: number[];
  v: number[];
  loss_value: number;
  grad: number[];
  hvp: number[];
  hessian?: number[];
  input_grad: number[];
  input_v: number[];
  input_hvp: number[];
  input_hessian?: number[];
  output: number[];
  jvp_output_v: number[];
}

const dir = new URL('./fixtures/autodiff/', import.meta.url);
const fixtures: Fixture[] = readdirSync(dir)
  .filter((f) => f.endsWith('.json'))
  .sort()
  .map((f) => JSON.parse(readFileSync(new URL(f, dir), 'utf8')));


const LOSS = { mse: 'mse', ce: 'cross_entropy', bce: 'bce_with_logits' } as const;

describe.each([
  ['float64', 1e-10],
  ['float32', 1e-4],
] as const)('%s against PyTorch float64', (dtype, tol) => {
  const Arr = dtype === 'float64' ? Float64Array : Float32Array;
  it('has fixtures', () => expect(fixtures.length).toBeGreaterThanOrEqual(10));

  it.each(fixtures.map((f) => [f.name, f] as const))('%s', (_, f) => {
    const model = h.nn.sequential(f.model);
    expect(model.size).toBe(f.params.length);
    const x = h.tensor(Arr.from(f.x), f.input_shape, dtype);
    const y = h.tensor(Arr.from(f.y), f.y_shape, dtype);
    const params = Arr.from(f.params);
    using obj = h.objective(model, LOSS[f.loss], { x, y }, { params });
    expect(relError([obj.loss()], [f.loss_value])).toBeLessThan(tol);
    expect(relError(obj.grad(), f.grad)).toBeLessThan(tol);
    expect(relError(obj.hvp(Arr.from(f.v)), f.hvp)).toBeLessThan(tol);
    if (f.hessian) expect(relError(obj.hessian(), f.hessian)).toBeLessThan(tol);

    using inp = h.objective(model, LOSS[f.loss], { x, y }, { params, wrt: 'input' });
    expect(relError(inp.grad(), f.input_grad)).toBeLessThan(tol);
    expect(relError(inp.hvp(Arr.from(f.input_v)), f.input_hvp)).toBeLessThan(tol);
    if (f.input_hessian) expect(relError(inp.hessian(), f.input_hessian)).toBeLessThan(tol);

    // The network output and its JVP along v (forward mode on the program without the loss).
    const g = new Graph(dtype);
    try {
      const out = traced.sequential(g.input(f.input_shape), f.model);
      g.raw.setParams(params);
      g.raw.setInput(0, x.toArray());
      const { value, tangents: tangent } = g.raw.jvp(out.id, -1, Arr.from(f.v), 1, false) as { value: Float64Array; tangents: Float64Array };
      expect(relError(value!, f.output)).toBeLessThan(tol);
      expect(relError(tangent!, f.jvp_output_v)).toBeLessThan(tol);
    } finally {
      g.dispose();
    }
    x.dispose();
    y.dispose();
  });
});
