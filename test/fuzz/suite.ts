/**
 * Cases from (seed, index), their execution with the memory-pressure phase, the canary that
 * says whether the instance still works, and a case as a reproducer.
 */
import { KINDS as TENSOR_KINDS, type Case, type Kind, type Step } from './cases.js';
import { objective } from './objective.js';
import { Rng, T_SOURCE, caseSeed } from './gen.js';
import { Ctx, Trapped, type Finding } from './oracle.js';
import type { Tensor } from '../../ts/index.js';

type H = Ctx['H'];

const KINDS: Record<string, Kind> = { ...TENSOR_KINDS, objective };
/** How often each step kind is drawn. */
const WEIGHTS: [number, string][] = [
  [2, 'create'], [3, 'unary'], [3, 'binary'], [3, 'reduce'], [3, 'gemm'], [2, 'layout'], [2, 'rowwise'], [2, 'conv'], [2, 'matmulNd'], [3, 'indexOps'], [2, 'pool'], [7, 'traced'], [5, 'estimator'], [8, 'objective'], [1, 'lifecycle'],
];

export function genCase(seed: number, index: number): Case {
  const r = new Rng(caseSeed(seed, index));
  const pressure = r.chance(0.04);
  const steps: Step[] = Array.from({ length: pressure ? r.int(1, 4) : r.chance(0.15) ? 2 : 1 }, () => KINDS[r.weighted(WEIGHTS.map(([w, k]) => [w, k] as const))]!.gen(r));
  return { index, seed, pressureChunk: pressure ? r.pick([16, 64, 256]) << 20 : 0, steps };
}

/** Runs a case; returns its findings (a trap stops the case and is the last finding). */
export function runCase(H: H, c: Case): { findings: Finding[]; trapped: boolean } {
  const ctx = new Ctx(H);
  const live: Tensor[] = [];
  const hogs: Tensor[] = [];
  let trapped = false;
  const before = H.memoryStats().liveTensors;
  try {
    if (c.pressureChunk) {
      ctx.pressure = true;
      for (let i = 0; i < 1 + (8 << 30) / c.pressureChunk; i++) {
        try {
          hogs.push(H.zeros([c.pressureChunk / 4], 'float32'));
        } catch (e) {
          if (e instanceof H.HesseError && e.code === 'OUT_OF_MEMORY') break;
          ctx.judgeError('zeros (memory pressure: until OUT_OF_MEMORY)', 'ok', e);
          break;
        }
      }
    }
    for (const s of c.steps) KINDS[s.kind]!.run(s, ctx, live);
  } catch (e) {
    // A throw outside any judged call (making inputs, switching kernels): judged the same way.
    try {
      if (!(e instanceof Trapped)) ctx.judgeError(`outside a judged call (${c.steps.map((s) => s.kind).join(', ')})`, 'any', e);
    } catch {
      // recorded as a trap
    }
    trapped = e instanceof Trapped || ctx.findings.some((f) => f.cls === 'trap');
  } finally {
    for (const t of [...live, ...hogs]) {
      try {
        t.dispose();
      } catch {
        // a dead instance: the canary reports it
      }
    }
  }
  if (!trapped) {
    try {
      const after = H.memoryStats().liveTensors;
      if (after > before) ctx.findings.push({ cls: 'leak', op: c.steps.map((s) => (s.op as string) ?? s.est ?? s.transform ?? s.kind).join('+'), detail: `${after - before} tensor handles still live after the case freed everything it was given` });
    } catch {
      // reported by the canary
    }
  }
  return { findings: ctx.findings, trapped };
}

/** A small known computation: undefined when the instance works, else what went wrong. */
export function canary(H: H): string | undefined {
  const live: Tensor[] = [];
  try {
    const k = (t: Tensor) => (live.push(t), t);
    const a = k(H.tensor([1, 2, 3, 4], [2, 2], 'float64'));
    const b = k(H.tensor([5, 6, 7, 8], [2, 2], 'float64'));
    const c = Array.from(k(H.matmul(a, b)).toArray());
    if (c.join() !== '19,22,43,50') return `matmul [[1,2],[3,4]]·[[5,6],[7,8]] = [${c}]`;
    const x = k(H.tensor([1, 2], [2], 'float64'));
    const v = k(H.tensor([1, 0], [2], 'float64'));
    const hv = Array.from(k(H.hvp((x: never) => H.sum(H.mul(H.square(x), x)) as never, x as never, v as never) as unknown as Tensor).toArray());
    if (hv.join() !== '6,0') return `hvp of sum(x³) at [1, 2] along [1, 0] = [${hv}], expected [6, 0]`;
    if (H.getKernels() !== 'simd') return `kernels left at '${H.getKernels()}'`;
    return undefined;
  } catch (e) {
    return `threw ${e instanceof Error ? `${e.constructor.name}: ${e.message}` : String(e)}`;
  } finally {
    live.forEach((t) => {
      try {
        t.dispose();
      } catch {
        // dead instance
      }
    });
  }
}

/** The case as JS (after `import { … } from 'hessian'; await init();` and the T helper). */
export function codeOf(c: Case): string {
  const body = c.steps.map((s) => KINDS[s.kind]!.code(s)).join('\n');
  if (!c.pressureChunk) return body;
  return `// memory pressure: allocate until OUT_OF_MEMORY, then\nconst hogs = []; try { for (;;) hogs.push(zeros([${c.pressureChunk / 4}])); } catch (e) { /* OUT_OF_MEMORY */ }\n${body}\nhogs.forEach((t) => t.dispose());`;
}

export { T_SOURCE };
