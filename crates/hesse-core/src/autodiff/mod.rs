//! Second-order automatic differentiation: programs of primitive ops run forward on dual
//! numbers and backward with the same rules, giving values, gradients, JVPs and exact
//! forward-over-reverse Hessian-vector products from one engine.

pub mod act;
pub mod builder;
pub mod dual;
pub mod gauss_newton;
pub mod kfac;
pub mod kfac_pattern;
pub mod linearization;
pub mod loss_hessian;
pub mod op;
pub mod operator;
pub mod program;
pub mod serialize;

pub use act::Act;
pub use gauss_newton::{GaussNewtonPart, LossKind};
pub use kfac::{KfacFactors, KfacVariant};
pub use kfac_pattern::{KfacCoverage, KfacLayer};
pub use linearization::{Linearization, Record, Reuse};
pub use op::Op;
pub use operator::CurvatureOp;
pub use program::{Curvature, Mode, Outcome, Program, Run, Wrt};
