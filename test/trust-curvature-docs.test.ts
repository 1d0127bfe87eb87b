/**
 * Every exported declaration of the curvature API, and every public member of its exported
 * classes and interfaces, carries a TSDoc comment (what it computes, shapes, options, throws).
 * A source scan: a declaration at the top level or a member one level inside must directly
 * follow a comment that ends in `*\/` (a member's overloads each carry one).
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const FILES = ['objective.ts', 'curvature.ts', 'kfac.ts', 'laplace.ts', 'optim.ts', 'nn.ts'];

/** `file:line: declaration` for each exported declaration or public member without a doc comment. */
function undocumented(file: string): string[] {
  const lines = readFileSync(new URL(`../ts/${file}`, import.meta.url), 'utf8').split('\n');
  const missing: string[] = [];
  let depth = 0; // braces
  let parens = 0; // parentheses (a parameter list spanning lines)
  let inExported = false; // inside an exported class or interface body
  const name = (s: string) => /^(?:export )?(?:function )?([A-Za-z_]\w*)/.exec(s)?.[1];
  // The code of a line, without comments and string literals (whose brackets do not count).
  const code = (s: string) => (/^(\*|\/\*|\/\/)/.test(s) ? '' : s.replace(/\/\*.*?\*\//g, '').replace(/'(?:[^'\\]|\\.)*'|`(?:[^`\\]|\\.)*`/g, "''").replace(/\/\/.*$/, ''));
  lines.forEach((line, i) => {
    const s = line.trim();
    const c = code(s);
    const [before, open] = [depth, parens];
    depth += (c.match(/{/g) ?? []).length - (c.match(/}/g) ?? []).length;
    parens += (c.match(/\(/g) ?? []).length - (c.match(/\)/g) ?? []).length;
    if (before === 0) inExported = /^export (class|interface) /.test(s) && depth > 0;
    const top = before === 0 && s.startsWith('export ');
    const member = before === 1 && open === 0 && inExported && /^(readonly |get |set |static |\[Symbol\.|[A-Za-z_]\w*\??[:(<])/.test(s) && !/^(return|if|const|let|for|throw)\b/.test(s);
    if ((!top && !member) || /^(readonly )?#/.test(s)) return; // #private members are not API
    let j = i - 1;
    while (j >= 0 && lines[j]!.trim() === '') j--;
    const prev = lines[j]!.trim();
    // The implementation signature after documented overloads is not part of the API.
    const implementation = s.endsWith('{') && prev.endsWith(';') && name(prev) === name(s);
    if (!prev.endsWith('*/') && !implementation) missing.push(`${file}:${i + 1}: ${s.slice(0, 80)}`);
  });
  return missing;
}

describe('curvature API documentation', () => {
  it.each(FILES)('%s documents every export and public member', (file) => {
    expect(undocumented(file)).toEqual([]);
  });
});
