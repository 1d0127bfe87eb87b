/**
 * Recurrent layers, unrolled over the (static) sequence into matmuls and pointwise ops, so their
 * derivatives are those of the primitives. ONNX's equations (onnx/defs/rnn/defs.cc), per
 * direction, with W [G·H, I], R [G·H, H], B = [Wb, Rb] [2·G·H] and the gates stacked in ONNX's
 * order, which is not PyTorch's (the exporter reorders):
 *
 *   LSTM (gates i, o, f, c): i = σ(xWᵢᵀ + hRᵢᵀ + Wbᵢ + Rbᵢ), o, f likewise, c̃ = g(xW_cᵀ + hR_cᵀ + …),
 *        C' = f⊙C + i⊙c̃, h' = o⊙h(C')            (σ, g, h = Sigmoid, Tanh, Tanh by default)
 *   GRU  (gates z, r, h): z = σ(xW_zᵀ + hR_zᵀ + Wb_z + Rb_z), r likewise,
 *        linear_before_reset = 0: h̃ = g(xW_hᵀ + (r⊙h)R_hᵀ + Rb_h + Wb_h)
 *        linear_before_reset = 1: h̃ = g(xW_hᵀ + r⊙(hR_hᵀ + Rb_h) + Wb_h)   (PyTorch's GRU)
 *        h' = (1 − z)⊙h̃ + z⊙h
 *
 * direction forward, reverse or bidirectional; layout 0 ([T, N, ·]) or 1 ([N, T, ·]);
 * initial states optional (zeros); sequence_lens only when every sequence is the full length.
 * Peepholes (LSTM P), clip and input_forget are refused.
 */
import { traced, type Sym } from '../../../trace.js';
import { act, add, constant, mul, permute, reshape, sliceAxis, sub } from './engine.js';
import { symv, type Ctx, type Rule, type RuleTable } from './types.js';

const ACTS: Record<string, string> = { Sigmoid: 'sigmoid', Tanh: 'tanh', Relu: 'relu' };

function recurrent(kind: 'LSTM' | 'GRU'): Rule {
  const G = kind === 'LSTM' ? 4 : 3;
  return {
    attrs: ['activation_alpha', 'activation_beta', 'activations', 'clip', 'direction', 'hidden_size', 'layout', ...(kind === 'LSTM' ? ['input_forget'] : ['linear_before_reset'])],
    constInputs: [4],
    check: (a, invalid) => {
      const dir = a.str('direction', 'forward');
      if (!['forward', 'reverse', 'bidirectional'].includes(dir)) invalid(`direction must be forward, reverse or bidirectional, got '${dir}'`);
      if (a.int('hidden_size', 0) < 1) invalid(`hidden_size must be ≥ 1, got ${a.int('hidden_size', 0)}`);
      a.flag('layout', false);
    },
    build: (c: Ctx) => {
      const H = c.a.int('hidden_size', 0);
      const dir = c.a.str('direction', 'forward');
      const D = dir === 'bidirectional' ? 2 : 1;
      const batchFirst = c.a.flag('layout', false);
      if (c.a.has('clip')) c.fail('clip is not supported');
      if (kind === 'LSTM' && c.a.int('input_forget', 0) !== 0) c.fail('input_forget = 1 is not supported');
      if (kind === 'LSTM' && c.given(7)) c.fail('peephole weights (input P) are not supported');
      const names = c.a.strs('activations') ?? [];
      const dflt = kind === 'LSTM' ? ['Sigmoid', 'Tanh', 'Tanh'] : ['Sigmoid', 'Tanh'];
      const fns = Array.from({ length: D * dflt.length }, (_, i) => {
        const n = names[i] ?? dflt[i % dflt.length]!;
        const f = ACTS[n];
        if (!f) c.fail(`activation '${n}' is not supported (Sigmoid, Tanh, Relu)`);
        return f!;
      });
      if (c.a.has('activation_alpha') || c.a.has('activation_beta')) c.fail('activation_alpha/beta are not supported');
      let X = c.sym(0);
      if (X.shape.length !== 3) c.invalid(`X must be 3-D, got [${X.shape.join(', ')}]`);
      if (batchFirst) X = permute(X, [1, 0, 2]);
      const [T, N, I] = X.shape as [number, number, number];
      if (c.given(4)) {
        const lens = c.konst(4).data;
        if (lens.some((l) => l !== T)) c.fail(`sequence_lens [${Array.from(lens).join(', ')}] shorter than the ${T} steps are not supported`);
      }
      const W = c.sym(1);
      const R = c.sym(2);
      const want = (s: Sym, shape: number[], what: string) => {
        if (s.shape.length !== shape.length || s.shape.some((d, i) => d !== shape[i])) c.invalid(`${what} has shape [${s.shape.join(', ')}], expected [${shape.join(', ')}]`);
      };
      want(W, [D, G * H, I], 'W');
      want(R, [D, G * H, H], 'R');
      const B = c.given(3) ? c.sym(3) : undefined;
      if (B) want(B, [D, 2 * G * H], 'B');
      const state = (i: number, what: string) => {
        if (!c.given(i)) return undefined;
        let s = c.sym(i);
        if (batchFirst) s = permute(s, [1, 0, 2]);
        want(s, [D, N, H], what);
        return s;
      };
      const h0 = state(5, 'initial_h');
      const c0 = kind === 'LSTM' ? state(6, 'initial_c') : undefined;
      const zeros = constant(c.g, { shape: [N, H], data: new Float64Array(N * H) });
      const X2 = reshape(X, [T * N, I]);
      const Ys: Sym[] = [];
      const Yh: Sym[] = [];
      const Yc: Sym[] = [];
      for (let d = 0; d < D; d++) {
        const f = fns.slice(d * dflt.length, (d + 1) * dflt.length);
        const Wd = reshape(sliceAxis(W, 0, d, 1), [G * H, I]);
        const Rd = reshape(sliceAxis(R, 0, d, 1), [G * H, H]);
        const Bd = B ? reshape(sliceAxis(B, 0, d, 1), [2 * G * H]) : undefined;
        const gate = (m: Sym, g: number) => sliceAxis(m, 0, g * H, H);
        const wb = (g: number) => (Bd ? sliceAxis(Bd, 0, g * H, H) : undefined);
        const rb = (g: number) => (Bd ? sliceAxis(Bd, 0, (G + g) * H, H) : undefined);
        // x·W_gᵀ for every step at once ([T·N, H]), the input bias folded in (and the recurrent one
        // too, except for GRU's h gate with linear_before_reset, where r multiplies it).
        const lbr = kind === 'GRU' && c.a.int('linear_before_reset', 0) !== 0;
        const xw = Array.from({ length: G }, (_, g) => {
          let y = traced.matmul(c.g, X2, gate(Wd, g), false, true);
          const inBias = wb(g);
          if (inBias) y = add(y, inBias);
          const recBias = kind === 'GRU' && g === 2 ? undefined : rb(g);
          if (recBias) y = add(y, recBias);
          return y;
        });
        const Rg = Array.from({ length: G }, (_, g) => gate(Rd, g));
        let h = h0 ? reshape(sliceAxis(h0, 0, d, 1), [N, H]) : zeros;
        let cell = kind === 'LSTM' ? (c0 ? reshape(sliceAxis(c0, 0, d, 1), [N, H]) : zeros) : undefined;
        const reverse = dir === 'reverse' || d === 1;
        const out = new Array<Sym>(T);
        for (let s = 0; s < T; s++) {
          const t = reverse ? T - 1 - s : s;
          const xt = (g: number) => sliceAxis(xw[g]!, 0, t * N, N);
          const hr = (g: number) => traced.matmul(c.g, h, Rg[g]!, false, true);
          if (kind === 'LSTM') {
            const [i, o, fg, cc] = [0, 1, 2, 3].map((g) => add(xt(g), hr(g)));
            const [it, ot, ft] = [i!, o!, fg!].map((v) => act(v, f[0]!));
            const ct = act(cc!, f[1]!);
            cell = add(mul(ft!, cell!), mul(it!, ct));
            h = mul(ot!, act(cell, f[2]!));
          } else {
            const z = act(add(xt(0), hr(0)), f[0]!);
            const r = act(add(xt(1), hr(1)), f[0]!);
            const rbh = rb(2);
            let pre: Sym;
            if (lbr) {
              const hR = rbh ? add(hr(2), rbh) : hr(2);
              pre = add(xt(2), mul(r, hR));
            } else {
              const rh = traced.matmul(c.g, mul(r, h), Rg[2]!, false, true);
              pre = add(xt(2), rbh ? add(rh, rbh) : rh);
            }
            const ht = act(pre, f[1]!);
            // (1 − z)⊙h̃ + z⊙h = h̃ + z⊙(h − h̃)
            h = add(ht, mul(z, sub(h, ht)));
          }
          out[t] = h;
        }
        // Only the outputs the graph uses (an unused one would be a dead parameter-dependent node).
        if (c.used(0)) Ys.push(traced.concat(c.g, out.map((y) => reshape(y, [1, 1, N, H])), 0));
        if (c.used(1)) Yh.push(reshape(h, [1, N, H]));
        if (cell && c.used(2)) Yc.push(reshape(cell, [1, N, H]));
      }
      const join = (xs: Sym[], axis: number, perm: number[]) => {
        if (!xs.length) return undefined;
        const y = D === 1 ? xs[0]! : traced.concat(c.g, xs, axis);
        return symv(batchFirst ? permute(y, perm) : y);
      };
      return [join(Ys, 1, [2, 0, 1, 3]), join(Yh, 0, [1, 0, 2]), join(Yc, 0, [1, 0, 2])];
    },
  };
}

/** The recurrent family: LSTM, GRU (unrolled). */
export const RECURRENT: RuleTable = { LSTM: recurrent('LSTM'), GRU: recurrent('GRU') };
