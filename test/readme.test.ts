/** The README's JavaScript examples run as written (with 'hessian' pointing at this checkout). */
import { writeFileSync, rmSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { readmeBlocks as blocks } from './readme-blocks.js';

describe('README examples', () => {
  it('has examples', () => expect(blocks.length).toBeGreaterThan(0));
  it.each(blocks.map((b, i) => [i, b] as const))('block %i runs', async (i, code) => {
    const file = new URL(`./.readme-${i}.ts`, import.meta.url);
    writeFileSync(file, code.replaceAll("from 'hessian'", "from '../ts/index.js'"));
    try {
      await import(/* @vite-ignore */ file.href);
    } finally {
      rmSync(file);
    }
  });
});
