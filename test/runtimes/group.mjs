// Child processes for the test runners (run-all.mjs, ../packaging/pack.mjs): each in its own
// process group, so that a timeout, its exit (whatever it left behind) and this process's exit
// or interrupt kill everything it started. SIGTERM first on timeout, SIGKILL after a grace period.
import { spawn } from 'node:child_process';

const running = new Set();
const GRACE_MS = 5_000;

function killGroup(child, signal) {
  try {
    process.kill(-child.pid, signal);
  } catch {
    // already gone
  }
}

process.on('exit', () => running.forEach((c) => killGroup(c, 'SIGKILL')));
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    running.forEach((c) => killGroup(c, 'SIGTERM'));
    process.exitCode = 130;
    setTimeout(() => process.exit(130), 1500).unref();
  });
}

/** The environment every test child gets: no colours, no update checks or prompts. */
const QUIET_ENV = { NO_COLOR: '1', DENO_NO_UPDATE_CHECK: '1', DENO_NO_PROMPT: '1', npm_config_update_notifier: 'false' };

/**
 * Runs `cmd args` in `cwd` and resolves (never rejects) with { code, stdout, stderr, output
 * (both, interleaved), timedOut, error } once it has exited; `code` is the exit code or the signal.
 */
export function runGroup(cmd, args, { cwd, timeoutMs }) {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd, detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...QUIET_ENV } });
    running.add(child);
    let stdout = '';
    let stderr = '';
    let output = '';
    child.stdout.on('data', (d) => ((stdout += d), (output += d)));
    child.stderr.on('data', (d) => ((stderr += d), (output += d)));
    let timedOut = false;
    let grace;
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup(child, 'SIGTERM');
      grace = setTimeout(() => killGroup(child, 'SIGKILL'), GRACE_MS);
    }, timeoutMs);
    let done = false;
    const finish = (code, error) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      clearTimeout(grace);
      if (child.pid) killGroup(child, 'SIGKILL'); // leftovers of a child that exited without cleaning up
      running.delete(child);
      resolve({ code, stdout, stderr, output, timedOut, error });
    };
    child.once('error', (e) => finish(null, e));
    child.once('close', (code, signal) => finish(code ?? signal));
  });
}
