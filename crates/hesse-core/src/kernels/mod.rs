//! Compute kernels. Every kernel has two implementations behind one dispatch on [`Isa`]:
//! `Simd` (wasm simd128 in the wasm build, portable lanes natively) and `Scalar`, the plain
//! reference each SIMD kernel is property-tested against.

pub mod binary;
pub mod conv;
pub mod gemm;
pub mod lanes;
pub mod reduce;
pub mod syrk;
pub mod towers;
pub mod unary;

pub use binary::{binary, Binary};
pub use conv::{conv2d, conv2d_grad_input, conv2d_grad_weight, Conv2d, ConvAttrs};
pub use gemm::{gemm_reference, gemm_simd, MatRef};
pub use reduce::{reduce, Reduce};
pub use syrk::syrk;
pub use unary::{unary, Unary};

/// Which implementation of a kernel to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Isa {
    /// The fast path: simd128 lanes in wasm (portable lanes natively). The default.
    #[default]
    Simd,
    /// The scalar reference (for tests and benchmarks).
    Scalar,
}

impl Isa {
    pub fn parse(name: &str) -> Option<Isa> {
        match name {
            "simd" => Some(Isa::Simd),
            "scalar" => Some(Isa::Scalar),
            _ => None,
        }
    }
}

/// C ← α·A·B + β·C with the kernel of `isa` (see [`gemm`] for the view conventions).
pub fn gemm<T: crate::real::Real + lanes::HasLanes>(isa: Isa, alpha: T, a: MatRef<T>, b: MatRef<T>, beta: T, c: &mut [T]) -> crate::Result<()> {
    match isa {
        Isa::Simd => gemm_simd(alpha, a, b, beta, c),
        Isa::Scalar => {
            gemm_reference(alpha, a, b, beta, c);
            Ok(())
        }
    }
}
