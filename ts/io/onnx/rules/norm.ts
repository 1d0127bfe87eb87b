/**
 * Normalization: BatchNormalization, LayerNormalization, InstanceNormalization.
 *
 * InstanceNormalization (PyTorch's InstanceNorm and GroupNorm export to it, GroupNorm through a
 * Reshape to [N, G, −1]): y = (x − μ)·(σ² + ε)^(−1/2)·scale[c] + B[c], μ and σ² (biased) over
 * the spatial axes 2.. of each (n, c): the core's layer_norm on the last axis of [N, C, S].
 *
 * BatchNormalization, eval semantics (the default): y = (x − mean)·(var + ε)^(−1/2)·scale + B
 * per channel (axis 1), with `input_mean`/`input_var` the running statistics: buffers, constants
 * of the objective (not parameters, no gradient, not in P). Training mode (opset ≥ 14
 * `training_mode=1`; opset 9–13: a node with more than one output, as PyTorch's TRAINING export
 * writes five): the batch statistics over every axis but the channel's, μ = mean(x), σ² =
 * mean((x − μ)²) (biased), y = (x − μ)·(σ² + ε)^(−1/2)·scale + B. The samples of a batch are then
 * coupled, which the model lists (`OnnxModel.batchStatistics`): GGN, Fisher and K-FAC assume per-sample
 * terms and do not hold for it. The updated running statistics (outputs 1, 2) are not values
 * hesse computes; a graph that uses them is UNSUPPORTED_OP.
 */
import { traced, type Sym } from '../../../trace.js';
import { act, add, constant, div, mul, reduceAxes, reshape, sub } from './engine.js';
import type { Attrs } from '../decode.js';
import { symv, type Rule, type RuleTable } from './types.js';

/** The epsilon attribute of the normalizations: a finite number > 0 (default 1e-5). */
const checkEpsilon: Rule['check'] = (a, invalid) => {
  const eps = a.flt('epsilon', 1e-5);
  if (!(eps > 0)) invalid(`epsilon must be a finite number > 0, got ${eps}`);
};

/** Whether a BatchNormalization node normalizes with batch statistics (training mode). */
export const bnTraining = (a: Attrs, opset: number, nOut: number) => (opset >= 14 ? a.flag('training_mode', false) : nOut > 1);

/** The norm family: BatchNormalization, LayerNormalization, InstanceNormalization. */
export const NORM: RuleTable = {
  BatchNormalization: {
    attrs: ['epsilon', 'momentum', 'training_mode', 'spatial'],
    buffers: [3, 4],
    check: (a, invalid) => {
      const eps = a.flt('epsilon', 1e-5);
      if (!(eps >= 0)) invalid(`epsilon must be ≥ 0, got ${eps}`);
      a.flag('training_mode', false);
      if (a.has('spatial') && a.int('spatial', 1) !== 1) invalid('spatial = 0 (per-activation statistics) is not supported');
    },
    build: (c) => {
      const x = c.sym(0);
      const r = x.shape.length;
      if (r < 2) c.invalid(`the input must be [N, C, …], got [${x.shape.join(', ')}]`);
      const C = x.shape[1]!;
      const eps = c.a.flt('epsilon', 1e-5);
      const training = bnTraining(c.a, c.opset, c.nOut);
      const perChannel = (s: Sym) => {
        if (s.size !== C) c.invalid(`a per-channel input has shape [${s.shape.join(', ')}], expected [${C}]`);
        return reshape(s, [1, C, ...Array(r - 2).fill(1)]);
      };
      const scale = perChannel(c.sym(1));
      const bias = perChannel(c.sym(2));
      let y: Sym;
      if (training) {
        const axes = [...Array(r).keys()].filter((a) => a !== 1);
        const d = sub(x, reduceAxes(x, 'mean', axes, true));
        const v = reduceAxes(act(d, 'square'), 'mean', axes, true);
        y = div(d, act(add(v, eps), 'sqrt'));
      } else {
        const mean = c.ins[3];
        const vr = c.ins[4];
        // Constant statistics: (var + ε)^(−1/2) computed once, in float64.
        const inv = vr?.kind === 'const' ? perChannel(constant(c.g, { shape: vr.shape, data: vr.data.map((v) => 1 / Math.sqrt(v + eps)) })) : act(act(add(perChannel(c.sym(4)), eps), 'sqrt'), 'recip');
        y = mul(sub(x, perChannel(mean?.kind === 'const' ? constant(c.g, mean) : c.sym(3))), inv);
      }
      return [symv(add(mul(y, scale), bias))];
    },
  },
  InstanceNormalization: {
    attrs: ['epsilon'],
    check: checkEpsilon,
    build: (c) => {
      const x = c.sym(0);
      const r = x.shape.length;
      if (r < 3) c.invalid(`the input must be [N, C, d1, …], got [${x.shape.join(', ')}]`);
      const [N, C] = [x.shape[0]!, x.shape[1]!];
      const perChannel = (s: Sym) => {
        if (s.size !== C) c.invalid(`scale and B must be [${C}], got [${s.shape.join(', ')}]`);
        return reshape(s, [1, C, ...Array(r - 2).fill(1)]);
      };
      const y = reshape(traced.lastAxis(reshape(x, [N, C, x.size / (N * C)]), 'layer_norm', c.a.flt('epsilon', 1e-5)), x.shape);
      return [symv(add(mul(y, perChannel(c.sym(1))), perChannel(c.sym(2))))];
    },
  },
  LayerNormalization: {
    attrs: ['axis', 'epsilon', 'stash_type'],
    check: checkEpsilon,
    build: (c) => {
      const x = c.sym(0);
      const r = x.shape.length;
      const ax = c.a.int('axis', -1);
      const k = ax < 0 ? ax + r : ax;
      if (k < 0 || k >= r) c.invalid(`axis ${ax} is out of range for an input of shape [${x.shape.join(', ')}]`);
      const eps = c.a.flt('epsilon', 1e-5);
      let y: Sym;
      if (k === r - 1) y = traced.lastAxis(x, 'layer_norm', eps);
      else {
        // Normalize over the flattened axes k.. (the core's layer_norm on the last axis of [.., D]).
        const lead = x.shape.slice(0, k);
        y = reshape(traced.lastAxis(reshape(x, [...lead, x.size / lead.reduce((p, q) => p * q, 1)]), 'layer_norm', eps), x.shape);
      }
      y = mul(y, c.sym(1));
      if (c.given(2)) y = add(y, c.sym(2));
      // Outputs 1, 2 (mean, inverse std) are training-time extras PyTorch never writes.
      return [symv(y)];
    },
  },
};
