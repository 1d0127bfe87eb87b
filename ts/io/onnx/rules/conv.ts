/**
 * Convolution: ONNX Conv, 2-D (x [N, C, H, W], w [O, C/group, kH, kW], optional bias [O]) and
 * 1-D (nn.Conv1d: x [N, C, L], w [O, C/group, k], as the 2-D conv of [N, C, 1, L] by [O, C/g, 1, k]),
 * strides, dilations, explicit pads (asymmetric too; auto_pad VALID / SAME_UPPER / SAME_LOWER
 * resolved to them), groups (depthwise: group = C): the engine's conv2d.
 */
import { traced } from '../../../trace.js';
import { add, reshape } from './engine.js';
import { symv, type RuleTable } from './types.js';

/** The conv family: Conv (1-D and 2-D). */
export const CONV: RuleTable = {
  Conv: {
    attrs: ['auto_pad', 'dilations', 'group', 'kernel_shape', 'pads', 'strides'],
    check: (a, invalid) => {
      for (const [name, min] of [['pads', 0], ['strides', 1], ['dilations', 1], ['kernel_shape', 1]] as const) {
        const v = a.ints(name);
        if (v?.some((d) => d < min)) invalid(`${name} must be integers ≥ ${min}, got [${v.join(', ')}]`);
      }
      if (a.int('group', 1) < 1) invalid(`group must be ≥ 1, got ${a.int('group', 1)}`);
      const autoPad = a.str('auto_pad', 'NOTSET');
      if (!['NOTSET', 'VALID', 'SAME_UPPER', 'SAME_LOWER'].includes(autoPad)) invalid(`auto_pad must be NOTSET, VALID, SAME_UPPER or SAME_LOWER, got '${autoPad}'`);
      const pads = a.ints('pads');
      if (pads && pads.length % 2 !== 0) invalid(`pads must hold a begin and an end per spatial axis (an even count), got [${pads.join(', ')}]`);
    },
    build: (c) => {
      let [x, w0] = [c.sym(0), c.sym(1)];
      const oneD = x.shape.length === 3 && w0.shape.length === 3;
      if (!oneD && (w0.shape.length !== 4 || x.shape.length !== 4)) c.fail(`only 1-D and 2-D convolution ([N, C, L] or [N, C, H, W] input, [O, C/group, k] or [O, C/group, kH, kW] weight) is supported, got [${x.shape.join(', ')}] and [${w0.shape.join(', ')}]`);
      const L = x.shape[2]!;
      if (oneD) {
        x = reshape(x, [x.shape[0]!, x.shape[1]!, 1, L]);
        w0 = reshape(w0, [w0.shape[0]!, w0.shape[1]!, 1, w0.shape[2]!]);
      }
      // A 1-D attribute lifted to the 2-D one of a height-1 axis: [v] → [1, v] (strides,
      // dilations, kernel), pads [b, e] → [0, b, 0, e].
      const attr = (name: string) => {
        const v = c.a.ints(name);
        if (!oneD || !v) return v;
        if (name === 'pads') return v.length === 2 ? [0, v[0]!, 0, v[1]!] : c.invalid(`pads [${v.join(', ')}] must hold 2 values for a 1-D convolution`);
        return v.length === 1 ? [1, v[0]!] : c.invalid(`${name} [${v.join(', ')}] must hold 1 value for a 1-D convolution`);
      };
      const perAxis = (name: string, n: number, dflt: number[]) => {
        const v = attr(name) ?? dflt;
        if (v.length !== n) c.invalid(`${name} [${v.join(', ')}] must hold ${n} values for a 2-D convolution`);
        return v;
      };
      const [O, Cg, kh, kw] = w0.shape as [number, number, number, number];
      const kernel = attr('kernel_shape');
      if (kernel && (kernel.length !== 2 || kernel[0] !== kh || kernel[1] !== kw)) c.invalid(`kernel_shape [${kernel.join(', ')}] does not match the weight [${w0.shape.join(', ')}]`);
      const s = perAxis('strides', 2, [1, 1]);
      const dil = perAxis('dilations', 2, [1, 1]);
      const autoPad = c.a.str('auto_pad', 'NOTSET');
      let pads = autoPad === 'VALID' ? [0, 0, 0, 0] : perAxis('pads', 4, [0, 0, 0, 0]);
      if (autoPad.startsWith('SAME')) {
        // Output ⌈in/stride⌉; the odd pad goes at the end (UPPER) or the beginning (LOWER).
        const ext = [(kh - 1) * dil[0]! + 1, (kw - 1) * dil[1]! + 1];
        const tot = [0, 1].map((i) => Math.max(0, (Math.ceil(x.shape[2 + i]! / s[i]!) - 1) * s[i]! + ext[i]! - x.shape[2 + i]!));
        const lo = tot.map((t) => (autoPad === 'SAME_UPPER' ? Math.floor(t / 2) : Math.ceil(t / 2)));
        pads = [lo[0]!, lo[1]!, tot[0]! - lo[0]!, tot[1]! - lo[1]!];
      }
      const groups = c.a.int('group', 1);
      const C = x.shape[1]!;
      if (C !== Cg * groups || O % groups !== 0) c.invalid(`the weight [${w0.shape.join(', ')}] with group ${groups} does not fit an input of ${C} channels`);
      let y = traced.conv2d(c.g, x, w0, new Uint32Array([s[0]!, s[1]!, pads[0]!, pads[1]!, pads[2]!, pads[3]!, dil[0]!, dil[1]!, groups]));
      if (c.given(2)) y = add(y, reshape(c.sym(2), [1, O, 1, 1]));
      return symv(oneD ? reshape(y, [y.shape[0]!, O, y.shape[3]!]) : y);
    },
  },
};
