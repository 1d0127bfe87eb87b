//! General matrix multiply, C ← α·op(A)·op(B) + β·C, for any strides (so all four transpose
//! combinations are one code path: a transpose is a swap of the row and column strides).
//!
//! The SIMD kernel is the classic Goto/BLIS design: B is packed into KC×NR column panels and A
//! into MC×KC row panels (MR rows each, zero-padded), and a register-blocked MR×NR microkernel
//! does the rank-1 updates with all accumulators in registers. The scalar reference is the
//! textbook dot-product loop; it is what the SIMD kernel is tested against.

use super::lanes::{HasLanes, Lanes};
use crate::error::Result;
use crate::real::Real;

/// A read-only strided matrix: element (i, j) is `data[i * rs + j * cs]`.
#[derive(Clone, Copy, Debug)]
pub struct MatRef<'a, T> {
    pub data: &'a [T],
    pub rows: usize,
    pub cols: usize,
    pub rs: usize,
    pub cs: usize,
}

impl<'a, T: Copy> MatRef<'a, T> {
    /// A contiguous row-major `rows × cols` matrix.
    pub fn row_major(data: &'a [T], rows: usize, cols: usize) -> Self {
        MatRef { data, rows, cols, rs: cols, cs: 1 }
    }
    /// The transpose, as a view (no copy).
    pub fn t(self) -> Self {
        MatRef { data: self.data, rows: self.cols, cols: self.rows, rs: self.cs, cs: self.rs }
    }
    #[inline(always)]
    pub fn at(&self, i: usize, j: usize) -> T {
        self.data[i * self.rs + j * self.cs]
    }
}

/// Rows of the microkernel tile (broadcast A values).
const MR: usize = 4;
/// Depth of one packed panel: a KC×NR panel of B stays in L1 while the microkernel streams it.
const KC: usize = 256;
/// Rows of A packed at once (a multiple of MR): the MC×KC block stays in L2.
const MC: usize = 128;
/// Columns of B packed at once.
const NC: usize = 1024;

/// PRECONDITION: `a` is m×k, `b` is k×n, `c.len() == m*n` (row-major m×n), and the strided
/// views stay inside their slices (the ops layer checks shapes; indexing here is bounds-checked
/// in packing, so a violated precondition panics rather than reading out of bounds).
pub fn gemm_reference<T: Real>(alpha: T, a: MatRef<T>, b: MatRef<T>, beta: T, c: &mut [T]) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    for i in 0..m {
        for j in 0..n {
            let mut s = T::ZERO;
            for p in 0..k {
                s += a.at(i, p) * b.at(p, j);
            }
            let cij = &mut c[i * n + j];
            // β = 0 means "overwrite": a NaN already in C must not leak through (BLAS semantics).
            *cij = if beta == T::ZERO { alpha * s } else { alpha * s + beta * *cij };
        }
    }
}

/// The packed, register-blocked SIMD GEMM. Same contract as [`gemm_reference`]; errors only
/// when the packing scratch (at most (MC + NC)·KC elements) cannot be allocated.
pub fn gemm_simd<T: Real + HasLanes>(alpha: T, a: MatRef<T>, b: MatRef<T>, beta: T, c: &mut [T]) -> Result<()> {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    let w = <T::V as Lanes>::WIDTH;
    let nr = 2 * w;
    scale(c, beta);
    if m == 0 || n == 0 || k == 0 || alpha == T::ZERO {
        return Ok(());
    }
    let kc_max = KC.min(k);
    let a_len = MC.min(m.next_multiple_of(MR)) * kc_max;
    let b_len = NC.min(n.next_multiple_of(nr)) * kc_max;
    T::with_scratch(a_len + b_len + MR * nr, |buf| {
        let (pack_a, rest) = buf.split_at_mut(a_len);
        let (pack_b, tile) = rest.split_at_mut(b_len);
        for jc in (0..n).step_by(NC) {
            let nc = NC.min(n - jc);
            for pc in (0..k).step_by(KC) {
                let kc = KC.min(k - pc);
                pack_view(pack_b, b, pc, jc, kc, nc, nr, false);
                for ic in (0..m).step_by(MC) {
                    let mc = MC.min(m - ic);
                    pack_view(pack_a, a, ic, pc, mc, kc, MR, true);
                    for jr in (0..nc).step_by(nr) {
                        let nrr = nr.min(nc - jr);
                        let bp = &pack_b[jr * kc..(jr + nr) * kc];
                        for ir in (0..mc).step_by(MR) {
                            let mrr = MR.min(mc - ir);
                            let ap = &pack_a[ir * kc..(ir + MR) * kc];
                            microkernel::<T::V>(kc, ap, bp, tile);
                            let c0 = (ic + ir) * n + jc + jr;
                            if mrr == MR && nrr == nr {
                                update_full_tile::<T::V>(&mut c[c0..], n, tile, alpha);
                            } else {
                                for r in 0..mrr {
                                    let crow = &mut c[c0 + r * n..c0 + r * n + nrr];
                                    for (cv, &t) in crow.iter_mut().zip(&tile[r * nr..r * nr + nrr]) {
                                        *cv += alpha * t;
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    })
}

/// C[r, 0..2W] += α·tile[r, 0..2W] for the MR rows of a full tile, two vectors per row.
#[inline(always)]
fn update_full_tile<V: Lanes>(c: &mut [V::Elem], ldc: usize, tile: &[V::Elem], alpha: V::Elem) {
    let w = V::WIDTH;
    let nr = 2 * w;
    assert!(c.len() >= (MR - 1) * ldc + nr && tile.len() >= MR * nr);
    let av = V::splat(alpha);
    // SAFETY: the assert bounds every row r < MR and column < nr of both C and the tile.
    unsafe {
        for r in 0..MR {
            for h in 0..2 {
                let pc = c.as_mut_ptr().add(r * ldc + h * w);
                let pt = tile.as_ptr().add(r * nr + h * w);
                av.mul_add(V::load(pt), V::load(pc)).store(pc);
            }
        }
    }
}

/// C ← βC, where β = 0 overwrites (so NaN/Inf already in C do not survive).
fn scale<T: Real>(c: &mut [T], beta: T) {
    if beta == T::ZERO {
        c.fill(T::ZERO);
    } else if beta != T::ONE {
        c.iter_mut().for_each(|x| *x = *x * beta);
    }
}

/// Packs the block of `m` starting at (r0, c0) into panels of `panel` columns: B's `depth × width`
/// block (rows r0.., cols c0..; panels run across columns) or, with `across_rows`, A's
/// `width × depth` block (panels run down rows, so the packed matrix is the block's transpose).
/// Where the panel direction is contiguous in memory (stride 1: row-major B, or A = a transposed
/// row-major matrix) each full panel row is one slice copy; packing is a large share of a GEMM
/// with few rows (conv2d's O = 16 output channels), and the per-element strided read was most of it.
#[allow(clippy::too_many_arguments)]
#[inline]
fn pack_view<T: Real>(buf: &mut [T], m: MatRef<T>, r0: usize, c0: usize, rows: usize, cols: usize, panel: usize, across_rows: bool) {
    // (depth, width) of the packed block and the strides along them.
    let (depth, width, sd, sw) = if across_rows { (cols, rows, m.cs, m.rs) } else { (rows, cols, m.rs, m.cs) };
    let base = r0 * m.rs + c0 * m.cs;
    if sw != 1 {
        pack_panels(buf, depth, width, panel, |p, j| m.data[base + p * sd + j * sw]);
        return;
    }
    for q in 0..width.div_ceil(panel) {
        let out = &mut buf[q * panel * depth..(q + 1) * panel * depth];
        let j0 = q * panel;
        let n = panel.min(width - j0);
        for p in 0..depth {
            let src = &m.data[base + p * sd + j0..][..n];
            let row = &mut out[p * panel..(p + 1) * panel];
            row[..n].copy_from_slice(src);
            row[n..].fill(T::ZERO);
        }
    }
}

/// Packs a `depth × width` block, read through `get(p, j)`, into panels of `panel` columns:
/// panel q holds columns q·panel.. as `depth` rows of `panel` contiguous values, zero-padded.
fn pack_panels<T: Real>(buf: &mut [T], depth: usize, width: usize, panel: usize, get: impl Fn(usize, usize) -> T) {
    for q in 0..width.div_ceil(panel) {
        let out = &mut buf[q * panel * depth..(q + 1) * panel * depth];
        let j0 = q * panel;
        let cols = panel.min(width - j0);
        for p in 0..depth {
            let row = &mut out[p * panel..(p + 1) * panel];
            for (j, v) in row.iter_mut().enumerate() {
                *v = if j < cols { get(p, j0 + j) } else { T::ZERO };
            }
        }
    }
}

/// tile[MR × 2W] = A_panel (kc × MR, packed) ᵀ· B_panel (kc × 2W, packed): MR·2 vector
/// accumulators live in registers; each step broadcasts one A value per row and does two
/// multiply-adds against the two B vectors.
#[inline(always)]
fn microkernel<V: Lanes>(kc: usize, a: &[V::Elem], b: &[V::Elem], tile: &mut [V::Elem]) {
    let w = V::WIDTH;
    let nr = 2 * w;
    assert!(a.len() >= kc * MR && b.len() >= kc * nr && tile.len() >= MR * nr);
    let zero = V::splat(V::Elem::ZERO);
    let (mut c00, mut c01, mut c10, mut c11) = (zero, zero, zero, zero);
    let (mut c20, mut c21, mut c30, mut c31) = (zero, zero, zero, zero);
    // SAFETY: the assert above bounds every pointer offset below (p < kc).
    unsafe {
        let (mut pa, mut pb) = (a.as_ptr(), b.as_ptr());
        for _ in 0..kc {
            let b0 = V::load(pb);
            let b1 = V::load(pb.add(w));
            let a0 = V::splat(*pa);
            c00 = a0.mul_add(b0, c00);
            c01 = a0.mul_add(b1, c01);
            let a1 = V::splat(*pa.add(1));
            c10 = a1.mul_add(b0, c10);
            c11 = a1.mul_add(b1, c11);
            let a2 = V::splat(*pa.add(2));
            c20 = a2.mul_add(b0, c20);
            c21 = a2.mul_add(b1, c21);
            let a3 = V::splat(*pa.add(3));
            c30 = a3.mul_add(b0, c30);
            c31 = a3.mul_add(b1, c31);
            pa = pa.add(MR);
            pb = pb.add(nr);
        }
        let t = tile.as_mut_ptr();
        for (r, (x0, x1)) in [(c00, c01), (c10, c11), (c20, c21), (c30, c31)].into_iter().enumerate() {
            x0.store(t.add(r * nr));
            x1.store(t.add(r * nr + w));
        }
    }
}
