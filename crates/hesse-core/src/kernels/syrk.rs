//! Symmetric rank-k update C = A·Aᵀ (A is n×k, row-major; C is n×n), the Gauss–Newton
//! accumulation G = Σᵢ MᵢᵀMᵢ. Only the blocks on and below the diagonal are computed (half the
//! GEMM flops), each by the packed SIMD GEMM, then mirrored.

use super::gemm::{gemm_reference, gemm_simd, MatRef};
use super::lanes::HasLanes;
use super::Isa;
use crate::error::Result;
use crate::real::Real;
use crate::tensor::try_zeros;

/// Rows of C computed per block (a multiple of the GEMM microkernel's rows).
const BLOCK: usize = 192;

/// C = A·Aᵀ for row-major A [n, k]; returns C [n, n] (symmetric, both triangles filled).
pub fn syrk<T: Real + HasLanes>(isa: Isa, a: &[T], n: usize, k: usize) -> Result<Vec<T>> {
    assert_eq!(a.len(), n * k, "syrk: A has the wrong length");
    let mut c = try_zeros::<T>(crate::mem::product("syrk (n × n)", &[n, n])?, "syrk")?;
    let mut tile = try_zeros::<T>(BLOCK * BLOCK, "syrk")?;
    for i0 in (0..n).step_by(BLOCK) {
        let bi = BLOCK.min(n - i0);
        let ai = MatRef::row_major(&a[i0 * k..(i0 + bi) * k], bi, k);
        for j0 in (0..=i0).step_by(BLOCK) {
            let bj = BLOCK.min(n - j0);
            let aj = MatRef::row_major(&a[j0 * k..(j0 + bj) * k], bj, k).t();
            let t = &mut tile[..bi * bj];
            match isa {
                Isa::Simd => gemm_simd(T::ONE, ai, aj, T::ZERO, t)?,
                Isa::Scalar => gemm_reference(T::ONE, ai, aj, T::ZERO, t),
            }
            // Lower block row by row; its mirror column by column, so both write C contiguously
            // (the strided reads stay inside the cache-resident tile).
            for r in 0..bi {
                c[(i0 + r) * n + j0..(i0 + r) * n + j0 + bj].copy_from_slice(&t[r * bj..(r + 1) * bj]);
            }
            if j0 != i0 {
                for s in 0..bj {
                    let row = &mut c[(j0 + s) * n + i0..(j0 + s) * n + i0 + bi];
                    for (r, v) in row.iter_mut().enumerate() {
                        *v = t[r * bj + s];
                    }
                }
            }
        }
    }
    Ok(c)
}
