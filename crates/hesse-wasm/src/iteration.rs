//! The reverse-communication iterations of hesse-core's linalg (see `linalg::Iteration`) as one
//! JS object: TS asks `request()` for the vector to multiply, computes the product however it
//! likes (an awaited worker or GPU product, or a sync matvec with progress reports), hands it
//! to `provide(product)`, and reads `result()` (the same objects as the sync functions of
//! linalg.rs) when `request()` is undefined. The arithmetic is the sync functions' own, so
//! both paths agree bitwise.

use crate::js::{any_from_js, f64s};
use crate::linalg::{cg_opts, cg_result, diagonal_result, lanczos_result, minres_result, num, object, parse_which, power_result, slq_result, trace_result};
use crate::{js_error, JsResult};
use hesse_core::linalg::{
    self, CgIteration, HutchPpTrace, HutchinsonDiagonal, HutchinsonTrace, Iteration, LanczosIteration, LanczosOpts, MinresIteration, MinresOpts, PowerIteration, PowerOpts, SlqIteration, SlqOpts,
};
use hesse_core::{Error, Result};
use wasm_bindgen::prelude::*;

enum Any {
    Lanczos(LanczosIteration),
    Power(PowerIteration),
    Hutchinson(HutchinsonTrace),
    HutchPp(HutchPpTrace),
    Diagonal(HutchinsonDiagonal),
    Slq { it: SlqIteration, grid_points: usize, sigma: f64 },
    Cg(CgIteration),
    Minres(MinresIteration),
}

/// Dispatches `$body` on the iteration inside `$any` (bound to `$it`).
macro_rules! each {
    ($any:expr, $it:ident => $body:expr) => {
        match $any {
            Any::Lanczos($it) => $body,
            Any::Power($it) => $body,
            Any::Hutchinson($it) => $body,
            Any::HutchPp($it) => $body,
            Any::Diagonal($it) => $body,
            Any::Slq { it: $it, .. } => $body,
            Any::Cg($it) => $body,
            Any::Minres($it) => $body,
        }
    };
}

/// One running estimator or solver waiting for products. After an error (a bad product, a
/// non-symmetric operator, …) it is spent: every later call is an INVALID_ARGUMENT error.
#[wasm_bindgen]
pub struct RawIteration {
    it: Option<Any>,
    what: &'static str,
}

fn make(it: Result<Any>, what: &'static str) -> JsResult<RawIteration> {
    Ok(RawIteration { it: Some(it.map_err(js_error)?), what })
}

#[wasm_bindgen]
impl RawIteration {
    /// Lanczos (`linalg.rs`'s `lanczos`) on an operator of size `size`.
    #[allow(clippy::too_many_arguments)]
    pub fn lanczos(size: u32, k: u32, which: &str, max_iter: u32, tol: f64, seed: f64, vectors: bool, check_symmetry: bool) -> JsResult<RawIteration> {
        let opts = LanczosOpts { max_iter: max_iter as usize, tol, seed: seed as u64, vectors, check_symmetry };
        make(LanczosIteration::new(size as usize, k as usize, parse_which(which)?, &opts).map(Any::Lanczos), "lanczos")
    }
    #[wasm_bindgen(js_name = powerIteration)]
    pub fn power_iteration(size: u32, k: u32, max_iter: u32, tol: f64, seed: f64) -> JsResult<RawIteration> {
        make(PowerIteration::new(size as usize, k as usize, &PowerOpts { max_iter: max_iter as usize, tol, seed: seed as u64 }).map(Any::Power), "power_iteration")
    }
    /// `method` "hutchinson" (`samples` probes) or "hutch++" (`samples` products).
    #[wasm_bindgen(js_name = traceEstimate)]
    pub fn trace_estimate(size: u32, method: &str, samples: u32, seed: f64) -> JsResult<RawIteration> {
        let (n, s, seed) = (size as usize, samples as usize, seed as u64);
        match method {
            "hutchinson" => make(HutchinsonTrace::new(n, s, seed).map(Any::Hutchinson), "hutchinson_trace"),
            "hutch++" => make(HutchPpTrace::new(n, s, seed).map(Any::HutchPp), "hutch_pp_trace"),
            other => Err(js_error(Error::invalid(format!("unknown trace method '{other}': use hutchinson or hutch++")))),
        }
    }
    #[wasm_bindgen(js_name = diagonalEstimate)]
    pub fn diagonal_estimate(size: u32, samples: u32, seed: f64) -> JsResult<RawIteration> {
        make(HutchinsonDiagonal::new(size as usize, samples as usize, seed as u64).map(Any::Diagonal), "hutchinson_diagonal")
    }
    /// Stochastic Lanczos quadrature; the result is `slq`'s (density on the grid, quadrature).
    pub fn slq(size: u32, probes: u32, steps: u32, grid_points: u32, sigma: f64, seed: f64) -> JsResult<RawIteration> {
        linalg::check_density_args("slq_density", grid_points as usize, sigma).map_err(js_error)?;
        let opts = SlqOpts { probes: probes as usize, steps: steps as usize, grid_points: grid_points as usize, sigma, seed: seed as u64 };
        make(SlqIteration::new(size as usize, &opts).map(|it| Any::Slq { it, grid_points: grid_points as usize, sigma }), "slq")
    }
    #[allow(clippy::too_many_arguments)]
    pub fn cg(size: u32, b: JsValue, damping: f64, x0: JsValue, rtol: f64, atol: f64, max_iter: u32, min_iter: u32) -> JsResult<RawIteration> {
        let b = any_from_js::<f64>(&b, "cg: b")?;
        let opts = cg_opts(damping, x0, rtol, atol, max_iter, min_iter)?;
        make(CgIteration::new(size as usize, &b, &opts).map(Any::Cg), "cg")
    }
    pub fn minres(size: u32, b: JsValue, shift: f64, rtol: f64, max_iter: u32) -> JsResult<RawIteration> {
        let b = any_from_js::<f64>(&b, "minres: b")?;
        make(MinresIteration::new(size as usize, &b, &MinresOpts { shift, rtol, max_iter: max_iter as usize }).map(Any::Minres), "minres")
    }

    fn live(&self) -> JsResult<&Any> {
        self.it.as_ref().ok_or_else(|| self.spent())
    }
    fn spent(&self) -> JsValue {
        js_error(Error::invalid(format!("{}: this iteration stopped at an error or already gave its result; start a new one", self.what)))
    }

    /// A copy of the vector to multiply next, or undefined when the result is ready.
    pub fn request(&self) -> JsResult<JsValue> {
        match each!(self.live()?, it => it.request()) {
            Some(v) => f64s(v),
            None => Ok(JsValue::UNDEFINED),
        }
    }
    /// Hands over the product of the last request's vector (length n, finite).
    pub fn provide(&mut self, product: &[f64]) -> JsResult<()> {
        let r = match self.it.as_mut() {
            Some(any) => each!(any, it => it.provide(product)),
            None => return Err(self.spent()),
        };
        r.map_err(|e| {
            self.it = None;
            js_error(e)
        })
    }
    /// { done, total }: products provided so far, and the most the algorithm can ask for.
    pub fn progress(&self) -> JsResult<JsValue> {
        let (done, total) = each!(self.live()?, it => (it.products(), it.max_products()));
        Ok(object(&[("done", num(done)), ("total", num(total))]))
    }
    /// The result object (the sync function's); the iteration is spent afterwards.
    pub fn result(&mut self) -> JsResult<JsValue> {
        let any = self.it.take().ok_or_else(|| self.spent())?;
        match any {
            Any::Lanczos(it) => lanczos_result(&it.finish().map_err(js_error)?),
            Any::Power(it) => power_result(&it.finish().map_err(js_error)?),
            Any::Hutchinson(it) => Ok(trace_result(&it.finish().map_err(js_error)?)),
            Any::HutchPp(it) => Ok(trace_result(&it.finish().map_err(js_error)?)),
            Any::Diagonal(it) => diagonal_result(&it.finish().map_err(js_error)?),
            Any::Slq { it, grid_points, sigma } => slq_result(&it.finish().map_err(js_error)?, grid_points, sigma),
            Any::Cg(it) => cg_result(&it.finish().map_err(js_error)?),
            Any::Minres(it) => minres_result(&it.finish().map_err(js_error)?),
        }
    }
}
