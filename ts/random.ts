/**
 * mulberry32: a tiny seeded PRNG for the TS side (initialization, check directions), the same
 * numbers in every runtime. Estimators in Rust use their own xoshiro256** (linalg/rng.rs).
 * Returns a generator of uniform numbers in [0, 1), multiples of 2⁻³²; `seed` is taken modulo
 * 2³² (`seed >>> 0`).
 */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
