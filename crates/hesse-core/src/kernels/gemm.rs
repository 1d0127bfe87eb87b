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
    gemm_blocked(alpha, ASource::View(a), BOperand::View(b), beta, c)
}

/// Columns of one B panel: two lane vectors (the microkernel's NR).
pub fn panel_width<T: HasLanes>() -> usize {
    2 * <T::V as Lanes>::WIDTH
}

/// A `k × n` matrix B stored as the microkernel's panels: panel q holds columns q·NR.. (NR =
/// [`panel_width`]) as rows of NR contiguous values, zero-padded past n, `depth` rows a panel, of
/// which B is rows `row0 .. row0 + k` (so one buffer of all im2col rows serves every group):
/// B[p, j] = data[(j / NR)·NR·depth + (row0 + p)·NR + j mod NR].
#[derive(Clone, Copy, Debug)]
pub struct PackedB<'a, T> {
    pub data: &'a [T],
    pub depth: usize,
    pub row0: usize,
    pub k: usize,
    pub n: usize,
}

impl<T: HasLanes> PackedB<'_, T> {
    /// Values a buffer of `depth` rows and `n` columns holds (whole panels).
    pub fn len(depth: usize, n: usize) -> usize {
        n.div_ceil(panel_width::<T>()) * panel_width::<T>() * depth
    }
    /// Index of B[p, j] (p counted from row 0 of the buffer).
    #[inline(always)]
    pub fn index(depth: usize, p: usize, j: usize) -> usize {
        let nr = panel_width::<T>();
        (j / nr) * nr * depth + p * nr + j % nr
    }
}

/// B read in place from a zero-padded image, with no im2col and no packing: row p of B (one
/// channel and tap of a stride-1 convolution) is the image shifted by `offs[p]`, and column j (an
/// output position (oy, ox), ox < ow) sits at (j / ow)·pitch + j mod ow:
/// B[p, j] = image[offs[p] + (j / ow)·pitch + j mod ow], k = offs.len(), n = OH·ow.
/// Valid when ow is a multiple of NR ([`panel_width`]): then each panel's NR columns lie in one
/// output row and a panel row is NR adjacent values, read straight by the microkernel.
#[derive(Clone, Copy, Debug)]
pub struct ShiftedB<'a, T> {
    pub image: &'a [T],
    pub offs: &'a [usize],
    pub ow: usize,
    pub pitch: usize,
    pub n: usize,
}

/// A read in place from a zero-padded image, with no im2col and no packing: A[i, p] =
/// image[offs[i] + posoff[p]] (row i one channel and tap, column p one output position at any
/// stride), m = offs.len(), k = posoff.len(): the left operand of conv2d's weight gradient
/// gwᵀ = cols · gyᵀ, whose im2col would otherwise be written transposed for every image.
#[derive(Clone, Copy, Debug)]
pub struct ShiftedA<'a, T> {
    pub image: &'a [T],
    pub offs: &'a [usize],
    pub posoff: &'a [usize],
}

/// [`gemm_simd`] with A read in place from an image ([`ShiftedA`]).
pub fn gemm_shifted_a<T: Real + HasLanes>(alpha: T, a: ShiftedA<T>, b: MatRef<T>, beta: T, c: &mut [T]) -> Result<()> {
    let max = |v: &[usize]| v.iter().copied().max().unwrap_or(0);
    assert!(a.offs.is_empty() || a.posoff.is_empty() || max(a.offs) + max(a.posoff) < a.image.len());
    gemm_blocked(alpha, ASource::Shifted(a), BOperand::View(b), beta, c)
}

/// An `m × k` matrix A already in the microkernel's panels (MR rows each, the whole depth k):
/// A[i, p] = data[(i / MR)·MR·k + p·MR + i mod MR], zero-padded past m. For an A used by many
/// GEMMs (conv2d's weights, once per image): [`PackedA::pack`] it once.
#[derive(Clone, Debug)]
pub struct PackedA<T> {
    data: Vec<T>,
    m: usize,
    k: usize,
}

impl<T: Real + HasLanes> PackedA<T> {
    pub fn pack(a: MatRef<T>) -> Result<Self> {
        let mut data = crate::mem::try_zeros(a.rows.div_ceil(MR) * MR * a.cols, "packed matrix")?;
        pack_view(&mut data, a, 0, 0, a.rows, a.cols, MR, true);
        Ok(PackedA { data, m: a.rows, k: a.cols })
    }
}

/// [`gemm_simd`] with A already packed ([`PackedA`]).
pub fn gemm_packed_a<T: Real + HasLanes>(alpha: T, a: &PackedA<T>, b: BOperand<T>, beta: T, c: &mut [T]) -> Result<()> {
    gemm_blocked(alpha, ASource::Packed(a), b, beta, c)
}

/// A right operand in any of its forms, for [`gemm_packed_a`].
#[derive(Clone, Copy, Debug)]
pub enum BOperand<'a, T> {
    View(MatRef<'a, T>),
    Packed(PackedB<'a, T>),
    Shifted(ShiftedB<'a, T>),
}

enum ASource<'a, T> {
    View(MatRef<'a, T>),
    Packed(&'a PackedA<T>),
    Shifted(ShiftedA<'a, T>),
}

fn gemm_blocked<T: Real + HasLanes>(alpha: T, a: ASource<T>, b: BOperand<T>, beta: T, c: &mut [T]) -> Result<()> {
    let (m, k) = match &a {
        ASource::View(a) => (a.rows, a.cols),
        ASource::Packed(a) => (a.m, a.k),
        ASource::Shifted(a) => (a.offs.len(), a.posoff.len()),
    };
    let n = match &b {
        BOperand::View(b) => b.cols,
        BOperand::Packed(b) => {
            assert!(b.k == k && b.row0 + b.k <= b.depth && b.data.len() >= PackedB::<T>::len(b.depth, b.n));
            b.n
        }
        BOperand::Shifted(b) => {
            let nr = panel_width::<T>();
            // Every read, up to the last panel's last value at the largest shift, is in the image.
            let last = b.n.checked_sub(1).map(|j| (j / b.ow) * b.pitch + b.ow - 1);
            let max_off = b.offs.iter().copied().max().unwrap_or(0);
            assert!(b.offs.len() == k && b.ow > 0 && b.ow % nr == 0 && b.n % b.ow == 0 && last.is_none_or(|l| l + max_off < b.image.len()));
            b.n
        }
    };
    let w = <T::V as Lanes>::WIDTH;
    let nr = 2 * w;
    scale(c, beta);
    if m == 0 || n == 0 || k == 0 || alpha == T::ZERO {
        return Ok(());
    }
    let kc_max = KC.min(k);
    let a_len = if matches!(a, ASource::View(_)) { MC.min(m.next_multiple_of(MR)) * kc_max } else { 0 };
    let b_len = if matches!(b, BOperand::View(_)) { NC.min(n.next_multiple_of(nr)) * kc_max } else { 0 };
    T::with_scratch(a_len + b_len + MR * nr, |buf| {
        let (pack_a, rest) = buf.split_at_mut(a_len);
        let (pack_b, tile) = rest.split_at_mut(b_len);
        for jc in (0..n).step_by(NC) {
            let nc = NC.min(n - jc);
            for pc in (0..k).step_by(KC) {
                let kc = KC.min(k - pc);
                // Panel jr / NR of this block: `kc` rows of NR values at panels[base + jr·stride..]
                // (packed), or at shifts offs[pc + p] from the panel's output position (shifted).
                let (panels, base, stride) = match &b {
                    BOperand::View(bv) => {
                        pack_view(pack_b, *bv, pc, jc, kc, nc, nr, false);
                        (&*pack_b, 0, kc)
                    }
                    BOperand::Packed(pb) => (pb.data, jc * pb.depth + (pb.row0 + pc) * nr, pb.depth),
                    BOperand::Shifted(sb) => (sb.image, 0, 0),
                };
                for ic in (0..m).step_by(MC) {
                    let mc = MC.min(m - ic);
                    if let ASource::View(av) = &a {
                        pack_view(pack_a, *av, ic, pc, mc, kc, MR, true);
                    }
                    for jr in (0..nc).step_by(nr) {
                        let nrr = nr.min(nc - jr);
                        for ir in (0..mc).step_by(MR) {
                            let mrr = MR.min(mc - ir);
                            // The microkernel reads row p of the B panel at bptr + shift(p):
                            // packed panels (p·NR) or a shifted image (its row shifts), and A's
                            // column p from the packed panel or in place. Both choices are made
                            // here, outside the loop, so each combination is its own loop.
                            let (bptr, shifts) = match &b {
                                BOperand::Shifted(sb) => {
                                    let pos = jc + jr;
                                    (panels.as_ptr().wrapping_add((pos / sb.ow) * sb.pitch + pos % sb.ow), Some(&sb.offs[pc..pc + kc]))
                                }
                                _ => (panels[base + jr * stride..][..kc * nr].as_ptr(), None),
                            };
                            // SAFETY (every read below): the asserts at the top bound every shifted
                            // read; packed panels hold kc rows of NR (B) or MR (A) values.
                            macro_rules! tile_with_a {
                                ($a:expr) => {
                                    match shifts {
                                        Some(o) => unsafe { microkernel::<T::V>(kc, $a, |p| bptr.add(*o.get_unchecked(p)), tile) },
                                        None => unsafe { microkernel::<T::V>(kc, $a, |p| bptr.add(p * nr), tile) },
                                    }
                                };
                            }
                            match &a {
                                ASource::View(_) | ASource::Packed(_) => {
                                    let pa = match &a {
                                        ASource::Packed(pa) => pa.data[(ic + ir) * k + pc * MR..][..kc * MR].as_ptr(),
                                        _ => pack_a[ir * kc..(ir + MR) * kc].as_ptr(),
                                    };
                                    tile_with_a!(|p| [*pa.add(p * MR), *pa.add(p * MR + 1), *pa.add(p * MR + 2), *pa.add(p * MR + 3)])
                                }
                                ASource::Shifted(sa) => {
                                    // Rows past m repeat the last row (their tile rows are dropped).
                                    let row = |i: usize| sa.image.as_ptr().wrapping_add(sa.offs[(ic + ir + i).min(m - 1)]);
                                    let (r0, r1, r2, r3) = (row(0), row(1), row(2), row(3));
                                    let po = &sa.posoff[pc..pc + kc];
                                    tile_with_a!(|p| {
                                        let q = *po.get_unchecked(p);
                                        [*r0.add(q), *r1.add(q), *r2.add(q), *r3.add(q)]
                                    })
                                }
                            }
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
/// Packing is a large share of a GEMM with few rows (conv2d's O = 16 output channels) or few
/// columns (its 8×8 late stages), so both layouts avoid per-element bounds checks and calls:
/// - panel direction contiguous (stride 1: row-major B, or A = a transposed row-major matrix):
///   each panel row is `panel` adjacent values, copied in lanes (a `copy_from_slice` of 8
///   floats is a `memcpy` call in wasm, and those calls were most of the packing time);
/// - otherwise (row-major A, transposed B) each panel row gathers one value from each of
///   `panel` streams; where each stream is contiguous along the depth (stride 1), W depth steps
///   of W streams are one W × W block transposed in registers (`Lanes::transpose_block`: four
///   loads, eight shuffles, four stores for f32, instead of sixteen scalar loads and stores).
#[allow(clippy::too_many_arguments)]
#[inline]
fn pack_view<T: Real + HasLanes>(buf: &mut [T], m: MatRef<T>, r0: usize, c0: usize, rows: usize, cols: usize, panel: usize, across_rows: bool) {
    // (depth, width) of the packed block and the strides along them.
    let (depth, width, sd, sw) = if across_rows { (cols, rows, m.cs, m.rs) } else { (rows, cols, m.rs, m.cs) };
    if depth == 0 || width == 0 {
        return;
    }
    let base = r0 * m.rs + c0 * m.cs;
    // The last element read, (depth − 1, width − 1), and the panels written stay inside the slices.
    assert!(base + (depth - 1) * sd + (width - 1) * sw < m.data.len() && buf.len() >= width.div_ceil(panel) * panel * depth);
    let w = <T::V as Lanes>::WIDTH;
    let src = m.data.as_ptr();
    for q in 0..width.div_ceil(panel) {
        let j0 = q * panel;
        let n = panel.min(width - j0);
        // Streams across the panel, each contiguous along the depth (a row-major A, a
        // transposed B): whole W × W blocks are transposed in registers.
        let gather_blocks = sw != 1 && sd == 1 && n == panel && panel % w == 0;
        let out = buf[q * panel * depth..].as_mut_ptr();
        // SAFETY: every read is at base + p·sd + (j0 + j)·sw with p < depth and j0 + j < width,
        // bounded by the assert; every write is inside panel q's `panel · depth` values.
        unsafe {
            let mut first = 0;
            if gather_blocks {
                // W depth steps of the panel's streams at a time, W streams per block.
                while first + w <= depth {
                    let (s, d) = (src.add(base + first + j0 * sw), out.add(first * panel));
                    for g in (0..panel).step_by(w) {
                        T::V::transpose_block(s.add(g * sw), sw, d.add(g), panel);
                    }
                    first += w;
                }
            }
            for p in first..depth {
                let s = src.add(base + p * sd + j0 * sw);
                let d = out.add(p * panel);
                if sw == 1 && n == panel && panel % w == 0 {
                    for v in (0..panel).step_by(w) {
                        T::V::load(s.add(v)).store(d.add(v));
                    }
                } else {
                    for j in 0..n {
                        *d.add(j) = *s.add(j * sw);
                    }
                    for j in n..panel {
                        *d.add(j) = T::ZERO;
                    }
                }
            }
        }
    }
}

/// tile[MR × 2W] = A_panel (kc × MR) ᵀ· B_panel (kc × 2W): MR·2 vector accumulators live in
/// registers; each step broadcasts the MR values `a(p)` of A's column p and does two
/// multiply-adds against the two B vectors of row p, read at `row(p)` (packed panels, or
/// shifted images read in place).
///
/// # Safety
/// `row(p)` must point at 2W readable values, and `a(p)` read only valid values, for p < kc.
#[inline(always)]
unsafe fn microkernel<V: Lanes>(kc: usize, a: impl Fn(usize) -> [V::Elem; MR], row: impl Fn(usize) -> *const V::Elem, tile: &mut [V::Elem]) {
    let w = V::WIDTH;
    let nr = 2 * w;
    assert!(tile.len() >= MR * nr);
    let zero = V::splat(V::Elem::ZERO);
    let (mut c00, mut c01, mut c10, mut c11) = (zero, zero, zero, zero);
    let (mut c20, mut c21, mut c30, mut c31) = (zero, zero, zero, zero);
    // SAFETY: the caller bounds row(p) (and what a(p) reads) for p < kc.
    unsafe {
        for p in 0..kc {
            let pb = row(p);
            let b0 = V::load(pb);
            let b1 = V::load(pb.add(w));
            let [v0, v1, v2, v3] = a(p);
            let a0 = V::splat(v0);
            c00 = a0.mul_add(b0, c00);
            c01 = a0.mul_add(b1, c01);
            let a1 = V::splat(v1);
            c10 = a1.mul_add(b0, c10);
            c11 = a1.mul_add(b1, c11);
            let a2 = V::splat(v2);
            c20 = a2.mul_add(b0, c20);
            c21 = a2.mul_add(b1, c21);
            let a3 = V::splat(v3);
            c30 = a3.mul_add(b0, c30);
            c31 = a3.mul_add(b1, c31);
        }
        let t = tile.as_mut_ptr();
        for (r, (x0, x1)) in [(c00, c01), (c10, c11), (c20, c21), (c30, c31)].into_iter().enumerate() {
            x0.store(t.add(r * nr));
            x1.store(t.add(r * nr + w));
        }
    }
}
