/**
 * The CLI's contract, run as a user runs it (node dist/cli/main.js, a subprocess): exit code 0 on
 * success; on bad input exit code 2, exactly one line on stderr of the form
 * `hessian: <what is wrong>; <what to do>` naming the option, value, file or node, and no file
 * written (no --out, no --density, not even a partial one).
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import * as h from '../ts/index.js';

await h.init();
const run = promisify(execFile);
const cli = new URL('../dist/cli/main.js', import.meta.url).pathname;
const fixtures = new URL('./fixtures/onnx/', import.meta.url).pathname;
const tmp = mkdtempSync(join(tmpdir(), 'hessian-cli-'));

async function hessian(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [cli, ...args]);
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

/** Nothing new in the scratch directory since `before` (no output file, no temporary file). */
const files = () => readdirSync(tmp).sort();

/** Runs `args`; expects exit 2, one `hessian: …; …` line matching every pattern, no new files. */
async function rejects(args: string[], ...patterns: RegExp[]): Promise<string> {
  const before = files();
  const r = await hessian(args);
  expect(r.code, `${args.join(' ')}\n${r.stderr}`).toBe(2);
  expect(r.stderr, args.join(' ')).toMatch(/^hessian: [^\n]+; [^\n]+\n$/);
  for (const p of patterns) expect(r.stderr, args.join(' ')).toMatch(p);
  expect(r.stdout).toBe('');
  expect(files()).toEqual(before);
  return r.stderr;
}

const c = 'mlp_tanh_ce'; // P = 83, x [6, 6], y int64 labels in 0..3
const model = join(fixtures, c, 'model.onnx');
const data = ['--x', join(fixtures, c, 'x.npy'), '--y', join(fixtures, c, 'y.npy'), '--loss', 'ce'];
const P = 83;

describe('usage errors (commander) in the same one-line form', () => {
  it.each([
    [['--frobnicate'], /unknown option '--frobnicate'.*run 'hessian --help'/],
    [['frobnicate'], /unknown command 'frobnicate'.*run 'hessian --help'/],
    [[], /no command given; run 'hessian --help'/],
    [['spectrum', model, ...data, '--tpo', '3'], /unknown option '--tpo'.*--top.*run 'hessian spectrum --help'/],
    [['spectrum', model, ...data, '--top'], /option '--top <k>' argument missing; run 'hessian spectrum --help'/],
    [['grad', model], /required option '--x <file>' not specified; run 'hessian grad --help'/],
    [['grad', '--x', 'x.npy', '--loss', 'mse'], /missing required argument 'model'/],
    [['grad', model, ...data.slice(0, 4), '--loss', 'hinge'], /'--loss <loss>' argument 'hinge' is invalid.*mse, ce, bce, mean-output/],
    [['spectrum', model, ...data, '--matrix', 'kfac', '--top', '1'], /'--matrix <m>' argument 'kfac' is invalid.*hessian, ggn/],
    [['grad', model, ...data, '--wrt', 'weights'], /'--wrt <what>' argument 'weights' is invalid.*params, input/],
  ])('%j', async (args, why) => {
    await rejects(args, why);
  });

  it('--help and --version exit 0; --version prints package.json\'s version', async () => {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
    for (const flag of ['--version', '-V']) {
      const r = await hessian([flag]);
      expect(r.code).toBe(0);
      expect(r.stdout).toBe(`${pkg.version}\n`);
    }
    const help = await hessian(['spectrum', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/Usage: hessian spectrum/);
  });
});
