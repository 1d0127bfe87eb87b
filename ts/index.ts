/**
 * hesse: second-order automatic differentiation for JavaScript and TypeScript.
 * This module only re-exports; each file beside it has one job.
 */
export { init, isInitialized, wasmVariant, preferredWasmVariant, type InitOptions } from './runtime.js';
export { HesseError, type HesseErrorCode } from './errors.js';
export { Tensor, tensor, zeros, full, memoryStats, type DType, type TensorData, type NestedArray, type NumericArray, type TypedArrayOf } from './tensor.js';
export {
  add, sub, mul, div, maximum, minimum,
  neg, abs, square, sqrt, relu, exp, log, tanh, sigmoid, leakyRelu, elu, softplus, gelu,
  sum, mean, max, logsumexp, softmax, logSoftmax, layerNorm,
  mseLoss, crossEntropy, bceWithLogits,
  matmul, gemm, transpose, permute, concat, reshape, astype, conv2d,
  setKernels, getKernels,
  type Out, type ReduceOptions, type GemmOptions, type Conv2dOptions,
} from './ops.js';
export { Sym, IndexSym } from './trace.js';
export { gather, slice, pad, expand, where, maxPool2d, avgPool2d, globalAvgPool, type IndicesLike, type Pool2dOptions } from './ops.js';
export { indices, IndexTensor, type IndexArray, type NestedIndexArray } from './indices.js';
export { hardSigmoid, hardSwish, silu, clip, hardtanh, relu6, type HardSigmoidOptions } from './ops.js';
export {
  grad, valueAndGrad, hvp, jvp, vjp, hessian, jacobian,
  type ParamTree, type SymParams, type TensorsOf, type Like, type DTypeOfTree, type DenseOf, type Traceable, type TransformOptions, type HessianOptions,
} from './transforms.js';
export * as nn from './nn.js';
export { objective, Objective, type LossName, type ObjectiveOptions, type ObjectiveData, type Curvature, type GaussNewtonOptions, type DenseOptions, type KfacOptions, type Progress } from './objective.js';
export type { HostArray, IndexHostArray } from './batches.js';
export { gradCheck, hvpCheck, hessianFD, type Differentiable, type CheckResult } from './check.js';
export {
  eigenvalues, powerIteration, trace, diagonal, spectralDensity, cg, minres, eigh, eigvalsh, cholesky,
  type LinearOperator, type DenseMatrix, type OperatorLike, type NativeOperator, type AsyncLinearOperator, type AsyncOperatorLike,
  type EigenOptions, type EigenResult, type DensityOptions, type CgOptions, type CgResult,
  type EigenResultWithVectors, type PowerIterationOptions, type PowerIterationResult, type TraceOptions, type TraceResult,
  type DiagonalOptions, type DiagonalResult, type DensityResult, type MinresOptions, type MinresResult, type EighResult, type Vector,
  type ProgressCallback, type ProgressOptions,
} from './curvature.js';
export { eigenvaluesAsync, powerIterationAsync, traceAsync, diagonalAsync, spectralDensityAsync, cgAsync, minresAsync } from './curvature-async.js';
export { hessianFree, type HessianFreeOptions, type HessianFreeStep, type HessianFreeResult } from './optim.js';
export * as datasets from './datasets.js';
export { type Dataset } from './datasets.js';
export { laplace, Laplace, type LaplaceOptions, type LaplacePrediction } from './laplace.js';
export { Kfac, type KfacLayer, type KfacUncovered } from './kfac.js';
export { loadOnnx, OnnxModel, type OnnxConstantInfo, type OnnxLoadOptions, type OnnxUnsupported, type OnnxValueInfo } from './io/onnx/index.js';
export { type Model, type ParamBlock } from './nn.js';
export { objectiveAsync, AsyncObjective, type AsyncObjectiveOptions } from './pool/objective-async.js';
export * as npy from './io/npy.js';
