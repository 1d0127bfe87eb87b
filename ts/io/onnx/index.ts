/**
 * ONNX import: a model as an exporter writes it (PyTorch's `torch.onnx.export`) becomes a hesse
 * model. decode.ts reads the protobuf, fold.ts evaluates the constant (shape) arithmetic,
 * rules/ holds one rule table per op family, model.ts walks the graph.
 */
import { decodeModel } from './decode.js';
import { OnnxModel, type OnnxLoadOptions } from './model.js';

export { OnnxModel, type OnnxConstantInfo, type OnnxLoadOptions, type OnnxUnsupported, type OnnxValueInfo } from './model.js';

/**
 * Decodes an ONNX model (the bytes of a .onnx file). Errors: MALFORMED_FILE for bytes that are
 * not an ONNX protobuf or attributes that contradict the spec (naming the node); UNSUPPORTED_OP
 * naming every op, attribute, data type or external data hesse does not handle (unless
 * `inspect`); INVALID_ARGUMENT for an `input`/`output`/`inputs` name the graph lacks, or graph
 * inputs left without a value.
 */
export async function loadOnnx(bytes: Uint8Array | ArrayBuffer, options: OnnxLoadOptions = {}): Promise<OnnxModel> {
  return new OnnxModel(await decodeModel(bytes), options);
}
