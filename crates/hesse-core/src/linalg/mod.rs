//! Matrix-free linear algebra on symmetric operators: what one does with a Hessian (or
//! Gauss–Newton, Fisher) matrix that exists only as a product v ↦ A·v.
//!
//! - [`LinOp`]: the operator abstraction; [`Dense`] and [`Shifted`] (A + λI) implement it;
//!   [`check_symmetric`] tests symmetry with two products.
//! - Spectrum: [`lanczos()`] (extreme eigenpairs, full reorthogonalization),
//!   [`power_iteration`] (top-k by magnitude with deflation, PyHessian's baseline),
//!   [`slq_density`] / [`slq_quadrature`] / [`slq_moments`] (stochastic Lanczos quadrature).
//! - Trace and diagonal: [`hutchinson_trace`], [`hutch_pp_trace`], [`hutchinson_diagonal`].
//! - Solvers: [`cg`] (damping, warm start, negative-curvature report, quadratic model values for
//!   Hessian-free optimization) and [`minres`] (symmetric indefinite).
//! - Reverse communication: every algorithm above is also an [`Iteration`] (`LanczosIteration`,
//!   `CgIteration`, …) that asks for one product at a time; the functions are [`drive`] over them.
//! - Dense (by faer): [`eigh`], [`eigvalsh`] and [`cholesky`]; [`eigh_tridiagonal`] (implicit QL).
//!
//! Conventions: f64 throughout; every function returns [`crate::Result`] (never panics on user
//! input): LENGTH_MISMATCH for vectors whose length is not the operator's size, INVALID_ARGUMENT
//! for arguments out of range and for non-finite operator outputs. Matrices are row-major; sets
//! of vectors are k×n row-major (row i is vector i). Randomized methods take a `seed` and are
//! reproducible across platforms ([`Rng`]: xoshiro256**). Every result reports the operator
//! products it used, the unit of cost (one HVP each).

mod cg;
mod eigh;
mod iteration;
mod krylov;
mod lanczos;
mod linop;
mod minres;
mod power;
mod rng;
mod slq;
mod trace;
mod tridiag;
pub mod vecops;

pub use cg::{cg, CgIteration, CgOpts, CgResult, NegativeCurvature};
pub use iteration::{drive, Iteration};
pub use eigh::{cholesky, eigh, eigvalsh};
pub use tridiag::eigh_tridiagonal;
pub use lanczos::{lanczos, LanczosIteration, LanczosOpts, LanczosResult, Which};
pub use linop::{check_symmetric, Dense, LinOp, Shifted, SymmetryCheck, SYMMETRY_TOL};
pub use minres::{minres, MinresIteration, MinresOpts, MinresResult};
pub use power::{power_iteration, PowerIteration, PowerOpts, PowerResult};
pub use rng::Rng;
pub use slq::{check_density_args, slq_density, SlqIteration, slq_moments, slq_quadrature, SlqDensity, SlqOpts, SlqQuadrature};
pub use trace::{hutch_pp_trace, hutchinson_diagonal, hutchinson_trace, HutchPpTrace, HutchinsonDiagonal, HutchinsonTrace, DiagonalEstimate, TraceEstimate};
