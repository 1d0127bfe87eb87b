/**
 * Timing and table helpers shared by the `demo` command and bench/gemm.mjs (which imports the
 * compiled dist/cli/measure.js), so both report speed the same way.
 */

/** Options of {@link gflops}. */
export interface MeasureOptions {
  /** Minimum length of one timed repetition, in ms: long enough that timer resolution and one-off hiccups do not matter. */
  minMs?: number;
  /** Timed repetitions; the median is reported, so one disturbed repetition does not move it. */
  reps?: number;
}

/** Median GFLOP/s of `fn`, which does `flops` floating-point operations per call. */
export function gflops(fn: () => void, flops: number, { minMs = 100, reps = 5 }: MeasureOptions = {}): number {
  const batch = (calls: number): number => {
    const t0 = performance.now();
    for (let i = 0; i < calls; i++) fn();
    return performance.now() - t0;
  };
  fn(); // warm-up: lets the JIT tier up and wasm memory grow before anything is timed
  let calls = 1;
  while (batch(calls) < minMs) calls *= 2; // calibration (also warms up further)
  const rates = Array.from({ length: reps }, () => (flops * calls) / batch(calls) / 1e6).sort((a, b) => a - b);
  return rates[reps >> 1]!;
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
