/**
 * Timing and table helpers shared by the `demo` command and bench/gemm.mjs (which imports the
 * compiled dist/cli/measure.js), so both report speed the same way.
 */

/** One thing to time: `fn` does `flops` floating-point operations per call. */
export interface Case {
  /** The work timed, called repeatedly in batches; its result is ignored. */
  fn: () => unknown;
  /** Floating-point operations one call of `fn` does (a GEMM of m×k by k×n: 2·m·n·k). */
  flops: number;
  /** Runs before each timed batch of this case, untimed (e.g. choosing a kernel family). */
  before?: () => void;
}

/** Options of {@link gflops}. */
export interface MeasureOptions {
  /** Minimum length of one timed batch, in ms: long enough that timer resolution and one-off hiccups do not matter. */
  minMs?: number;
  /** Timed batches per case; the median is reported, so one disturbed batch does not move it. */
  reps?: number;
}

/**
 * Median GFLOP/s of each case. The cases are timed in turns (batch of case 1, of case 2, …, then
 * again), so a slow drift of the machine's speed (clock, neighbours on a shared host) hits all of
 * them alike and their ratios stay meaningful.
 */
export function gflops(cases: readonly Case[], { minMs = 100, reps = 5 }: MeasureOptions = {}): number[] {
  const batch = ({ fn, before }: Case, calls: number): number => {
    before?.();
    const t0 = performance.now();
    for (let i = 0; i < calls; i++) fn();
    return performance.now() - t0;
  };
  const calls = cases.map((c) => {
    batch(c, 1); // warm-up: lets the JIT tier up and wasm memory grow before anything is timed
    let n = 1;
    while (batch(c, n) < minMs) n *= 2;
    return n;
  });
  const rates: number[][] = cases.map(() => []);
  for (let r = 0; r < reps; r++) {
    cases.forEach((c, i) => rates[i]!.push((c.flops * calls[i]!) / batch(c, calls[i]!) / 1e6)); // flops/ms/1e6 = GFLOP/s
  }
  return rates.map((rs) => rs.sort((a, b) => a - b)[reps >> 1]!);
}

/** Uniform random numbers in [-1, 1). */
export function randomData(n: number): Float32Array {
  return Float32Array.from({ length: n }, () => 2 * Math.random() - 1);
}

/** A markdown table, columns padded so it also reads well as plain text. */
export function markdownTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c]!.length)));
  const line = (cells: readonly string[]) => `| ${cells.map((s, c) => s.padEnd(widths[c]!)).join(' | ')} |`;
  return [line(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.map(line)].join('\n');
}
