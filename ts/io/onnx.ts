/**
 * ONNX import: a model as an exporter writes it (PyTorch's `torch.onnx.export`) becomes a hesse
 * model, recorded into the same programs the tracer builds, so every derivative and curvature
 * tool works on it. The protobuf is decoded by `onnx-proto` (protobufjs), loaded on first use.
 *
 * Parameters are the graph's floating-point initializers, in the order they appear in the graph
 * (PyTorch's exporter keeps named_parameters order and names). Integer initializers and
 * `Constant` nodes are constants; shape arithmetic (Shape, Gather, Concat, Unsqueeze, Slice,
 * Cast on constants) is folded at import time, since every shape is static once the input's is.
 * Supported ops: Gemm, MatMul (a 2-D right operand), Add, Sub, Mul, Div, Neg, Relu, LeakyRelu, Tanh, Sigmoid,
 * Softplus, Elu, Exp, Log, Sqrt, Pow (constant exponent), Erf, Gelu, Conv (2-D, symmetric
 * pads, dilation 1, group 1), Flatten, Reshape, Transpose, Concat, Unsqueeze, Squeeze, Identity,
 * Constant, ReduceMean, ReduceSum, LayerNormalization (last axis), Softmax, LogSoftmax (last
 * axis). Anything else is an UNSUPPORTED_OP error naming the op type, the node and the opset.
 *
 * Attributes are checked, never wrapped or ignored (a negative pad would become 4294967295 in a
 * u32): what needs no shapes (flags, signs, permutations) when the model is loaded, the rest (an
 * axis against the rank, a reshape against the size) when it is built on data. An invalid model is
 * MALFORMED_FILE naming the node (name, op type, opset); any other error while building a node is
 * prefixed with that node. Initializers in external data files are UNSUPPORTED_OP, with how to
 * re-save the model with its weights inside.
 */
import { HesseError } from '../errors.js';
import { blockViews, type Model, type ParamBlock } from '../nn.js';
import type { DType } from '../tensor.js';
import { traced, type Sym } from '../trace.js';

type Long = number | { toNumber(): number };
interface TensorProto {
  name?: string | null;
  dims?: Long[] | null;
  dataType?: number | null;
  floatData?: number[] | null;
  doubleData?: number[] | null;
  int32Data?: number[] | null;
  int64Data?: Long[] | null;
  rawData?: Uint8Array | null;
  /** 1 = EXTERNAL: the values live in another file, named in externalData. */
  dataLocation?: number | null;
  externalData?: { key?: string | null; value?: string | null }[] | null;
}
interface AttributeProto {
  name?: string | null;
  f?: number | null;
  i?: Long | null;
  s?: Uint8Array | null;
  t?: TensorProto | null;
  floats?: number[] | null;
  ints?: Long[] | null;
}
interface NodeProto {
  input?: string[] | null;
  output?: string[] | null;
  name?: string | null;
  opType?: string | null;
  domain?: string | null;
  attribute?: AttributeProto[] | null;
}
interface ValueInfo {
  name?: string | null;
  type?: { tensorType?: { elemType?: number | null; shape?: { dim?: { dimValue?: Long | null; dimParam?: string | null }[] | null } | null } | null } | null;
}
interface GraphProto {
  node?: NodeProto[] | null;
  initializer?: TensorProto[] | null;
  input?: ValueInfo[] | null;
  output?: ValueInfo[] | null;
}
interface ModelProto {
  graph?: GraphProto | null;
  opsetImport?: { domain?: string | null; version?: Long | null }[] | null;
}

const num = (v: Long | null | undefined): number => (v === null || v === undefined ? 0 : typeof v === 'number' ? v : v.toNumber());

/** ONNX TensorProto.DataType codes hesse reads. */
const FLOAT = 1;
const INT32 = 6;
const INT64 = 7;
const DOUBLE = 11;
/** TensorProto.DataLocation.EXTERNAL. */
const EXTERNAL = 1;

/** A tensor's values as numbers (float32/64 become parameters or float constants; ints are shapes). */
function tensorValues(t: TensorProto, where: string): { shape: number[]; data: Float64Array; isFloat: boolean } {
  if (t.dataLocation === EXTERNAL || (t.externalData?.length ?? 0) > 0) {
    const file = t.externalData?.find((e) => e.key === 'location')?.value;
    throw new HesseError(
      'UNSUPPORTED_OP',
      `ONNX tensor '${t.name}' (${where}): external data is not supported (its values are in ${file ? `'${file}'` : 'another file'}); ` +
        "save the model with its weights inside: onnx.save(onnx.load('model.onnx'), 'inline.onnx', save_as_external_data=False) " +
        '(onnx.load reads the external file beside the model), or export with torch.onnx.export(..., external_data=False)',
    );
  }
  const shape = (t.dims ?? []).map(num);
  const n = shape.reduce((a, b) => a * b, 1);
  const dt = t.dataType ?? 0;
  let data: Float64Array;
  const raw = t.rawData && t.rawData.length ? t.rawData : undefined;
  const view = raw ? new DataView(raw.buffer, raw.byteOffset, raw.byteLength) : undefined;
  const need = (bytes: number) => {
    if (view && view.byteLength !== n * bytes) {
      throw new HesseError('MALFORMED_FILE', `ONNX tensor '${t.name}' (${where}): ${view.byteLength} bytes of data for shape [${shape.join(', ')}]`);
    }
  };
  if (dt === FLOAT) {
    need(4);
    data = view ? Float64Array.from({ length: n }, (_, i) => view.getFloat32(4 * i, true)) : Float64Array.from(t.floatData ?? []);
  } else if (dt === DOUBLE) {
    need(8);
    data = view ? Float64Array.from({ length: n }, (_, i) => view.getFloat64(8 * i, true)) : Float64Array.from(t.doubleData ?? []);
  } else if (dt === INT64) {
    need(8);
    data = view ? Float64Array.from({ length: n }, (_, i) => Number(view.getBigInt64(8 * i, true))) : Float64Array.from((t.int64Data ?? []).map(num));
  } else if (dt === INT32) {
    need(4);
    data = view ? Float64Array.from({ length: n }, (_, i) => view.getInt32(4 * i, true)) : Float64Array.from(t.int32Data ?? []);
  } else {
    throw new HesseError('UNSUPPORTED_OP', `ONNX tensor '${t.name}' (${where}) has data type ${dt}; hesse reads float32, float64, int32 and int64`);
  }
  if (data.length !== n) {
    throw new HesseError('MALFORMED_FILE', `ONNX tensor '${t.name}' (${where}): ${data.length} values for shape [${shape.join(', ')}]`);
  }
  return { shape, data, isFloat: dt === FLOAT || dt === DOUBLE };
}

/** A value during the walk: a traced tensor, or a constant known at import time. */
type Value = { sym: Sym } | { shape: number[]; data: Float64Array; isFloat: boolean };
const isSym = (v: Value): v is { sym: Sym } => 'sym' in v;

/** How messages name a node: its name, op type and the opset. */
const nodeName = (node: NodeProto, opset: number) => `node '${node.name ?? ''}' (${node.opType ?? ''}, opset ${opset})`;

/** A node whose attributes contradict the ONNX spec: MALFORMED_FILE naming it, and what to do. */
function invalidNode(where: string, why: string): never {
  throw new HesseError('MALFORMED_FILE', `ONNX ${where}: ${why}; the model is invalid: check it with onnx.checker.check_model(model, full_check=True) and re-export it`);
}

/** A node's attributes by name, read as ONNX stores them. */
function attributesOf(node: NodeProto) {
  const attrs = new Map((node.attribute ?? []).map((a) => [a.name ?? '', a]));
  return {
    attrs,
    int: (name: string, dflt: number) => (attrs.has(name) ? num(attrs.get(name)!.i) : dflt),
    flt: (name: string, dflt: number) => (attrs.has(name) ? (attrs.get(name)!.f ?? dflt) : dflt),
    ints: (name: string) => attrs.get(name)?.ints?.map(num),
    str: (name: string, dflt: string) => (attrs.has(name) ? new TextDecoder().decode(attrs.get(name)!.s ?? new Uint8Array()) : dflt),
  };
}

/** Distinct integers 0..n-1 in some order. */
const isPermutation = (p: readonly number[]) => p.every((a) => Number.isInteger(a) && a >= 0 && a < p.length) && new Set(p).size === p.length;

/**
 * The checks of a node's attributes that need no shapes, run by loadOnnx so that an invalid model
 * fails when it is loaded, naming the node. (Those that need the rank of an input, such as an axis
 * in range or a perm as long as the rank, run when the graph is built on data.)
 */
function checkAttributes(node: NodeProto, opset: number): void {
  const a = attributesOf(node);
  const invalid = (why: string) => invalidNode(nodeName(node, opset), why);
  const flag = (name: string) => {
    const v = a.int(name, 0);
    if (v !== 0 && v !== 1) invalid(`${name} must be 0 or 1, got ${v}`);
  };
  const atLeast = (name: string, min: number) => {
    const v = a.ints(name);
    if (v?.some((d) => d < min)) invalid(`${name} must be integers ≥ ${min}, got [${v.join(', ')}]`);
  };
  const finiteAttr = (name: string) => {
    if (!Number.isFinite(a.flt(name, 0))) invalid(`${name} must be finite, got ${a.flt(name, 0)}`);
  };
  switch (node.opType) {
    case 'Gemm':
      flag('transA');
      flag('transB');
      finiteAttr('alpha');
      finiteAttr('beta');
      return;
    case 'Conv': {
      atLeast('pads', 0);
      atLeast('strides', 1);
      atLeast('dilations', 1);
      atLeast('kernel_shape', 1);
      if (a.int('group', 1) < 1) invalid(`group must be ≥ 1, got ${a.int('group', 1)}`);
      const autoPad = a.str('auto_pad', 'NOTSET');
      if (!['NOTSET', 'VALID', 'SAME_UPPER', 'SAME_LOWER'].includes(autoPad)) invalid(`auto_pad must be NOTSET, VALID, SAME_UPPER or SAME_LOWER, got '${autoPad}'`);
      const pads = a.ints('pads');
      if (pads && pads.length % 2 !== 0) invalid(`pads must hold a begin and an end per spatial axis (an even count), got [${pads.join(', ')}]`);
      return;
    }
    case 'Transpose': {
      const perm = a.ints('perm');
      if (perm && !isPermutation(perm)) invalid(`perm [${perm.join(', ')}] is not a permutation of 0..${perm.length - 1}`);
      return;
    }
    case 'Unsqueeze':
    case 'Squeeze': {
      const axes = a.ints('axes');
      if (axes && new Set(axes).size !== axes.length) invalid(`axes [${axes.join(', ')}] repeat an axis`);
      return;
    }
    case 'ReduceMean':
    case 'ReduceSum':
      flag('keepdims');
      return;
    case 'Reshape':
      flag('allowzero');
      return;
    case 'Gelu': {
      const approx = a.str('approximate', 'none');
      if (approx !== 'none' && approx !== 'tanh') invalid(`approximate must be 'none' or 'tanh', got '${approx}'`);
      return;
    }
    case 'LeakyRelu':
    case 'Elu':
      finiteAttr('alpha');
      return;
    case 'LayerNormalization': {
      const eps = a.flt('epsilon', 1e-5);
      if (!(eps > 0 && Number.isFinite(eps))) invalid(`epsilon must be a finite number > 0, got ${eps}`);
      return;
    }
  }
}

/** An input or output of an ONNX graph, as the file declares it. */
export interface OnnxValueInfo {
  /** Its name in the graph. */
  name: string;
  /** Dimensions; a string is a symbolic dimension (any size fits). */
  shape: (number | string)[];
}

/** A model loaded from ONNX: a hesse `Model` plus what the file says about itself. */
export class OnnxModel implements Model {
  /** P: the number of parameters (the float initializers' elements, in file order, flat). */
  readonly size: number;
  /** The float initializers as parameter blocks (name, shape, offset in the flat vector), in file order. */
  readonly blocks: readonly ParamBlock[];
  /** The graph's inputs that are not initializers (exactly one: the data). */
  readonly inputs: readonly OnnxValueInfo[];
  /** The graph's outputs (exactly one). */
  readonly outputs: readonly OnnxValueInfo[];
  /** Distinct op types of the graph, in first-seen order. */
  readonly opTypes: readonly string[];
  /** The version of the default ONNX opset the file imports (0 when it names none). */
  readonly opset: number;
  readonly #graph: GraphProto;
  readonly #initial: Float64Array;
  readonly #params: Map<string, { offset: number; shape: number[] }>;

  /** @internal Use {@link loadOnnx}. */
  constructor(model: ModelProto) {
    const graph = model.graph;
    if (!graph || !graph.node) throw new HesseError('MALFORMED_FILE', 'this ONNX file has no graph');
    this.#graph = graph;
    this.opset = num((model.opsetImport ?? []).find((o) => !o.domain || o.domain === 'ai.onnx')?.version) || 0;
    const floats = (graph.initializer ?? []).map((t) => ({ t, v: tensorValues(t, 'initializer') })).filter((e) => e.v.isFloat);
    let offset = 0;
    const blocks: ParamBlock[] = [];
    this.#params = new Map();
    for (const { t, v } of floats) {
      const size = v.data.length;
      blocks.push({ name: t.name ?? `param${blocks.length}`, shape: v.shape, offset, size, init: { constant: 0 } });
      this.#params.set(t.name ?? '', { offset, shape: v.shape });
      offset += size;
    }
    this.size = offset;
    this.blocks = Object.freeze(blocks);
    this.#initial = new Float64Array(offset);
    floats.forEach(({ v }, i) => this.#initial.set(v.data, blocks[i]!.offset));
    const init = new Set((graph.initializer ?? []).map((t) => t.name));
    const info = (v: ValueInfo): OnnxValueInfo => ({
      name: v.name ?? '',
      shape: (v.type?.tensorType?.shape?.dim ?? []).map((d) => (d.dimParam ? d.dimParam : num(d.dimValue))),
    });
    this.inputs = Object.freeze((graph.input ?? []).filter((v) => !init.has(v.name)).map(info));
    this.outputs = Object.freeze((graph.output ?? []).map(info));
    this.opTypes = Object.freeze([...new Set(graph.node.map((n) => n.opType ?? ''))]);
    for (const node of graph.node) checkAttributes(node, this.opset);
    if (this.inputs.length !== 1 || this.outputs.length !== 1) {
      throw new HesseError('UNSUPPORTED_OP', `hesse imports ONNX models with one input and one output; this one has ${this.inputs.length} inputs (${this.inputs.map((i) => i.name).join(', ')}) and ${this.outputs.length} outputs`);
    }
  }

  /** The file's own parameter values (its float initializers), flat, P values: float64 unless `dtype: 'float32'`. */
  init(opts: { dtype?: DType } = {}): Float32Array | Float64Array {
    return opts.dtype === 'float32' ? Float32Array.from(this.#initial) : Float64Array.from(this.#initial);
  }

  /**
   * Views of `flat` (P values) by initializer name, each a subarray (sharing memory) of its block's
   * values in row-major order.
   * @throws HesseError LENGTH_MISMATCH unless `flat` has P values.
   */
  views<A extends Float32Array | Float64Array>(flat: A): Record<string, A> {
    return blockViews(this.blocks, this.size, flat);
  }

  /** Records the ONNX graph applied to x; returns its output. */
  build(x: Sym): Sym {
    const g = x.graph;
    const input = this.inputs[0]!;
    const fits = input.shape.length === x.shape.length && input.shape.every((d, i) => typeof d === 'string' || d === 0 || d === x.shape[i]);
    if (!fits) {
      throw new HesseError('SHAPE_MISMATCH', `the ONNX input '${input.name}' has shape [${input.shape.join(', ')}] but the data is [${x.shape.join(', ')}]`);
    }
    const env = new Map<string, Value>();
    env.set(input.name, { sym: x });
    // Parameters first, in their flat order, so the program's parameter vector is the file's.
    for (const [name, p] of this.#params) env.set(name, { sym: g.param(p.shape) });
    for (const t of this.#graph.initializer ?? []) {
      if (!this.#params.has(t.name ?? '')) env.set(t.name ?? '', tensorValues(t, 'initializer'));
    }
    for (const node of this.#graph.node ?? []) {
      try {
        this.#apply(node, env);
      } catch (e) {
        // Errors from the core (a shape rule) name the core op; say which node of the file it was.
        if (e instanceof HesseError && !e.message.startsWith('ONNX ')) {
          throw new HesseError(e.code, `ONNX ${nodeName(node, this.opset)}: ${e.message}; is the input the shape the model was exported for? (onnx.checker.check_model(model, full_check=True) checks the model)`);
        }
        throw e;
      }
    }
    const out = env.get(this.outputs[0]!.name);
    if (!out || !isSym(out)) throw new HesseError('UNSUPPORTED_OP', `the ONNX output '${this.outputs[0]!.name}' does not depend on the input`);
    return out.sym;
  }

  #apply(node: NodeProto, env: Map<string, Value>): void {
    const op = node.opType ?? '';
    const where = nodeName(node, this.opset);
    const fail = (why: string): never => {
      throw new HesseError('UNSUPPORTED_OP', `ONNX ${where}: ${why}`);
    };
    const invalid = (why: string) => invalidNode(where, why);
    if (node.domain && node.domain !== 'ai.onnx') fail(`domain '${node.domain}' is not supported`);
    const { int, flt, ints, str } = attributesOf(node);
    const ins = (node.input ?? []).map((name) => {
      if (name === '') return undefined;
      const v = env.get(name);
      if (!v) throw new HesseError('MALFORMED_FILE', `ONNX ${where}: input '${name}' is not defined before it is used`);
      return v;
    });
    const anySym = ins.find((v): v is { sym: Sym } => !!v && isSym(v));
    const set = (v: Value) => env.set((node.output ?? [])[0] ?? '', v);
    const constant = (i: number) => {
      const v = ins[i];
      if (!v || isSym(v)) return fail(`input ${i} must be a constant known at import time`);
      return v;
    };
    // Constants only: fold at import time (shape arithmetic).
    if (!anySym) {
      set(foldConstant(op, ins as Value[], node, where, fail));
      return;
    }
    const g = anySym.sym.graph;
    const sym = (i: number): Sym => {
      const v = ins[i];
      if (!v) return fail(`input ${i} is missing`);
      return isSym(v) ? v.sym : g.sym((r) => r.constant(v.shape, v.data));
    };
    const unary: Record<string, [string, number]> = {
      Relu: ['relu', 0], Tanh: ['tanh', 0], Sigmoid: ['sigmoid', 0], Softplus: ['softplus_exact', 0], Exp: ['exp', 0],
      Log: ['log', 0], Sqrt: ['sqrt', 0], Erf: ['erf', 0], LeakyRelu: ['leaky_relu', flt('alpha', 0.01)], Elu: ['elu', flt('alpha', 1)],
    };
    const rank = (s: Sym) => s.shape.length;
    /** An axis in [-r, hi], negative counting from the end of rank r (r: the input's rank unless the axes index the result). */
    const axisOf = (a: number, s: Sym, what = 'axis', r = rank(s), hi = r - 1) => {
      if (!Number.isInteger(a) || a < -r || a > hi) invalid(`${what} ${a} is out of range for an input of shape [${s.shape.join(', ')}] (valid: ${-r}..${hi}${r !== rank(s) ? `, axes of the rank-${r} result` : ''})`);
      return a < 0 ? a + r : a;
    };
    switch (op) {
      case 'Identity':
        set(ins[0]!);
        return;
      case 'Add':
      case 'Sub':
      case 'Mul':
      case 'Div':
        set({ sym: traced.binary(g, op.toLowerCase() as 'add', sym(0), sym(1)) });
        return;
      case 'Neg':
        set({ sym: traced.scale(sym(0), -1) });
        return;
      case 'Pow': {
        const e = constant(1).data;
        if (e.length !== 1) fail('the exponent must be a scalar constant');
        const p = e[0]!;
        const x = sym(0);
        // Exact forms for the common exponents (square is defined for negative x; xᵖ via the
        // general tower needs x > 0 unless p is an integer).
        if (p === 2) set({ sym: traced.act(x, 'square') });
        else if (p === 0.5) set({ sym: traced.act(x, 'sqrt') });
        else if (p === 1) set({ sym: x });
        else if (p === -1) set({ sym: traced.act(x, 'recip') });
        else set({ sym: traced.act(x, 'pow', p) });
        return;
      }
      case 'Gelu': {
        set({ sym: traced.act(sym(0), str('approximate', 'none') === 'tanh' ? 'gelu_tanh' : 'gelu') });
        return;
      }
      case 'Gemm': {
        const [a, b] = [sym(0), sym(1)];
        if (rank(a) !== 2 || rank(b) !== 2) invalid(`Gemm multiplies 2-D operands, got [${a.shape.join(', ')}] and [${b.shape.join(', ')}]`);
        let y = traced.matmul(g, a, b, int('transA', 0) === 1, int('transB', 0) === 1);
        const alpha = flt('alpha', 1);
        if (alpha !== 1) y = traced.scale(y, alpha);
        if (ins[2]) {
          const beta = flt('beta', 1);
          const c = beta === 1 ? sym(2) : traced.scale(sym(2), beta);
          y = traced.binary(g, 'add', y, c);
        }
        set({ sym: y });
        return;
      }
      case 'MatMul': {
        const [a, b] = [sym(0), sym(1)];
        if (rank(b) !== 2 || rank(a) < 2) fail(`MatMul needs a 2-D right operand and a left one of rank ≥ 2, got [${a.shape.join(', ')}] · [${b.shape.join(', ')}]`);
        if (rank(a) === 2) {
          set({ sym: traced.matmul(g, a, b) });
          return;
        }
        // [..., m, k] · [k, n]: the leading dims fold into the rows of one 2-D product.
        const k = a.shape[rank(a) - 1]!;
        const rows = traced.reshape(a, [a.size / k, k]);
        set({ sym: traced.reshape(traced.matmul(g, rows, b), [...a.shape.slice(0, -1), b.shape[1]!]) });
        return;
      }
      case 'Conv': {
        const [x, w] = [sym(0), sym(1)];
        const spatial = rank(w) - 2;
        if (spatial !== 2 || rank(x) !== 4) fail(`only 2-D convolution ([N, C, H, W] input, [O, C, kH, kW] weight) is supported, got [${x.shape.join(', ')}] and [${w.shape.join(', ')}]`);
        // Attribute lists hold one entry per spatial axis (pads: all begins, then all ends).
        const perAxis = (name: string, n: number, dflt: number[]) => {
          const v = ints(name) ?? dflt;
          if (v.length !== n) invalid(`${name} [${v.join(', ')}] must hold ${n} values for a 2-D convolution`);
          return v;
        };
        const autoPad = str('auto_pad', 'NOTSET');
        if (autoPad.startsWith('SAME')) fail(`auto_pad ${autoPad} is not supported; export with explicit pads`);
        const pads = autoPad === 'VALID' ? [0, 0, 0, 0] : perAxis('pads', 4, [0, 0, 0, 0]);
        const s = perAxis('strides', 2, [1, 1]);
        const kernel = ints('kernel_shape');
        if (kernel && (kernel.length !== 2 || kernel[0] !== w.shape[2] || kernel[1] !== w.shape[3])) invalid(`kernel_shape [${kernel.join(', ')}] does not match the weight [${w.shape.join(', ')}]`);
        if (perAxis('dilations', 2, [1, 1]).some((d) => d !== 1)) fail('dilation ≠ 1 is not supported');
        if (int('group', 1) !== 1) fail('grouped convolution is not supported');
        if (pads[0] !== pads[2] || pads[1] !== pads[3]) fail(`asymmetric pads [${pads.join(', ')}] are not supported`);
        let y = traced.conv2d(g, x, w, new Uint32Array([s[0]!, s[1]!, pads[0]!, pads[1]!, pads[0]!, pads[1]!, 1, 1, 1]));
        if (ins[2]) {
          const b = sym(2);
          y = traced.binary(g, 'add', y, traced.reshape(b, [1, b.size, 1, 1]));
        }
        set({ sym: y });
        return;
      }
      case 'Flatten': {
        const x = sym(0);
        // Flatten's axis may equal the rank (everything in the leading dimension).
        const axis = axisOf(int('axis', 1), x, 'axis', rank(x), rank(x));
        const lead = x.shape.slice(0, axis).reduce((p, d) => p * d, 1);
        set({ sym: traced.reshape(x, [lead, x.size / Math.max(lead, 1)]) });
        return;
      }
      case 'Reshape': {
        const x = sym(0);
        set({ sym: traced.reshape(x, reshapeTarget(x.shape, Array.from(constant(1).data), int('allowzero', 0) === 1, where)) });
        return;
      }
      case 'Transpose': {
        const x = sym(0);
        const perm = ints('perm') ?? x.shape.map((_, i) => rank(x) - 1 - i);
        if (perm.length !== rank(x)) invalid(`perm [${perm.join(', ')}] has ${perm.length} entries for an input of shape [${x.shape.join(', ')}]`);
        set({ sym: traced.permute(x, perm) });
        return;
      }
      case 'Concat': {
        const xs = ins.map((_, i) => sym(i));
        set({ sym: traced.concat(g, xs, axisOf(int('axis', 0), xs[0]!)) });
        return;
      }
      case 'Unsqueeze':
      case 'Squeeze': {
        const x = sym(0);
        const axes = ints('axes') ?? (ins[1] ? Array.from(constant(1).data) : undefined);
        let shape = [...x.shape];
        if (op === 'Unsqueeze') {
          if (!axes) invalid('Unsqueeze needs axes');
          // Axes index the result, whose rank is the input's plus the new ones.
          const r = shape.length + axes!.length;
          const at = axes!.map((a) => axisOf(a, x, 'axes entry', r));
          if (new Set(at).size !== at.length) invalid(`axes [${axes!.join(', ')}] repeat an axis`);
          for (const a of at.sort((p, q) => p - q)) shape.splice(a, 0, 1);
        } else {
          const drop = new Set((axes ?? shape.map((d, i) => (d === 1 ? i : -1)).filter((i) => i >= 0)).map((a) => axisOf(a, x, 'axes entry')));
          for (const a of drop) if (shape[a] !== 1) invalid(`cannot squeeze axis ${a} of size ${shape[a]} (shape [${shape.join(', ')}])`);
          shape = shape.filter((_, i) => !drop.has(i));
        }
        set({ sym: traced.reshape(x, shape) });
        return;
      }
      case 'ReduceMean':
      case 'ReduceSum': {
        const x = sym(0);
        const axes = (ints('axes') ?? (ins[1] ? Array.from(constant(1).data) : x.shape.map((_, i) => i))).map((a) => axisOf(a, x, 'axes entry'));
        if (new Set(axes).size !== axes.length) invalid(`axes repeat an axis`);
        const keep = int('keepdims', 1) === 1;
        let y = x;
        for (const a of [...axes].sort((p, q) => q - p)) y = traced.reduce(y, op === 'ReduceMean' ? 'mean' : 'sum', a, true);
        if (!keep) y = traced.reshape(y, x.shape.filter((_, i) => !axes.includes(i)));
        set({ sym: y });
        return;
      }
      case 'LayerNormalization': {
        const x = sym(0);
        if (axisOf(int('axis', -1), x) !== rank(x) - 1) fail('only normalization over the last axis is supported');
        let y = traced.lastAxis(x, 'layer_norm', flt('epsilon', 1e-5));
        y = traced.binary(g, 'mul', y, sym(1));
        if (ins[2]) y = traced.binary(g, 'add', y, sym(2));
        set({ sym: y });
        return;
      }
      case 'Softmax':
      case 'LogSoftmax': {
        const x = sym(0);
        if (axisOf(int('axis', -1), x) !== rank(x) - 1) fail('only the last axis is supported');
        set({ sym: traced.lastAxis(x, op === 'Softmax' ? 'softmax' : 'log_softmax') });
        return;
      }
      case 'Shape':
        set({ shape: [rank(sym(0))], data: Float64Array.from(sym(0).shape), isFloat: false });
        return;
      default:
        if (unary[op]) {
          set({ sym: traced.act(sym(0), unary[op]![0], unary[op]![1]) });
          return;
        }
        fail('this op is not supported');
    }
  }
}

/**
 * The shape ONNX Reshape produces from `spec`: 0 copies the input's dimension (unless allowzero),
 * one -1 takes what is left. A spec that cannot hold the input's values is an error naming the node.
 */
function reshapeTarget(from: readonly number[], spec: readonly number[], allowzero: boolean, where: string): number[] {
  const shown = `[${spec.join(', ')}]`;
  const invalid = (why: string) => invalidNode(where, why);
  if (spec.some((d) => !Number.isSafeInteger(d) || d < -1)) invalid(`the target shape ${shown} has an entry that is not an integer ≥ -1`);
  if (spec.filter((d) => d === -1).length > 1) invalid(`the target shape ${shown} has more than one -1`);
  const dims = spec.map((d, i) => {
    if (d !== 0 || allowzero) return d;
    if (i >= from.length) invalid(`the target shape ${shown} copies dimension ${i} (a 0), but the input [${from.join(', ')}] has rank ${from.length}`);
    return from[i]!;
  });
  const size = from.reduce((p, d) => p * d, 1);
  const known = dims.filter((d) => d !== -1).reduce((p, d) => p * d, 1);
  if (dims.includes(-1) ? known === 0 || size % known !== 0 : known !== size) {
    throw new HesseError('SHAPE_MISMATCH', `ONNX ${where}: cannot reshape [${from.join(', ')}] (${size} values) to ${shown}; is the input the shape the model was exported for?`);
  }
  return dims.map((d) => (d === -1 ? size / known : d));
}

/** Evaluates an op whose inputs are all constants (the shape arithmetic exporters emit). */
function foldConstant(op: string, ins: Value[], node: NodeProto, where: string, fail: (why: string) => never): Value {
  const c = ins as { shape: number[]; data: Float64Array; isFloat: boolean }[];
  const { attrs, int } = attributesOf(node);
  switch (op) {
    case 'Constant': {
      const t = attrs.get('value')?.t;
      if (t) return tensorValues(t, `Constant '${node.name}'`);
      const f = attrs.get('value_float')?.f;
      if (f !== undefined && f !== null) return { shape: [], data: Float64Array.of(f), isFloat: true };
      const i = attrs.get('value_ints')?.ints;
      if (i) return { shape: [i.length], data: Float64Array.from(i.map(num)), isFloat: false };
      return fail('Constant without a tensor value');
    }
    case 'Identity':
    case 'Cast':
      return c[0]!;
    case 'Gather': {
      const [data, idx] = [c[0]!, c[1]!];
      if (data.shape.length !== 1 || int('axis', 0) !== 0) return fail('only gathers from 1-D constants are folded');
      const n = data.data.length;
      const bad = idx.data.find((i) => !Number.isInteger(i) || i < -n || i >= n);
      if (bad !== undefined) invalidNode(where, `index ${bad} is out of range for ${n} values`);
      return { shape: idx.shape, data: idx.data.map((i) => data.data[i < 0 ? i + n : i]!), isFloat: data.isFloat };
    }
    case 'Unsqueeze':
    case 'Squeeze':
      return { shape: [c[0]!.data.length], data: c[0]!.data, isFloat: c[0]!.isFloat };
    case 'Reshape':
      return { shape: reshapeTarget(c[0]!.shape, Array.from(c[1]!.data), int('allowzero', 0) === 1, where), data: c[0]!.data, isFloat: c[0]!.isFloat };
    case 'Concat': {
      const data = Float64Array.from(c.flatMap((v) => Array.from(v.data)));
      return { shape: [data.length], data, isFloat: c.some((v) => v.isFloat) };
    }
    case 'Slice': {
      // Shape vectors only: one axis, step 1.
      if ((c[3] && c[3].data.some((a) => a !== 0 && a !== -1)) || (c[4] && c[4].data.some((st) => st !== 1)) || c[0]!.shape.length !== 1) {
        return fail('only slices of 1-D constants with step 1 are folded');
      }
      const d = c[0]!.data;
      const n = d.length;
      const norm = (v: number) => Math.max(0, Math.min(n, v < 0 ? v + n : v));
      const [s, e] = [norm(c[1]!.data[0] ?? 0), norm(c[2]!.data[0] ?? n)];
      const sl = d.slice(s, e);
      return { shape: [sl.length], data: sl, isFloat: c[0]!.isFloat };
    }
    case 'Mul':
    case 'Add':
    case 'Sub':
    case 'Div': {
      const [a, b] = [c[0]!, c[1]!];
      const f = { Mul: (p: number, q: number) => p * q, Add: (p: number, q: number) => p + q, Sub: (p: number, q: number) => p - q, Div: (p: number, q: number) => p / q }[op];
      const n = Math.max(a.data.length, b.data.length);
      if (a.data.length !== n && a.data.length !== 1) return fail('only elementwise or scalar constant arithmetic is folded');
      if (b.data.length !== n && b.data.length !== 1) return fail('only elementwise or scalar constant arithmetic is folded');
      const data = Float64Array.from({ length: n }, (_, i) => f(a.data[a.data.length === 1 ? 0 : i]!, b.data[b.data.length === 1 ? 0 : i]!));
      return { shape: a.data.length === n ? a.shape : b.shape, data, isFloat: a.isFloat || b.isFloat };
    }
    default:
      return fail('this op on constants is not supported');
  }
}

/**
 * Decodes an ONNX model (the bytes of a .onnx file). Errors: MALFORMED_FILE for bytes that are
 * not an ONNX protobuf or attributes that contradict the spec (naming the node); UNSUPPORTED_OP
 * for ops, data types, attributes or external data hesse does not handle.
 */
export async function loadOnnx(bytes: Uint8Array | ArrayBuffer): Promise<OnnxModel> {
  const u8 = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  const mod = (await import('onnx-proto')) as unknown as { default?: { onnx: unknown }; onnx?: unknown };
  const onnx = (mod.default ?? mod).onnx;
  let model: ModelProto;
  try {
    model = (onnx as { ModelProto: { decode(b: Uint8Array): ModelProto } }).ModelProto.decode(u8);
  } catch (e) {
    throw new HesseError('MALFORMED_FILE', `not an ONNX model (the protobuf did not decode: ${(e as Error).message}); is the file complete?`);
  }
  if (!model.graph || !model.graph.node || model.graph.node.length === 0) {
    throw new HesseError('MALFORMED_FILE', 'not an ONNX model: it has no graph nodes (truncated, or another kind of file)');
  }
  return new OnnxModel(model);
}
