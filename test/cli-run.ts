/**
 * Shared by the CLI and ONNX tests: the built CLI (dist/cli/main.js) run as a subprocess, as a
 * user runs it, and ONNX models built in the test with onnx-proto.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);
const cli = new URL('../dist/cli/main.js', import.meta.url).pathname;

/** `hessian ...args`: exit code, stdout and stderr. */
export async function hessian(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [cli, ...args]);
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

/** A float32 ValueInfoProto (graph input or output) of static shape `dims`. */
export const valueInfo = (name: string, dims: number[]) => ({ name, type: { tensorType: { elemType: 1, shape: { dim: dims.map((d) => ({ dimValue: d })) } } } });

/** The bytes of a .onnx file holding `graph` (a GraphProto as a plain object). */
export async function encodeModel(graph: object, opset = 13): Promise<Uint8Array> {
  const { onnx } = ((await import('onnx-proto')) as unknown as { default: { onnx: any } }).default;
  return onnx.ModelProto.encode(onnx.ModelProto.create({ irVersion: 8, opsetImport: [{ version: opset }], graph })).finish();
}
