//! A program's curvature as a linear operator: v ↦ H·v (or G·v, F·v) by one forward-over-reverse
//! pass, for the matrix-free algorithms of `linalg` (Lanczos, Hutchinson, SLQ, CG, MINRES). The
//! algorithms work in f64; an f32 program rounds v on the way in and widens the product on the
//! way out.
//!
//! With a [`Linearization`] the operator pays for the primal forward and reverse sweeps once: the
//! first product records their costly results and every later one replays them, running only the
//! tangent work (bitwise the same products; see linearization.rs).

use super::dual::Scalar;
use super::linearization::Linearization;
use super::program::{Curvature, Mode, Program, Run};
use crate::error::Result;
use crate::kernels::Isa;
use crate::linalg::LinOp;

/// The curvature of the scalar at node `out` with respect to the parameters, at fixed data.
pub struct CurvatureOp<'a, T> {
    pub prog: &'a Program,
    pub isa: Isa,
    pub out: usize,
    pub params: &'a [T],
    pub inputs: &'a [&'a [T]],
    pub curvature: Curvature,
    /// Products computed so far (the unit of cost every estimator reports).
    pub products: usize,
    /// Where the products keep their shared primal work (None: each product runs fresh).
    pub linearization: Option<&'a mut Linearization<T>>,
}

impl<T: Scalar> LinOp for CurvatureOp<'_, T> {
    fn size(&self) -> usize {
        self.prog.n_params()
    }
    fn apply(&mut self, v: &[f64], out: &mut [f64]) -> Result<()> {
        let vt: Vec<T> = v.iter().map(|&x| T::from_f64(x)).collect();
        let r = Run::at(self.params, self.inputs, Mode::Hvp { tangents: &vt, k: 1, cotangent: None, curvature: self.curvature });
        let o = match self.linearization.as_deref_mut() {
            Some(lin) => lin.run(self.prog, self.isa, self.out, &r)?,
            None => self.prog.run(self.isa, self.out, &r)?,
        };
        let g = o.grad.expect("backward ran");
        self.products += 1;
        match g.t {
            Some(t) => out.iter_mut().zip(&t).for_each(|(o, &x)| *o = x.to_f64()),
            None => out.fill(0.0),
        }
        Ok(())
    }
}
