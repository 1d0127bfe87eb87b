/**
 * Bounded fuzzing of the public API (see test/fuzz/README.md): random op sequences, shapes,
 * options and memory pressure, judged by the oracle in oracle.ts. It fails on any trap, silent
 * wrong answer, or contract violation (wrong error, accepted invalid option), listing each
 * distinct failure once with a minimized reproducer and the command that replays it.
 *
 * FUZZ_SEED (default 1), FUZZ_BUDGET_S (default 36: fuzzing time; minimization adds at most a
 * quarter of it), FUZZ_CASES (comma-separated case indices: replay exactly those),
 * FUZZ_CASE_TIMEOUT_S (default 10), FUZZ_REPORT (write the report as JSON there).
 */
import { writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { FAILING, formatReport, fuzz } from './harness.js';
import { T_SOURCE } from './suite.js';
import { fillValue, matrix } from './gen.js';

const env = process.env;
const seed = Number(env.FUZZ_SEED ?? 1);
const budgetS = Number(env.FUZZ_BUDGET_S ?? 36);
const cases = env.FUZZ_CASES ? env.FUZZ_CASES.split(',').map(Number) : undefined;
const caseTimeoutMs = Number(env.FUZZ_CASE_TIMEOUT_S ?? 10) * 1000;

describe('fuzz: the public API through random calls', () => {
  it('the reproducer helper T is the generator’s own fill', () => {
    const T = new Function(`${T_SOURCE}; return fillValue;`)() as typeof fillValue;
    for (const fill of ['rand', 'pos', 'special', 'zero', 'small', 'unit'] as const) for (let i = 0; i < 50; i++) expect(Object.is(T(fill, i, 7), fillValue(fill, i, 7))).toBe(true);
    const M = new Function(`${T_SOURCE}; return matrix;`)() as typeof matrix;
    for (const kind of ['spd', 'sym', 'nonsym'] as const) expect(Array.from(M(4, kind, 3))).toEqual(Array.from(matrix(4, kind, 3)));
  });

  it(
    `finds no trap, wrong answer or broken contract (seed ${seed}${cases ? `, cases ${cases.join(',')}` : `, ${budgetS} s`})`,
    async () => {
      const report = await fuzz({ seed, budgetMs: budgetS * 1000, minimizeMs: budgetS * 250, caseTimeoutMs, cases, log: (l) => console.log(l) });
      const text = formatReport(report);
      console.log(text);
      if (env.FUZZ_REPORT) writeFileSync(env.FUZZ_REPORT, JSON.stringify(report, null, 2));
      expect(report.casesRun).toBeGreaterThan(0);
      expect(report.failures.filter((f) => FAILING.has(f.finding.cls)).map((f) => f.signature), text).toEqual([]);
    },
    budgetS * 1250 + caseTimeoutMs + 30_000,
  );
});
