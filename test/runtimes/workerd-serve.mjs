// Starts `workerd serve` on a config whose http socket listens on 127.0.0.1 port 0, and learns the
// real port from workerd's control channel (--control-fd, one JSON object a line:
// {"event":"listen","socket":"http","port":41234}). Shared by the workerd runtime test and the
// packaging test. Every workerd started is killed when this process exits.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));
const WORKERD = process.env.WORKERD_PATH ?? join(root, 'node_modules', '.bin', 'workerd');

const children = new Set();
const killAll = () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
};
process.on('exit', killAll);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    killAll();
    process.exit(1);
  });
}

/**
 * Serves `config` (a .capnp file in `dir`); resolves { port, log, stop } once the http socket
 * listens, rejects (with workerd's first lines of output) if it exits or does not listen in time.
 */
export async function serveWorkerd(dir, config, timeoutMs) {
  const out = [];
  const child = spawn(WORKERD, ['serve', '--control-fd=3', config], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe', 'pipe'] });
  children.add(child);
  child.stdout.on('data', (d) => out.push(String(d)));
  child.stderr.on('data', (d) => out.push(String(d)));
  const log = () => out.join('').trim().split('\n').slice(0, 6).join(' | ');
  const stop = async () => {
    child.kill('SIGKILL');
    await new Promise((r) => (child.exitCode !== null || child.signalCode !== null ? r() : child.once('exit', r)));
    children.delete(child);
  };
  try {
    const port = await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`workerd did not listen within ${timeoutMs} ms`)), timeoutMs);
      child.once('error', (e) => (clearTimeout(timer), reject(e)));
      child.once('exit', (code, sig) => (clearTimeout(timer), reject(new Error(`workerd exited (${code ?? sig}) before listening`))));
      createInterface({ input: child.stdio[3] }).on('line', (line) => {
        let msg;
        try {
          msg = JSON.parse(line);
        } catch {
          return;
        }
        if (msg.event === 'listen' && msg.socket === 'http') (clearTimeout(timer), resolve(msg.port));
      });
    });
    return { port, log, stop };
  } catch (e) {
    await stop();
    const lines = log();
    throw new Error(`${e.message}${lines ? `; workerd: ${lines}` : ''}`);
  }
}

/** A workerd config: one worker of ES modules and wasm modules, `modules` = [[name, 'esModule' | 'wasm', file]]. */
export function workerdConfig(modules, compatibilityDate) {
  return `using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [ (name = "main", worker = .hesseWorker) ],
  sockets = [ (name = "http", address = "127.0.0.1:0", http = (), service = "main") ],
);

const hesseWorker :Workerd.Worker = (
  modules = [
${modules.map(([name, kind, file]) => `    (name = "${name}", ${kind} = embed "${file}"),`).join('\n')}
  ],
  compatibilityDate = "${compatibilityDate}",
);
`;
}

/**
 * esbuild options for a worker bundle, as Cloudflare's tooling bundles one (neutral platform,
 * the workerd/worker conditions); the wasm import stays external, a `wasm` module in the config.
 */
export const WORKER_BUILD = {
  bundle: true,
  format: 'esm',
  platform: 'neutral',
  mainFields: ['module', 'main'],
  conditions: ['workerd', 'worker'],
  target: 'es2022',
  external: ['hessian/hesse_bg.wasm', 'hessian/hesse_relaxed_bg.wasm'],
  logLevel: 'warning',
};
