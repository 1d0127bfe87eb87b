/**
 * Type-level tests of the public API, as a user's strict project sees it (compiled by
 * test/types.test.ts; each `@ts-expect-error` must be an error, every other line must not).
 */
import {
  add, astype, exp, full, grad, gradCheck, hessian, hvp, jacobian, jvp, matmul, sum, tensor, valueAndGrad, vjp, zeros,
  type Differentiable, type DType, type Sym, type Tensor,
} from 'hessian';

// Tensor is generic in its dtype; toArray() gives that dtype's array, with no union to narrow.
const t64 = tensor(new Float64Array([1, 2, 3, 4]), [2, 2]);
const a64: Float64Array = t64.toArray();
const t32 = tensor([[1, 2], [3, 4]]);
const a32: Float32Array = t32.toArray();
const byName: Tensor<'float64'> = tensor([1, 2], [2], 'float64');
const scalar: Tensor<'float32'> = tensor(3);
const z64: Tensor<'float64'> = zeros([2], 'float64');
const z32: Tensor<'float32'> = zeros([2]);
const f64: Tensor<'float64'> = full([2], 1, 'float64');
// @ts-expect-error a float64 tensor's elements are not a Float32Array
const wrong: Float32Array = t64.toArray();
// @ts-expect-error a float32 tensor is not a float64 one
const wrong2: Tensor<'float64'> = tensor([1, 2]);
declare const either: Float32Array | Float64Array;
const unknownDtype: Tensor<DType> = tensor(either);
const anyTensor: Tensor = t64; // Tensor<'float64'> is a Tensor
// @ts-expect-error not tensor data
tensor('1, 2');

// Ops preserve the dtype.
const o1: Float64Array = add(t64, 1).toArray();
const o2: Float64Array = exp(matmul(t64, t64)).toArray();
const o3: Float32Array = add(2, t32).toArray();
const o4: Tensor<'float32'> = astype(t64, 'float32');

// Transforms: results structured like params, of their dtype.
const loss = (p: { w: Sym; b: Sym }, x: Sym) => sum(add(matmul(x, p.w), p.b));
const params = { w: tensor(new Float64Array(4), [2, 2]), b: tensor(new Float64Array(2), [2]) };
const g = grad(loss)(params, t64);
const gw: Float64Array = g.w.toArray();
const [value, g2] = valueAndGrad(loss)(params, t64);
const v: number = value;
const gb: Float64Array = g2.b.toArray();
const hv = hvp(loss, params, params, [t64]);
const hb: Float64Array = hv.b.toArray();
const xbar: Float64Array = grad(loss, { argnum: 1 })(params, t64).toArray();
const H: Tensor<'float64'> = hessian(loss)(params, t64);
const J: Tensor<'float64'> = jacobian(loss)(params, t64);
const [out, jv] = jvp(loss, params, params, [t64]);
const jo: Float64Array = jv.toArray();
const [y, pullback] = vjp(loss, params, [t64]);
const pw: Float64Array = pullback(y).w.toArray();
// @ts-expect-error params must have the traced function's keys
grad(loss)({ w: params.w }, t64);
const single = (p: Sym) => sum(p);
const gs: Float32Array = grad(single)(t32).toArray();

// Disposal without lib esnext.disposable.
t64[Symbol.dispose]();
t32.dispose();

// Vectors are Float32Array or Float64Array alike.
declare const d: Differentiable;
gradCheck(d, { at: new Float32Array(2) });
gradCheck(d, { at: new Float64Array(2) });

export const used = [a64, a32, byName, scalar, z64, z32, f64, wrong, wrong2, unknownDtype, anyTensor, o1, o2, o3, o4, gw, v, gb, hb, xbar, H, J, out, jo, pw, gs];
