/**
 * The imported model: an ONNX graph (decoded by decode.ts) as a hesse `Model`, recorded into the
 * same programs the tracer builds, so every derivative and curvature tool works on it. Each node
 * is folded (fold.ts) when its inputs are all constants, else built by its op's rule
 * (rules/index.ts).
 *
 * Parameters, buffers and constants. A float initializer is a **parameter** (in θ, in the flat
 * vector, in file order) unless every use of it is an input slot a rule declares constant: then
 * it is a **buffer** (BatchNormalization's running mean and variance: constants of the
 * objective, not in P, as PyTorch's buffers) or a **constant** (a Clip bound, a Pad value).
 * Integer initializers are constants; one the chosen output does not depend on is 'unused' (not
 * in θ: a parameter of another output only). A shared parameter is counted once: an initializer used by
 * several nodes, or reached through Identity aliases the exporter writes for tied weights, is one
 * block of θ (PyTorch's named_parameters counts a tied parameter once, too). Two initializers
 * the exporter wrote separately (a transposed copy its constant folding made) are two blocks.
 *
 * Checks at load (`loadOnnx`): every op is known (else one UNSUPPORTED_OP naming all unknown op
 * types, their nodes and the opset), every attribute a rule reads has its declared type and is
 * one the rule takes (another is UNSUPPORTED_OP: never ignored), the attribute checks that need
 * no shapes. Checks at build: shapes, axes against ranks, and the batch dimension: the data's
 * batch may differ from the exported one (batches of another size) only if the graph does not
 * bake it into a constant; if it does, a clear error says so.
 */
import { HesseError } from '../../errors.js';
import { blockViews, type Model, type ParamBlock } from '../../nn.js';
import { Tensor, type DType } from '../../tensor.js';
import { IndexSym, type Sym } from '../../trace.js';
import { unmergeInitializers } from './unmerge.js';
import { attributesOf, defaultOpset, elemClass, invalidNode, konst, nodeName, num, tensorValues, type Const, type ElemClass, type GraphProto, type ModelProto, type NodeProto, type ValueInfo } from './decode.js';
import { fold, foldable } from './fold.js';
import { RULES } from './rules/index.js';
import { bnTraining } from './rules/norm.js';
import { symv, type Ctx, type Value } from './rules/types.js';
import { constant } from './rules/engine.js';

/** An input or output of an ONNX graph, as the file declares it. */
export interface OnnxValueInfo {
  /** Its name in the graph. */
  name: string;
  /** Dimensions; a string is a symbolic dimension (any size fits). */
  shape: (number | string)[];
  /** The element class: 'float', 'int' (token ids, indices) or 'bool'; 'other' for another type. */
  elem: ElemClass | 'other';
}

/** A float initializer that is not a parameter. */
export interface OnnxConstantInfo {
  /** Its name in the graph. */
  name: string;
  /** Its shape. */
  shape: number[];
  /** 'buffer': BatchNorm running statistics; 'constant': another import-time constant (a bound, a pad value); 'unused': not on the chosen output's path. */
  role: 'buffer' | 'constant' | 'unused';
}

/** An op type the importer cannot build, with every node that uses it. */
export interface OnnxUnsupported {
  /** The op type (domain-qualified outside the default domain). */
  op: string;
  /** The names of its nodes. */
  nodes: string[];
  /** Why (an unknown op, or the attribute or domain it does not take). */
  why: string;
}

/** Options of {@link loadOnnx}. */
export interface OnnxLoadOptions {
  /** The graph input the model differentiates through (x): default the first one not in `inputs`. */
  input?: string;
  /** The graph output the model returns: default the first. */
  output?: string;
  /** Values for the other graph inputs (a mask, …): constants of the model. */
  inputs?: Record<string, Tensor | { shape: readonly number[]; data: ArrayLike<number> }>;
  /** Load even a model that uses unsupported ops (for `hesse info`): `unsupported` lists them; building it throws. */
  inspect?: boolean;
  /**
   * Float initializers that are buffers (PyTorch `register_buffer`: a sinusoidal positional
   * table, rotary cos/sin): constants of the model, not parameters, so P matches
   * named_parameters. ONNX stores buffers and parameters alike, and only ±∞/float32-max masks
   * and BatchNorm statistics are recognized as buffers by themselves. Each name must be a float
   * initializer of the graph (INVALID_ARGUMENT otherwise, listing them).
   */
  buffers?: readonly string[];
}

/** Ops whose output carries no derivative of their inputs (comparisons, logic, shapes). */
const NONDIFF = new Set(['Equal', 'Less', 'Greater', 'LessOrEqual', 'GreaterOrEqual', 'Not', 'And', 'Or', 'Xor', 'Shape', 'Size', 'ConstantOfShape', 'Range', 'Sign']);

/** float32's largest finite value (torch.finfo(torch.float32).max). */
const F32_MAX = 3.4028234663852886e38;

/**
 * Whether `data` holds a mask fill no trained weight holds: ±∞ or ±float32-max (attention's
 * masks). NaN is not one: a NaN weight is a broken model, reported as such when it is used.
 */
function maskSentinel(data: ArrayLike<number>): boolean {
  for (let i = 0; i < data.length; i++) if (Math.abs(data[i]!) >= F32_MAX) return true;
  return false;
}

/** A model loaded from ONNX: a hesse `Model` plus what the file says about itself. */
export class OnnxModel implements Model {
  /** P: the number of parameters (the parameter initializers' elements, in file order, flat). */
  readonly size: number;
  /** The parameter initializers as blocks (name, shape, offset in the flat vector), in file order. */
  readonly blocks: readonly ParamBlock[];
  /** The float initializers that are not parameters: buffers (BatchNorm running statistics) and constants. */
  readonly constants: readonly OnnxConstantInfo[];
  /** The graph's inputs that are not initializers. */
  readonly inputs: readonly OnnxValueInfo[];
  /** The graph's outputs. */
  readonly outputs: readonly OnnxValueInfo[];
  /** The input the model differentiates through (x). */
  readonly input: OnnxValueInfo;
  /** The output the model returns. */
  readonly output: OnnxValueInfo;
  /** 'index' when the input is integer (token ids: staged exactly, as an index input), else 'float'. */
  get inputKind(): 'float' | 'index' {
    return this.input.elem === 'int' ? 'index' : 'float';
  }
  /** Distinct op types of the graph, in first-seen order. */
  readonly opTypes: readonly string[];
  /** The version of the default ONNX opset the file imports (0 when it names none). */
  readonly opset: number;
  /** Ops the importer cannot build (empty for a model that builds). */
  readonly unsupported: readonly OnnxUnsupported[];
  /**
   * Nodes that normalize with batch statistics (training-mode BatchNormalization): the samples
   * of a batch are coupled, so GGN, Fisher and K-FAC's per-sample assumptions do not hold.
   */
  readonly batchStatistics: readonly string[];
  readonly #graph: GraphProto;
  readonly #initial: Float64Array;
  readonly #params: Map<string, { offset: number; shape: number[] }>;
  readonly #consts: Map<string, Const>;
  readonly #needed: Set<string>;
  readonly #live = new Set<NodeProto>();

  /** @internal Use {@link loadOnnx}. */
  constructor(model: ModelProto, opts: OnnxLoadOptions = {}) {
    const graph = model.graph && unmergeInitializers(model.graph);
    if (!graph || !graph.node) throw new HesseError('MALFORMED_FILE', 'this ONNX file has no graph');
    this.#graph = graph;
    const opset = (this.opset = defaultOpset(model));
    const nodes = graph.node;
    // Attribute checks and the unsupported ops, all at once.
    const missing = new Map<string, OnnxUnsupported>();
    const miss = (op: string, node: NodeProto, why: string) => {
      const m = missing.get(op) ?? { op, nodes: [], why };
      m.nodes.push(node.name ?? '');
      missing.set(op, m);
    };
    for (const node of nodes) {
      const op = node.opType ?? '';
      if (node.domain && node.domain !== 'ai.onnx') {
        miss(`${node.domain}.${op}`, node, `domain '${node.domain}' is not supported`);
        continue;
      }
      const rule = RULES[op];
      if (!rule && !foldable(op)) {
        miss(op, node, 'no import rule');
        continue;
      }
      const where = nodeName(node, opset);
      const a = attributesOf(node, where);
      if (rule) {
        const extra = a.names.filter((n) => !rule.attrs.includes(n));
        if (extra.length) miss(op, node, `attribute${extra.length > 1 ? 's' : ''} ${extra.map((n) => `'${n}'`).join(', ')} not supported`);
        rule.check?.(a, (why) => invalidNode(where, why), opset, (node.output ?? []).length);
      }
    }
    this.unsupported = Object.freeze([...missing.values()]);
    this.batchStatistics = Object.freeze(
      nodes.filter((n) => n.opType === 'BatchNormalization' && bnTraining(attributesOf(n, nodeName(n, opset)), opset, (n.output ?? []).length)).map((n) => n.name ?? ''),
    );

    const info = (v: ValueInfo): OnnxValueInfo => ({
      name: v.name ?? '',
      shape: (v.type?.tensorType?.shape?.dim ?? []).map((d) => (d.dimParam ? d.dimParam : num(d.dimValue))),
      elem: elemClass(v.type?.tensorType?.elemType ?? 0) ?? 'other',
    });
    this.outputs = Object.freeze((graph.output ?? []).map(info));
    const output = opts.output ? this.outputs.find((o) => o.name === opts.output) : this.outputs[0];
    if (!output) throw new HesseError('INVALID_ARGUMENT', `output '${opts.output}' is not an output of the graph (its outputs: ${this.outputs.map((o) => o.name).join(', ')}); pick one of them`);
    this.output = output;
    // The nodes the chosen output depends on: only they are built (another output's nodes, or a
    // recurrent layer's unused states, would be parameter-dependent nodes off the output's path,
    // which the GGN rightly refuses), and only initializers they use are parameters.
    this.#needed = new Set([output.name]);
    for (let i = nodes.length - 1; i >= 0; i--) {
      const node = nodes[i]!;
      if (!(node.output ?? []).some((o) => this.#needed.has(o))) continue;
      this.#live.add(node);
      for (const n of node.input ?? []) if (n) this.#needed.add(n);
    }

    // Classify the float initializers by their uses on that path (through Identity aliases).
    const inits = (graph.initializer ?? []).map((t) => ({ name: t.name ?? '', v: tensorValues(t, 'initializer') }));
    const alias = new Map<string, string>();
    const uses = new Map<string, ('param' | 'buffer' | 'constant')[]>();
    const root = (n: string) => alias.get(n) ?? n;
    // The values the output depends on differentiably: a float initializer reaching the output
    // only through comparisons, shapes or integer casts (a causal-mask buffer sliced to the
    // sequence length and compared with 0) is a constant, not a parameter.
    const diff = new Set([output.name]);
    for (let i = nodes.length - 1; i >= 0; i--) {
      const node = nodes[i]!;
      const op = node.opType ?? '';
      if (!this.#live.has(node) || !(node.output ?? []).some((o) => diff.has(o)) || NONDIFF.has(op)) continue;
      if (op === 'Cast' && elemClass(attributesOf(node, nodeName(node, opset)).int('to', 0)) !== 'float') continue;
      const rule = RULES[op];
      (node.input ?? []).forEach((name, slot) => {
        if (name && !rule?.constInputs?.includes(slot) && !rule?.buffers?.includes(slot)) diff.add(name);
      });
    }
    for (const node of nodes) {
      if (!this.#live.has(node)) continue;
      const rule = RULES[node.opType ?? ''];
      const differentiable = (node.output ?? []).some((o) => diff.has(o));
      (node.input ?? []).forEach((name, slot) => {
        if (!name) return;
        const r = root(name);
        if (node.opType === 'Identity') {
          for (const o of node.output ?? []) alias.set(o, r);
          return;
        }
        const kind = !rule ? 'constant' : rule.buffers?.includes(slot) ? 'buffer' : rule.constInputs?.includes(slot) || !differentiable ? 'constant' : 'param';
        uses.set(r, [...(uses.get(r) ?? []), kind]);
      });
    }
    let offset = 0;
    const blocks: ParamBlock[] = [];
    const constants: OnnxConstantInfo[] = [];
    this.#params = new Map();
    this.#consts = new Map();
    const given = new Set(opts.buffers ?? []);
    const floats = inits.filter(({ v }) => v.elem === 'float').map(({ name }) => name);
    for (const b of given) {
      if (!floats.includes(b)) throw new HesseError('INVALID_ARGUMENT', `buffers: '${b}' is not a float initializer of the graph (they are: ${floats.join(', ') || 'none'}); 'hessian info' lists them`);
    }
    for (const { name, v } of inits) {
      const u = uses.get(name) ?? [];
      if (given.has(name)) {
        this.#consts.set(name, v);
        constants.push({ name, shape: [...v.shape], role: 'buffer' });
        continue;
      }
      // A float initializer holding a mask sentinel (±∞ or ±float32-max = torch.finfo.min/max)
      // is a buffer PyTorch registered (a causal mask added to the scores), never a weight.
      if (v.elem !== 'float' || !u.includes('param') || maskSentinel(v.data)) {
        this.#consts.set(name, v);
        if (v.elem === 'float') constants.push({ name, shape: [...v.shape], role: u.length === 0 ? 'unused' : u.includes('buffer') ? 'buffer' : 'constant' });
        continue;
      }
      const size = v.data.length;
      blocks.push({ name, shape: [...v.shape], offset, size, init: { constant: 0 } });
      this.#params.set(name, { offset, shape: [...v.shape] });
      offset += size;
    }
    this.size = offset;
    this.blocks = Object.freeze(blocks);
    this.constants = Object.freeze(constants);
    this.#initial = new Float64Array(offset);
    for (const { name, v } of inits) {
      const p = this.#params.get(name);
      if (p) this.#initial.set(v.data, p.offset);
    }

    const initNames = new Set(inits.map((i) => i.name));
    this.inputs = Object.freeze((graph.input ?? []).filter((v) => !initNames.has(v.name ?? '')).map(info));
    this.opTypes = Object.freeze([...new Set(nodes.map((n) => n.opType ?? ''))]);
    const bound = opts.inputs ?? {};
    for (const name of Object.keys(bound)) {
      if (!this.inputs.some((i) => i.name === name)) throw new HesseError('INVALID_ARGUMENT', `a value is given for '${name}', which is not an input of the graph (its inputs: ${this.inputs.map((i) => i.name).join(', ')}); give values for the graph's inputs only`);
    }
    for (const [name, t] of Object.entries(bound)) {
      const want = this.inputs.find((i) => i.name === name)!.shape;
      if (want.length !== t.shape.length || want.some((d, i) => typeof d === 'number' && d > 0 && i > 0 && d !== t.shape[i])) {
        throw new HesseError('SHAPE_MISMATCH', `the value given for the graph input '${name}' is [${t.shape.join(', ')}] but the graph declares [${want.join(', ')}]; give an array of that shape`);
      }
      const data = t instanceof Tensor ? t.toArray() : t.data;
      this.#consts.set(name, konst(t.shape, Float64Array.from(data as ArrayLike<number>), this.inputs.find((i) => i.name === name)!.elem === 'float' ? 'float' : 'int'));
    }
    const free = this.inputs.filter((i) => !(i.name in bound));
    const input = opts.input ? this.inputs.find((i) => i.name === opts.input) : free[0];
    if (!input) {
      throw new HesseError('INVALID_ARGUMENT', opts.input ? `loadOnnx: input '${opts.input}' is not an input of the graph (its inputs: ${this.inputs.map((i) => i.name).join(', ')})` : 'loadOnnx: the graph has no input left to differentiate through');
    }
    this.input = input;
    if (opts.inspect) return;
    if (this.unsupported.length) throw unsupportedError(this.unsupported, opset);
    const unbound = free.filter((i) => i !== input);
    if (unbound.length) {
      throw new HesseError(
        'INVALID_ARGUMENT',
        `the graph has ${this.inputs.length} inputs (${this.inputs.map((i) => `'${i.name}'`).join(', ')}); the model takes '${input.name}' as x and needs values for ${unbound.map((i) => `'${i.name}'`).join(', ')}: loadOnnx(bytes, { inputs: { ${unbound[0]!.name}: tensor } }), or on the command line --input ${unbound[0]!.name}=FILE.npy`,
      );
    }
  }

  /** The file's own parameter values (the parameter initializers), flat, P values: float64 unless `dtype: 'float32'`. */
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

  /** Records the ONNX graph applied to x; returns the chosen output. */
  build(x: Sym | IndexSym): Sym {
    if (this.unsupported.length) throw unsupportedError(this.unsupported, this.opset);
    const g = x.graph;
    const input = this.input;
    const fits = input.shape.length === x.shape.length && input.shape.every((d, i) => i === 0 || typeof d === 'string' || d === 0 || d === x.shape[i]);
    if (!fits) {
      throw new HesseError('SHAPE_MISMATCH', `the ONNX input '${input.name}' has shape [${input.shape.join(', ')}] but the data is [${x.shape.join(', ')}]`);
    }
    // A batch other than the exported one: fine unless a constant of the graph holds the batch size.
    const n0 = input.shape[0];
    const otherBatch = typeof n0 === 'number' && n0 > 0 && n0 !== x.shape[0];
    const baked = (why: string) =>
      new HesseError(
        'SHAPE_MISMATCH',
        `${why}. The model was exported for a batch of ${n0} (input '${input.name}' [${input.shape.join(', ')}]) and is used with a batch of ${x.shape[0]}: its graph bakes the batch size into a constant (a Reshape to a fixed shape, a recurrent layer's initial state), so it only computes batches of ${n0}; re-export with dynamic_axes={'${input.name}': {0: 'batch'}, '${this.output.name}': {0: 'batch'}}, or use batches of ${n0} (--batch-size ${n0})`,
      );
    const env = new Map<string, Value>();
    if ((x instanceof IndexSym) !== (this.inputKind === 'index')) {
      throw new HesseError('INVALID_ARGUMENT', `the ONNX input '${input.name}' is ${input.elem === 'int' ? 'integer (indices such as token ids): build it on an index input (Graph.indexInput)' : 'float: build it on a float input'}`);
    }
    env.set(input.name, x instanceof IndexSym ? { kind: 'index', sym: x } : symv(x));
    // Parameters first, in their flat order, so the program's parameter vector is the file's.
    for (const [name, p] of this.#params) env.set(name, symv(g.param(p.shape)));
    for (const [name, c] of this.#consts) env.set(name, c);
    for (const node of this.#graph.node ?? []) {
      if (!this.#live.has(node)) continue;
      try {
        this.#apply(node, env, g, this.#needed);
      } catch (e) {
        // At another batch, a shape error (SHAPE_MISMATCH from the core, MALFORMED_FILE from a rule's
        // shape check, e.g. an LSTM's initial_h of the exported batch) is the baked batch size.
        if (e instanceof HesseError && otherBatch && (e.code === 'SHAPE_MISMATCH' || e.code === 'MALFORMED_FILE')) throw baked(`ONNX ${nodeName(node, this.opset)}: ${e.message.replace(/^ONNX [^:]*: /, '').replace(/; is the input the shape.*$/, '').replace(/; the model is invalid.*$/, '')}`);
        // Errors from the core (a shape rule) name the core op; say which node of the file it was.
        if (e instanceof HesseError && !e.message.startsWith('ONNX ')) {
          throw new HesseError(e.code, `ONNX ${nodeName(node, this.opset)}: ${e.message}; is the input the shape the model was exported for? (onnx.checker.check_model(model, full_check=True) checks the model)`);
        }
        throw e;
      }
    }
    const out = env.get(this.output.name);
    if (!out || out.kind !== 'sym') throw new HesseError('UNSUPPORTED_OP', `the ONNX output '${this.output.name}' does not depend on the input`);
    const want = this.output.shape;
    const got = out.sym.shape;
    if (want.length === got.length && want.every((d) => typeof d === 'number' && d > 0)) {
      const expect = otherBatch && want[0] === n0 ? [x.shape[0], ...want.slice(1)] : want;
      if (expect.some((d, i) => d !== got[i])) {
        if (otherBatch) throw baked(`the output '${this.output.name}' comes out [${got.join(', ')}], not [${expect.join(', ')}]`);
        throw new HesseError('SHAPE_MISMATCH', `the ONNX output '${this.output.name}' is declared [${want.join(', ')}] but the graph computes [${got.join(', ')}] for the input [${x.shape.join(', ')}]`);
      }
    }
    return out.sym;
  }

  #apply(node: NodeProto, env: Map<string, Value>, g: Sym['graph'], needed: ReadonlySet<string>): void {
    const op = node.opType ?? '';
    const opset = this.opset;
    const where = nodeName(node, opset);
    const fail = (why: string): never => {
      throw new HesseError('UNSUPPORTED_OP', `ONNX ${where}: ${why}`);
    };
    const a = attributesOf(node, where);
    const ins = (node.input ?? []).map((name) => {
      if (name === '') return undefined;
      const v = env.get(name);
      if (!v) throw new HesseError('MALFORMED_FILE', `ONNX ${where}: input '${name}' is not defined before it is used`);
      return v;
    });
    const outNames = node.output ?? [];
    const set = (vals: (Value | undefined)[]) => outNames.forEach((n, i) => n && vals[i] && env.set(n, vals[i]!));
    if (ins.every((v) => !v || v.kind === 'const') && foldable(op)) {
      const folded = fold(op, ins as (Const | undefined)[], a, opset, where);
      if (folded) return set(folded);
    }
    const rule = RULES[op];
    if (!rule) fail(foldable(op) ? `${op} on a tensor computed from the input has no derivative; hesse folds it on constants only` : 'this op is not supported');
    const ctx: Ctx = {
      op,
      opset,
      where,
      a,
      node,
      ins,
      nOut: outNames.length,
      g,
      sym: (i) => {
        const v = ins[i];
        if (!v) return fail(`input ${i} is missing`);
        if (v.kind === 'index') return fail(`input ${i} is the integer input '${this.input.name}' (indices such as token ids), which only a Gather takes (as its indices); cast it to float in the model if it is meant as a float feature`);
        return v.kind === 'sym' ? v.sym : constant(g, v);
      },
      konst: (i) => {
        const v = ins[i];
        if (!v || v.kind !== 'const') return fail(`input ${i} must be a constant known at import time`);
        return v;
      },
      given: (i) => ins[i] !== undefined,
      used: (i) => !!outNames[i] && needed.has(outNames[i]!),
      fail,
      invalid: (why) => invalidNode(where, why),
    };
    const out = rule!.build(ctx);
    set(Array.isArray(out) ? out : [out]);
  }
}

/** One UNSUPPORTED_OP naming every op type the importer lacks, its nodes and the opset. */
function unsupportedError(list: readonly OnnxUnsupported[], opset: number): HesseError {
  const parts = list.map((u) => `${u.op} (${u.why}; node${u.nodes.length > 1 ? 's' : ''} ${u.nodes.slice(0, 5).map((n) => `'${n}'`).join(', ')}${u.nodes.length > 5 ? `, … ${u.nodes.length} in all` : ''})`);
  return new HesseError('UNSUPPORTED_OP', `ONNX opset ${opset}: ${list.length === 1 ? 'an op is' : `${list.length} ops are`} not supported: ${parts.join('; ')}; 'hessian info MODEL.onnx' lists them, and what hesse imports is in ARCHITECTURE.md (ONNX import)`);
}
