//! hesse-core: the numeric heart of hesse, in plain Rust (no JS, tested with `cargo test`).
//!
//! - [`tensor`]: dense row-major f32/f64 tensors with a shape, created without panicking.
//! - [`kernels`]: GEMM, elementwise, reductions, conv2d; each with a SIMD path (wasm simd128,
//!   or portable lanes natively) and a plain scalar reference it is tested against.
//! - [`ops`]: the tensor-level functions that check shapes and dispatch to the kernels.

pub mod autodiff;
pub mod error;
pub mod kernels;
pub mod linalg;
pub mod mem;
pub mod ops;
pub mod real;
pub mod shape;
pub mod tensor;

pub use error::{Error, ErrorCode, Result};
pub use kernels::Isa;
pub use tensor::{Dtype, Tensor};
