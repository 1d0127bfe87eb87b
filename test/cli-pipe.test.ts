// A reader that stops early (`hessian demo | head -1`) closes the pipe while the CLI still writes:
// it must finish quietly with exit 0 (its files written whole), not die on an unhandled EPIPE.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const cli = new URL('../dist/cli/main.js', import.meta.url).pathname;

describe('the CLI on a closed pipe', () => {
  it('demo | head -1: exit 0 and nothing on stderr', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hesse-pipe-'));
    const svg = join(dir, 'density.svg');
    const child = spawn(process.execPath, [cli, 'demo', '--svg', svg], { stdio: ['ignore', 'pipe', 'pipe'], cwd: dir });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    // Close our end after the first line, as head does; the demo goes on writing.
    child.stdout.once('data', () => child.stdout.destroy());
    const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
    expect(stderr).toBe('');
    expect(code).toBe(0);
    // The plot is written whole, and no temporary file is left behind.
    expect(readFileSync(svg, 'utf8')).toMatch(/<\/svg>\s*$/);
    expect(readdirSync(dir).sort()).toEqual(['density.svg']);
    expect(existsSync(join(dir, 'hessian-demo-density.svg'))).toBe(false);
  }, 60_000);
});
