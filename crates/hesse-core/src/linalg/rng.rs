//! A small seeded PRNG for probe vectors: xoshiro256** (Blackman–Vigna 2018) seeded through
//! splitmix64, as its authors recommend. Not cryptographic; fast, 2²⁵⁶−1 period, and equal
//! seeds give equal probes on every platform (wasm and native), so estimates are reproducible.

/// xoshiro256** state.
#[derive(Clone, Debug)]
pub struct Rng {
    s: [u64; 4],
}

/// splitmix64: spreads a 64-bit seed over the state (a seed of 0 still gives a non-zero state).
fn splitmix64(x: &mut u64) -> u64 {
    *x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *x;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Rng {
    pub fn new(seed: u64) -> Rng {
        let mut x = seed;
        Rng { s: [splitmix64(&mut x), splitmix64(&mut x), splitmix64(&mut x), splitmix64(&mut x)] }
    }

    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.s;
        let out = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        out
    }

    /// Uniform in [0, 1) with 53 random bits.
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Standard normal by Box–Muller (one of the pair is dropped: simplicity over speed; probes
    /// cost far less than the operator products they feed).
    pub fn gaussian(&mut self) -> f64 {
        // 1 − u ∈ (0, 1], so ln never sees 0.
        let u1 = 1.0 - self.uniform();
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// Fills `v` with independent ±1 (Rademacher), 64 signs per generator call.
    pub fn fill_rademacher(&mut self, v: &mut [f64]) {
        for chunk in v.chunks_mut(64) {
            let bits = self.next_u64();
            for (i, x) in chunk.iter_mut().enumerate() {
                *x = if (bits >> i) & 1 == 0 { 1.0 } else { -1.0 };
            }
        }
    }

    /// Fills `v` with independent standard normals.
    pub fn fill_gaussian(&mut self, v: &mut [f64]) {
        for x in v.iter_mut() {
            *x = self.gaussian();
        }
    }
}
