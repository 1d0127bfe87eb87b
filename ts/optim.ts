/**
 * Hessian-free optimization (Martens 2010): each step solves (G + λI)d = −∇L by conjugate
 * gradients on Gauss–Newton products (no matrix is ever formed), warm-started from the previous
 * direction, with Levenberg–Marquardt damping adapted from how well the quadratic model predicted
 * the actual decrease, and an Armijo backtracking line search on the step.
 */
import { HesseError } from './errors.js';
import { cg } from './curvature.js';
import type { Curvature, Objective } from './objective.js';

export interface HessianFreeOptions {
  /** Outer steps (default 20). */
  steps?: number;
  /** Initial damping λ (default 1). */
  damping?: number;
  /** Curvature for the CG system: 'ggn' (default; PSD) or 'hessian' (CG stops at negative curvature). */
  curvature?: Curvature;
  /** CG iterations per step at most (default 25) and relative tolerance (default 1e-3). */
  cgMaxIter?: number;
  cgRtol?: number;
  /** Warm-start factor for the next CG (default 0.95; 0 disables). */
  warmStart?: number;
  /** Called after each step; return false to stop. */
  onStep?: (info: HessianFreeStep) => boolean | void;
}

export interface HessianFreeStep {
  step: number;
  loss: number;
  damping: number;
  /** Actual over predicted decrease of the step. */
  rho: number;
  cgIterations: number;
  /** Running totals: gradients, curvature products, loss evaluations. */
  gradients: number;
  products: number;
  lossEvals: number;
}

export interface HessianFreeResult {
  /** The loss before each step and after the last. */
  losses: number[];
  steps: HessianFreeStep[];
}

/**
 * Minimizes the objective in place (its `params` are updated) with Hessian-free optimization.
 */
export function hessianFree(obj: Objective, opts: HessianFreeOptions = {}): HessianFreeResult {
  const steps = opts.steps ?? 20;
  let lambda = opts.damping ?? 1;
  if (!(lambda > 0)) throw new HesseError('INVALID_ARGUMENT', `hessianFree: damping must be > 0, got ${lambda}`);
  const curvature = opts.curvature ?? 'ggn';
  const warm = opts.warmStart ?? 0.95;
  const moved = (alpha: number, d: Float64Array) => {
    const next = obj.params.slice();
    for (let i = 0; i < next.length; i++) next[i] = next[i]! + alpha * d[i]!;
    return next;
  };
  let prev: Float64Array | undefined;
  const losses: number[] = [];
  const infos: HessianFreeStep[] = [];
  let [gradients, products, lossEvals] = [0, 0, 0];
  for (let step = 0; step < steps; step++) {
    const [loss, g] = obj.valueAndGrad();
    gradients++;
    losses.push(loss);
    const b = Float64Array.from(g, (v) => -v);
    const sol = cg(obj.operator(curvature), b, { damping: lambda, x0: prev?.map((v) => v * warm), rtol: opts.cgRtol ?? 1e-3, maxIter: opts.cgMaxIter ?? 25 });
    products += sol.products;
    const d = sol.x;
    prev = d;
    // Predicted decrease of the undamped model: q(d) = gᵀd + ½dᵀCd (CG's model includes ½λ‖d‖²).
    const dd = d.reduce((s, v) => s + v * v, 0);
    const gd = d.reduce((s, v, i) => s + v * g[i]!, 0);
    const model = (sol.model.length ? sol.model[sol.model.length - 1]! : 0) - 0.5 * lambda * dd;
    // Armijo backtracking on the step length.
    let alpha = 1;
    let next = moved(alpha, d);
    let newLoss = obj.loss(next);
    lossEvals++;
    while (!(newLoss <= loss + 1e-4 * alpha * gd) && alpha > 1e-3) {
      alpha *= 0.5;
      next = moved(alpha, d);
      newLoss = obj.loss(next);
      lossEvals++;
    }
    const rho = model < 0 ? (newLoss - loss) / model : 0;
    // Levenberg–Marquardt: trust the model more (less damping) when it predicted well.
    if (rho > 0.75) lambda *= 2 / 3;
    else if (rho < 0.25) lambda *= 3 / 2;
    if (newLoss < loss) obj.params = next;
    const info = { step, loss: Math.min(newLoss, loss), damping: lambda, rho, cgIterations: sol.iterations, gradients, products, lossEvals };
    infos.push(info);
    if (opts.onStep?.(info) === false) break;
  }
  losses.push(obj.loss());
  return { losses, steps: infos };
}
