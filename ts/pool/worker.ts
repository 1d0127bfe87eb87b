/**
 * The entry of a pool worker (ts/pool/protocol.ts): instantiates the wasm module it is sent,
 * builds a sync Objective over its shard with the serialized model, and answers calls by
 * running that Objective's public methods. A call's error is sent back (code and message); the
 * worker keeps serving.
 */
import { HesseError } from '../errors.js';
import { init } from '../runtime.js';
import { Objective } from '../objective.js';
import { host } from './host.js';
import { ProgramModel } from './program-model.js';
import { METHODS, type CallMessage, type InitMessage, type WireError } from './protocol.js';

const io = await host();
let obj: Objective | undefined;

const wire = (e: unknown): WireError =>
  e instanceof HesseError ? { code: e.code, message: e.message } : { code: 'INTERNAL', message: e instanceof Error ? e.message : String(e) };

async function start(m: InitMessage): Promise<void> {
  await init({ module: m.module });
  const model = new ProgramModel(m.model, m.dtype);
  try {
    const params = m.dtype === 'float64' ? new Float64Array(m.model.size) : new Float32Array(m.model.size);
    obj = new Objective(model, m.loss as never, { x: m.x as never, y: m.y as never }, { ...m.options, params });
  } finally {
    model.dispose(); // the objective's graphs hold their own copies of the spliced nodes
  }
}

function run(m: CallMessage): (number | Float32Array | Float64Array)[] {
  if (!obj) throw new HesseError('INTERNAL', 'worker: a call before init');
  if (!METHODS.includes(m.method)) throw new HesseError('INVALID_ARGUMENT', `worker: no method '${String(m.method)}'`);
  const r = (obj[m.method] as (...a: unknown[]) => unknown)(...m.args);
  return (Array.isArray(r) ? r : [r]) as (number | Float32Array | Float64Array)[];
}

io.onMessage((msg) => {
  const m = msg as InitMessage | CallMessage;
  if (m.type === 'init') {
    start(m).then(
      () => io.post({ type: 'ready' }),
      (e) => io.post({ type: 'error', error: wire(e) }),
    );
    return;
  }
  try {
    const values = run(m);
    io.post({ type: 'result', id: m.id, values }, [...new Set(values.flatMap((v) => (typeof v === 'number' ? [] : [v.buffer as ArrayBuffer])))]);
  } catch (e) {
    io.post({ type: 'error', id: m.id, error: wire(e) });
  }
});
