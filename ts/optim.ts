/**
 * Hessian-free optimization (Martens 2010): each step solves (G + λI)d = −∇L by conjugate
 * gradients on Gauss–Newton products (no matrix is ever formed), warm-started from the previous
 * direction, with Levenberg–Marquardt damping adapted from how well the quadratic model predicted
 * the actual decrease, and an Armijo backtracking line search on the step.
 */
import { HesseError } from './errors.js';
import { cg } from './curvature.js';
import type { Curvature, Objective } from './objective.js';
import * as check from './validate.js';

/** Options of {@link hessianFree}. */
export interface HessianFreeOptions {
  /** Outer steps, an integer ≥ 0 (default 20). */
  steps?: number;
  /** Initial Levenberg–Marquardt damping λ, finite and > 0 (default 1). */
  damping?: number;
  /** Curvature for the CG system: 'ggn' (default; PSD) or 'hessian' (CG stops at negative curvature), or any {@link Curvature}. */
  curvature?: Curvature;
  /** CG iterations per step at most, an integer ≥ 1 (default 25). */
  cgMaxIter?: number;
  /** CG's relative tolerance ‖r‖ ≤ cgRtol·‖∇L‖, finite and ≥ 0 (default 1e-3). */
  cgRtol?: number;
  /** Warm-start factor: the next CG starts from warmStart·(previous direction); finite, ≥ 0 (default 0.95; 0 disables). */
  warmStart?: number;
  /** Called after each step; return false to stop. */
  onStep?: (info: HessianFreeStep) => boolean | void;
}

/** What {@link hessianFree} reports after each step. */
export interface HessianFreeStep {
  /** The step's index, from 0. */
  step: number;
  /** The loss after the step (or before it, if the step was rejected). */
  loss: number;
  /** λ after its update from `rho`. */
  damping: number;
  /** Actual over predicted decrease of the step: (L(θ + αd) − L(θ)) / q(d); 0 when the model predicted no decrease. */
  rho: number;
  /** CG iterations of this step. */
  cgIterations: number;
  /** Running total of gradient evaluations. */
  gradients: number;
  /** Running total of curvature products. */
  products: number;
  /** Running total of loss evaluations (the line search's). */
  lossEvals: number;
}

/** What {@link hessianFree} returns. */
export interface HessianFreeResult {
  /** The loss before each step and after the last. */
  losses: number[];
  /** One entry per step taken. */
  steps: HessianFreeStep[];
}

/**
 * Minimizes the objective in place (its `params` are updated) with Hessian-free optimization:
 * per step, d solves (C + λI)d = −∇L by CG, with q(d) = ∇Lᵀd + ½dᵀCd the model; the step
 * θ + αd takes α by Armijo backtracking (halving from 1); λ shrinks by 2/3 when ρ > 3/4 and
 * grows by 3/2 when ρ < 1/4. A step that does not lower the loss is not taken.
 * @throws HesseError INVALID_ARGUMENT for a bad option or curvature (before any step).
 */
export function hessianFree(obj: Objective, options: HessianFreeOptions = {}): HessianFreeResult {
  const opts = check.options(options, 'hessianFree', ['steps', 'damping', 'curvature', 'cgMaxIter', 'cgRtol', 'warmStart', 'onStep']);
  const steps = check.count(opts.steps ?? 20, 'hessianFree: steps');
  let lambda = check.positiveNumber(opts.damping ?? 1, 'hessianFree: damping');
  const curvature = opts.curvature ?? 'ggn';
  obj.operator(curvature); // checks the curvature now rather than at the first step
  const warm = check.finite(opts.warmStart ?? 0.95, 'hessianFree: warmStart', 0);
  const cgMaxIter = check.positive(opts.cgMaxIter ?? 25, 'hessianFree: cgMaxIter');
  const cgRtol = check.finite(opts.cgRtol ?? 1e-3, 'hessianFree: cgRtol', 0);
  if (opts.onStep !== undefined && typeof opts.onStep !== 'function') throw new HesseError('INVALID_ARGUMENT', 'hessianFree: onStep must be a function');
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
    const sol = cg(obj.operator(curvature), b, { damping: lambda, x0: prev?.map((v) => v * warm), rtol: cgRtol, maxIter: cgMaxIter });
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
