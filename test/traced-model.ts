/**
 * A model written with the traced ops (an `nn.Model` the objective takes), for tests that mimic
 * the graphs the ONNX importer builds: parameter blocks in a given order, the network a function
 * of their Syms and x. The same function feeds `jacobian`/`vjp` with the blocks as an array, so
 * the flat variable order of the transforms is the model's parameter order.
 */
import * as h from '../ts/index.js';
import type { Model, ParamBlock } from '../ts/nn.js';
import { randn, rng } from './helpers.js';

/** The network: parameter Syms in block order, and the input. */
export type Net = (p: h.Sym[], x: h.Sym) => h.Sym;

/** A Model of these blocks (name, shape) applying `net`; init draws U(−scale, scale) from `seed`. */
export function tracedModel(specs: readonly { name: string; shape: number[] }[], net: Net, scale = 1): Model {
  let offset = 0;
  const blocks: ParamBlock[] = specs.map((s) => {
    const size = s.shape.reduce((a, b) => a * b, 1);
    const b = { name: s.name, shape: s.shape, offset, size, init: { constant: 0 } };
    offset += size;
    return b;
  });
  const size = offset;
  return {
    size,
    blocks,
    init: ({ seed = 0, dtype = 'float32' }: { seed?: number; dtype?: h.DType } = {}) => {
      const v = randn(rng(seed + 1), size).map((a) => a * scale);
      return dtype === 'float64' ? Float64Array.from(v) : Float32Array.from(v);
    },
    views: <A extends Float32Array | Float64Array>(flat: A) => Object.fromEntries(blocks.map((b) => [b.name, flat.subarray(b.offset, b.offset + b.size) as A])),
    build: (x: h.Sym) => net(blocks.map((b) => x.graph.param(b.shape)), x),
  };
}

/** The flat parameter vector as float64 tensors, one per block (the transforms' params array). */
export function blockTensors(model: Model, flat: Float64Array): h.Tensor<'float64'>[] {
  return model.blocks.map((b) => h.tensor(flat.slice(b.offset, b.offset + b.size), b.shape, 'float64'));
}
