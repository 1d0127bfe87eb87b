/**
 * The curvature API's types under `strict`: test/curvature-types/check.ts asserts exact types
 * (an objective's arrays by its dtype, `eigenvalues` with `vectors` exactly when asked for,
 * precise results) and, with `@ts-expect-error`, what must not compile. This runs the compiler on it.
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('..', import.meta.url));

describe('curvature API types', () => {
  it('test/curvature-types/check.ts type-checks under strict', () => {
    let out = '';
    let status = 0;
    try {
      execFileSync(process.execPath, [`${root}node_modules/typescript/bin/tsc`, '-p', 'test/curvature-types'], { cwd: root, encoding: 'utf8', stdio: 'pipe' });
    } catch (e) {
      const err = e as { status: number; stdout: string; stderr: string };
      status = err.status;
      out = `${err.stdout}${err.stderr}`;
    }
    expect(out).toBe('');
    expect(status).toBe(0);
  });
});
