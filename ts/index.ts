/**
 * hesse: second-order automatic differentiation for JavaScript and TypeScript.
 * This module only re-exports; each file beside it has one job.
 */
export { init, isInitialized, wasmVariant, type InitOptions } from './runtime.js';
export { HesseError, type HesseErrorCode } from './errors.js';
export { Tensor, tensor, zeros, full, memoryStats, type DType, type TensorData, type NestedArray, type TypedArrayOf } from './tensor.js';
export {
  add, sub, mul, div, maximum, minimum,
  neg, abs, square, sqrt, relu, exp, log, tanh, sigmoid,
  sum, mean, max, logsumexp,
  matmul, gemm, transpose, reshape, astype, conv2d,
  setKernels, getKernels,
  type ReduceOptions, type GemmOptions, type Conv2dOptions,
} from './ops.js';
