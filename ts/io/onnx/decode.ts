/**
 * ONNX decoding: the protobuf (through `onnx-proto`, loaded on first use) as a typed graph.
 * Tensors become {@link Const}s (values as float64, with their ONNX element class), attributes
 * are read through {@link attributesOf}, whose getters check the attribute's declared type (an
 * INT read as a FLOAT is MALFORMED_FILE, never a silent 0). Nothing here knows any op.
 */
import { HesseError } from '../../errors.js';

type Long = number | { toNumber(): number };
/** TensorProto, as onnx-proto decodes it (the fields hesse reads). */
export interface TensorProto {
  /** ONNX's TensorProto.name field (as onnx-proto decodes it). */
  name?: string | null;
  /** ONNX's TensorProto.dims field (as onnx-proto decodes it). */
  dims?: Long[] | null;
  /** ONNX's TensorProto.dataType field (as onnx-proto decodes it). */
  dataType?: number | null;
  /** ONNX's TensorProto.floatData field (as onnx-proto decodes it). */
  floatData?: number[] | null;
  /** ONNX's TensorProto.doubleData field (as onnx-proto decodes it). */
  doubleData?: number[] | null;
  /** ONNX's TensorProto.int32Data field (as onnx-proto decodes it). */
  int32Data?: number[] | null;
  /** ONNX's TensorProto.int64Data field (as onnx-proto decodes it). */
  int64Data?: Long[] | null;
  /** ONNX's TensorProto.rawData field (as onnx-proto decodes it). */
  rawData?: Uint8Array | null;
  /** 1 = EXTERNAL: the values live in another file, named in externalData. */
  dataLocation?: number | null;
  /** ONNX's TensorProto.externalData field (as onnx-proto decodes it). */
  externalData?: { key?: string | null; value?: string | null }[] | null;
}
/** AttributeProto (type: FLOAT 1, INT 2, STRING 3, TENSOR 4, GRAPH 5, FLOATS 6, INTS 7, STRINGS 8). */
export interface AttributeProto {
  /** ONNX's AttributeProto.name field (as onnx-proto decodes it). */
  name?: string | null;
  /** ONNX's AttributeProto.type field (as onnx-proto decodes it). */
  type?: number | null;
  /** ONNX's AttributeProto.f field (as onnx-proto decodes it). */
  f?: number | null;
  /** ONNX's AttributeProto.i field (as onnx-proto decodes it). */
  i?: Long | null;
  /** ONNX's AttributeProto.s field (as onnx-proto decodes it). */
  s?: Uint8Array | null;
  /** ONNX's AttributeProto.t field (as onnx-proto decodes it). */
  t?: TensorProto | null;
  /** ONNX's AttributeProto.floats field (as onnx-proto decodes it). */
  floats?: number[] | null;
  /** ONNX's AttributeProto.ints field (as onnx-proto decodes it). */
  ints?: Long[] | null;
  /** ONNX's AttributeProto.strings field (as onnx-proto decodes it). */
  strings?: Uint8Array[] | null;
}
/** NodeProto. */
export interface NodeProto {
  /** ONNX's NodeProto.input field (as onnx-proto decodes it). */
  input?: string[] | null;
  /** ONNX's NodeProto.output field (as onnx-proto decodes it). */
  output?: string[] | null;
  /** ONNX's NodeProto.name field (as onnx-proto decodes it). */
  name?: string | null;
  /** ONNX's NodeProto.opType field (as onnx-proto decodes it). */
  opType?: string | null;
  /** ONNX's NodeProto.domain field (as onnx-proto decodes it). */
  domain?: string | null;
  /** ONNX's NodeProto.attribute field (as onnx-proto decodes it). */
  attribute?: AttributeProto[] | null;
}
/** ValueInfoProto (tensor types only). */
export interface ValueInfo {
  /** ONNX's ValueInfo.name field (as onnx-proto decodes it). */
  name?: string | null;
  /** ONNX's ValueInfo.type field (as onnx-proto decodes it). */
  type?: { tensorType?: { elemType?: number | null; shape?: { dim?: { dimValue?: Long | null; dimParam?: string | null }[] | null } | null } | null } | null;
}
/** GraphProto. */
export interface GraphProto {
  /** ONNX's GraphProto.node field (as onnx-proto decodes it). */
  node?: NodeProto[] | null;
  /** ONNX's GraphProto.initializer field (as onnx-proto decodes it). */
  initializer?: TensorProto[] | null;
  /** ONNX's GraphProto.input field (as onnx-proto decodes it). */
  input?: ValueInfo[] | null;
  /** ONNX's GraphProto.output field (as onnx-proto decodes it). */
  output?: ValueInfo[] | null;
}
/** ModelProto. */
export interface ModelProto {
  /** ONNX's ModelProto.graph field (as onnx-proto decodes it). */
  graph?: GraphProto | null;
  /** ONNX's ModelProto.opsetImport field (as onnx-proto decodes it). */
  opsetImport?: { domain?: string | null; version?: Long | null }[] | null;
}

/** A protobuf integer (int64 fields decode as Long objects). */
export const num = (v: Long | null | undefined): number => (v === null || v === undefined ? 0 : typeof v === 'number' ? v : v.toNumber());

/** ONNX TensorProto.DataType codes. */
export const DT = { FLOAT: 1, UINT8: 2, INT8: 3, INT32: 6, INT64: 7, BOOL: 9, FLOAT16: 10, DOUBLE: 11 } as const;
/** TensorProto.DataLocation.EXTERNAL. */
const EXTERNAL = 1;

/** The element class of a constant: floats (parameters or float constants), integers (shapes, indices), booleans (masks). */
export type ElemClass = 'float' | 'int' | 'bool';

/** The element class of an ONNX data type code, or undefined for one hesse does not read. */
export function elemClass(dt: number): ElemClass | undefined {
  if (dt === DT.FLOAT || dt === DT.DOUBLE || dt === DT.FLOAT16) return 'float';
  if (dt === DT.INT32 || dt === DT.INT64 || dt === DT.INT8 || dt === DT.UINT8) return 'int';
  if (dt === DT.BOOL) return 'bool';
  return undefined;
}

/**
 * A tensor known at import time: an initializer, a Constant, or the result of folding. Values
 * are float64 (int64 beyond 2⁵³ lose their last bits: only INT64_MAX/MIN sentinels of Slice do,
 * and they clamp the same); `elem` keeps ONNX's element class, which decides the semantics of
 * folded arithmetic (integer Div truncates) and whether a float initializer is a parameter.
 */
export interface Const {
  /** The tag that tells a constant from a traced value. */
  readonly kind: 'const';
  /** Dimensions, outermost first. */
  readonly shape: readonly number[];
  /** The values, row-major, as float64. */
  readonly data: Float64Array;
  /** ONNX's element class (it decides folding semantics and whether a float initializer may be a parameter). */
  readonly elem: ElemClass;
}

/** A constant of `shape` and class `elem` holding `data`. */
export const konst = (shape: readonly number[], data: ArrayLike<number>, elem: ElemClass): Const => ({ kind: 'const', shape: [...shape], data: Float64Array.from(data), elem });

/** A tensor's values (initializer or Constant attribute). `where` names it in messages. */
export function tensorValues(t: TensorProto, where: string): Const {
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
  if (shape.some((d) => !Number.isSafeInteger(d) || d < 0)) throw new HesseError('MALFORMED_FILE', `ONNX tensor '${t.name}' (${where}): dims [${shape.join(', ')}] are not integers ≥ 0`);
  const n = shape.reduce((a, b) => a * b, 1);
  const dt = t.dataType ?? 0;
  const raw = t.rawData && t.rawData.length ? t.rawData : undefined;
  const view = raw ? new DataView(raw.buffer, raw.byteOffset, raw.byteLength) : undefined;
  const need = (bytes: number) => {
    if (view && view.byteLength !== n * bytes) {
      throw new HesseError('MALFORMED_FILE', `ONNX tensor '${t.name}' (${where}): ${view.byteLength} bytes of data for shape [${shape.join(', ')}]`);
    }
  };
  const elem = elemClass(dt);
  let data: Float64Array;
  if (dt === DT.FLOAT) {
    need(4);
    data = view ? Float64Array.from({ length: n }, (_, i) => view.getFloat32(4 * i, true)) : Float64Array.from(t.floatData ?? []);
  } else if (dt === DT.DOUBLE) {
    need(8);
    data = view ? Float64Array.from({ length: n }, (_, i) => view.getFloat64(8 * i, true)) : Float64Array.from(t.doubleData ?? []);
  } else if (dt === DT.INT64) {
    need(8);
    data = view ? Float64Array.from({ length: n }, (_, i) => Number(view.getBigInt64(8 * i, true))) : Float64Array.from((t.int64Data ?? []).map(num));
  } else if (dt === DT.INT32) {
    need(4);
    data = view ? Float64Array.from({ length: n }, (_, i) => view.getInt32(4 * i, true)) : Float64Array.from(t.int32Data ?? []);
  } else if (dt === DT.INT8 || dt === DT.UINT8 || dt === DT.BOOL) {
    // Stored one byte each in raw_data, or widened into int32_data.
    need(1);
    const signed = dt === DT.INT8;
    data = view ? Float64Array.from({ length: n }, (_, i) => (signed ? view.getInt8(i) : view.getUint8(i))) : Float64Array.from(t.int32Data ?? []);
    if (dt === DT.BOOL) data = data.map((v) => (v !== 0 ? 1 : 0));
  } else {
    throw new HesseError('UNSUPPORTED_OP', `ONNX tensor '${t.name}' (${where}) has data type ${dt}; hesse reads float32, float64, int8/uint8/int32/int64 and bool`);
  }
  if (data.length !== n) {
    throw new HesseError('MALFORMED_FILE', `ONNX tensor '${t.name}' (${where}): ${data.length} values for shape [${shape.join(', ')}]`);
  }
  return { kind: 'const', shape, data, elem: elem! };
}

/** How messages name a node: its name, op type and the opset. */
export const nodeName = (node: NodeProto, opset: number) => `node '${node.name ?? ''}' (${node.opType ?? ''}, opset ${opset})`;

/** A node that contradicts the ONNX spec: MALFORMED_FILE naming it, and what to do. */
export function invalidNode(where: string, why: string): never {
  throw new HesseError('MALFORMED_FILE', `ONNX ${where}: ${why}; the model is invalid: check it with onnx.checker.check_model(model, full_check=True) and re-export it`);
}

/** Attribute type codes by the getter that reads them. */
const ATTR_TYPE = { float: 1, int: 2, string: 3, tensor: 4, floats: 6, ints: 7 } as const;
const TYPE_NAME: Record<number, string> = { 1: 'FLOAT', 2: 'INT', 3: 'STRING', 4: 'TENSOR', 5: 'GRAPH', 6: 'FLOATS', 7: 'INTS', 8: 'STRINGS' };

/** A node's attributes by name, each getter checking the declared type. */
export interface Attrs {
  /** The attribute names the node carries. */
  readonly names: readonly string[];
  /** Whether the node carries attribute `name`. */
  has(name: string): boolean;
  /** An INT attribute, or `dflt`. */
  int(name: string, dflt: number): number;
  /** An INT attribute that must be 0 or 1, as a boolean (default `dflt`). */
  flag(name: string, dflt: boolean): boolean;
  /** A FLOAT attribute, or `dflt`. */
  flt(name: string, dflt: number): number;
  /** An INTS attribute, or undefined. */
  ints(name: string): number[] | undefined;
  /** A FLOATS attribute, or undefined. */
  floats(name: string): number[] | undefined;
  /** A STRING attribute, or `dflt`. */
  str(name: string, dflt: string): string;
  /** A STRINGS attribute, or undefined. */
  strs(name: string): string[] | undefined;
  /** A TENSOR attribute, or undefined. */
  tensor(name: string): TensorProto | undefined;
}

/** The attributes of `node`; `where` names it in the MALFORMED_FILE a mistyped attribute raises. */
export function attributesOf(node: NodeProto, where: string): Attrs {
  const attrs = new Map((node.attribute ?? []).map((a) => [a.name ?? '', a]));
  const get = (name: string, want: keyof typeof ATTR_TYPE) => {
    const a = attrs.get(name);
    if (!a) return undefined;
    // type 0: a writer that predates the field; the value fields then say what it is.
    if (a.type && a.type !== ATTR_TYPE[want]) invalidNode(where, `attribute '${name}' is ${TYPE_NAME[a.type] ?? a.type}, expected ${TYPE_NAME[ATTR_TYPE[want]]}`);
    return a;
  };
  const dec = (s: Uint8Array | null | undefined) => new TextDecoder().decode(s ?? new Uint8Array());
  return {
    names: [...attrs.keys()],
    has: (name) => attrs.has(name),
    int: (name, dflt) => {
      const a = get(name, 'int');
      return a ? num(a.i) : dflt;
    },
    flag(name, dflt) {
      const v = this.int(name, dflt ? 1 : 0);
      if (v !== 0 && v !== 1) invalidNode(where, `${name} must be 0 or 1, got ${v}`);
      return v === 1;
    },
    flt: (name, dflt) => {
      const a = get(name, 'float');
      const v = a ? (a.f ?? 0) : dflt;
      if (!Number.isFinite(v)) invalidNode(where, `attribute '${name}' must be finite, got ${v}`);
      return v;
    },
    ints: (name) => get(name, 'ints')?.ints?.map(num) ?? (attrs.has(name) ? [] : undefined),
    floats: (name) => get(name, 'floats')?.floats?.slice() ?? (attrs.has(name) ? [] : undefined),
    str: (name, dflt) => {
      const a = get(name, 'string');
      return a ? dec(a.s) : dflt;
    },
    strs: (name) => {
      const a = attrs.get(name);
      if (!a) return undefined;
      if (a.type && a.type !== 8) invalidNode(where, `attribute '${name}' is ${TYPE_NAME[a.type] ?? a.type}, expected STRINGS`);
      return (a.strings ?? []).map(dec);
    },
    tensor: (name) => get(name, 'tensor')?.t ?? undefined,
  };
}

/** The default-domain opset a model imports (0 when it names none). */
export const defaultOpset = (model: ModelProto) => num((model.opsetImport ?? []).find((o) => !o.domain || o.domain === 'ai.onnx')?.version) || 0;

/** The bytes of a .onnx file as a ModelProto; MALFORMED_FILE for anything else. */
export async function decodeModel(bytes: Uint8Array | ArrayBuffer): Promise<ModelProto> {
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
  return model;
}
