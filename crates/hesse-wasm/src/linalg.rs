//! Bindings of hesse-core's matrix-free linear algebra: one operator handle (a program's
//! curvature at its staged data, a JS function, or a dense matrix) and the algorithms over it.
//! Results come back as plain JS objects of typed arrays and numbers.

use crate::js::{any_from_js, f64s};
use crate::program::{RawProgram, Staged, Store};
use crate::{js_error, JsResult};
use hesse_core::autodiff::{Curvature, CurvatureOp};
use hesse_core::linalg::{self, CgOpts, Dense, LanczosOpts, LinOp, MinresOpts, PowerOpts, SlqOpts, Which};
use hesse_core::{Error, ErrorCode, Result};
use wasm_bindgen::prelude::*;

enum Source {
    /// A program's curvature, with a snapshot of its staged parameters and data.
    Program { prog: hesse_core::autodiff::Program, store: Store, out: usize, curvature: Curvature },
    /// `f(v: Float64Array) => Float64Array` of length `size`.
    Js { f: js_sys::Function, size: usize },
    Dense(Dense),
}

/// A symmetric linear operator for the algorithms below.
///
/// The algorithms borrow it shared (`&RawOperator`), never exclusively: a JS matvec may call
/// back into hesse, even into this same operator (its size, or another algorithm on it), and
/// wasm-bindgen would refuse a shared borrow during an exclusive one with a "recursive use of an
/// object" error. Nothing here needs mutation: products are counted by the algorithms, and a
/// program's linearization (its snapshot's `Staged::lin`) sits in a RefCell borrowed for one
/// product at a time.
#[wasm_bindgen]
pub struct RawOperator {
    source: Source,
}

fn program_apply<T: hesse_core::autodiff::dual::Scalar>(prog: &hesse_core::autodiff::Program, s: &Staged<T>, out: usize, curvature: Curvature, v: &[f64], o: &mut [f64]) -> Result<()> {
    let mut inputs = hesse_core::mem::try_vec(s.inputs.len(), "staged inputs")?;
    inputs.extend(s.inputs.iter().map(|x| x.as_slice()));
    // The snapshot's linearization: the first product records the primal results, the others
    // replay them (busy only if a product were to run inside a product: then it runs fresh).
    let mut lin = s.lin.try_borrow_mut();
    let linearization = lin.as_deref_mut().ok();
    CurvatureOp { prog, isa: crate::isa(), out, params: &s.params, inputs: &inputs, curvature, products: 0, linearization }.apply(v, o)
}

/// The message of a value a JS callback threw (its `message` if an Error, else its string).
fn thrown(e: &JsValue) -> (Option<ErrorCode>, String) {
    let code = js_sys::Reflect::get(e, &"code".into()).ok().and_then(|c| c.as_string()).and_then(|c| ErrorCode::parse(&c));
    let msg = match e.dyn_ref::<js_sys::Error>() {
        Some(err) => String::from(err.message()),
        None => e.as_string().unwrap_or_else(|| "a non-Error value".into()),
    };
    (code, msg)
}

impl RawOperator {
    fn n(&self) -> usize {
        match &self.source {
            Source::Program { prog, .. } => prog.n_params(),
            Source::Js { size, .. } => *size,
            Source::Dense(d) => d.n(),
        }
    }
    fn apply_shared(&self, v: &[f64], o: &mut [f64]) -> Result<()> {
        match &self.source {
            Source::Program { prog, store, out, curvature } => match store {
                Store::F32(s) => program_apply(prog, s, *out, *curvature, v, o),
                Store::F64(s) => program_apply(prog, s, *out, *curvature, v, o),
            },
            Source::Js { f, size } => {
                let arg = f64s(v).map_err(|_| Error::new(ErrorCode::OutOfMemory, format!("the operator's matvec: cannot allocate its argument ({size} values) in JavaScript")))?;
                let r = f.call1(&JsValue::NULL, &arg).map_err(|e| match thrown(&e) {
                    // A hesse error raised inside the matvec keeps its code (OUT_OF_MEMORY stays that).
                    (Some(code), msg) => Error::new(code, format!("the operator's matvec failed: {msg}")),
                    // wasm-bindgen's refusal to free (or mutably borrow) a handle that is in use.
                    (None, msg) if msg.contains("recursive use of an object") || msg.contains("while it was borrowed") => {
                        Error::invalid("the operator's matvec freed or modified a hesse object that this call is using (such as this operator); a matvec may use it, but not free it")
                    }
                    (None, msg) => Error::invalid(format!("the operator's matvec threw: {msg}")),
                })?;
                let arr = r.dyn_into::<js_sys::Float64Array>().map_err(|_| Error::invalid("the operator's matvec must return a Float64Array"))?;
                if arr.length() as usize != *size {
                    return Err(Error::new(ErrorCode::LengthMismatch, format!("the operator's matvec returned {} values for size {size}", arr.length())));
                }
                arr.copy_to(o);
                Ok(())
            }
            Source::Dense(d) => d.apply_ref(v, o),
        }
    }
}

/// The LinOp the algorithms run on: a shared borrow of the operator.
struct Shared<'a>(&'a RawOperator);

impl LinOp for Shared<'_> {
    fn size(&self) -> usize {
        self.0.n()
    }
    fn apply(&mut self, v: &[f64], o: &mut [f64]) -> Result<()> {
        self.0.apply_shared(v, o)
    }
}

#[wasm_bindgen]
impl RawOperator {
    /// An operator calling `matvec(v) => Float64Array` (user-supplied; must be symmetric).
    #[wasm_bindgen(js_name = fromFunction)]
    pub fn from_function(size: u32, matvec: js_sys::Function) -> RawOperator {
        RawOperator { source: Source::Js { f: matvec, size: size as usize } }
    }
    /// A dense symmetric n×n matrix (row-major, a Float64Array).
    #[wasm_bindgen(js_name = fromDense)]
    pub fn from_dense(a: JsValue, n: u32) -> JsResult<RawOperator> {
        Ok(RawOperator { source: Source::Dense(Dense::new(any_from_js(&a, "dense matrix")?, n as usize).map_err(js_error)?) })
    }
    pub fn size(&self) -> u32 {
        self.n() as u32
    }
    /// A·v as a new Float64Array (the product the TS-driven iterations hand to `provide`).
    pub fn apply(&self, v: &[f64]) -> JsResult<JsValue> {
        let n = self.n();
        if v.len() != n {
            return Err(js_error(Error::new(ErrorCode::LengthMismatch, format!("the operator's apply: v has {} values for size {n}", v.len()))));
        }
        let mut out = hesse_core::mem::try_zeros::<f64>(n, "the operator's product").map_err(js_error)?;
        self.apply_shared(v, &mut out).map_err(js_error)?;
        f64s(&out)
    }
    /// For a program's curvature: what its linearization did, { fresh, recorded, replayed,
    /// tapeBytes } (products that computed everything, recorded the primal results, replayed
    /// them); undefined for other operators. For tests and benchmarks.
    #[wasm_bindgen(js_name = reuseStats)]
    pub fn reuse_stats(&self) -> JsValue {
        match &self.source {
            Source::Program { store, .. } => {
                let s = store.reuse_stats();
                object(&[("fresh", num(s.fresh)), ("recorded", num(s.recorded)), ("replayed", num(s.replayed)), ("tapeBytes", num(s.tape_bytes))])
            }
            _ => JsValue::UNDEFINED,
        }
    }
    /// Bounds the bytes the program's linearization may keep (default 1 GiB, and never more
    /// than one run's own values and tangents); 0 runs every product fresh.
    #[wasm_bindgen(js_name = setReuseCap)]
    pub fn set_reuse_cap(&self, bytes: f64) {
        if let Source::Program { store, .. } = &self.source {
            store.set_reuse_cap(bytes.clamp(0.0, usize::MAX as f64) as usize);
        }
    }
}

#[wasm_bindgen]
impl RawProgram {
    /// The curvature (a `RawCurvature`: the Hessian, or the GGN or a Fisher at its network output)
    /// of node `out` at the currently staged parameters and data, as an operator (a snapshot:
    /// later staging does not change it).
    #[wasm_bindgen(js_name = curvatureOperator)]
    pub fn curvature_operator(&self, out: u32, curvature: &crate::program::RawCurvature) -> JsResult<RawOperator> {
        let curvature = curvature.inner;
        // The program's constants are shared, so copying it copies node lists only; the staged
        // data are copied fallibly.
        let store = self.store.try_clone().map_err(js_error)?;
        Ok(RawOperator { source: Source::Program { prog: self.prog.clone(), store, out: out as usize, curvature } })
    }
}

/// A JS object from (key, value) pairs.
pub(crate) fn object(pairs: &[(&str, JsValue)]) -> JsValue {
    let o = js_sys::Object::new();
    for (k, v) in pairs {
        let _ = js_sys::Reflect::set(&o, &(*k).into(), v);
    }
    o.into()
}

pub(crate) fn num(x: usize) -> JsValue {
    (x as f64).into()
}

/// Dense symmetric eigendecomposition: { values (ascending), vectors (row j: eigenvector j) }.
#[wasm_bindgen]
pub fn eigh(a: JsValue, n: u32) -> JsResult<JsValue> {
    let a = any_from_js::<f64>(&a, "eigh")?;
    let (values, vectors) = linalg::eigh(&a, n as usize).map_err(js_error)?;
    Ok(object(&[("values", f64s(&values)?), ("vectors", f64s(&vectors)?)]))
}

/// Eigenvalues only of a dense symmetric matrix (ascending).
#[wasm_bindgen]
pub fn eigvalsh(a: JsValue, n: u32) -> JsResult<JsValue> {
    let a = any_from_js::<f64>(&a, "eigvalsh")?;
    f64s(&linalg::eigvalsh(&a, n as usize).map_err(js_error)?)
}

/// The Cholesky factor L (lower triangular, row-major) of a symmetric positive definite matrix.
#[wasm_bindgen]
pub fn cholesky(a: JsValue, n: u32) -> JsResult<JsValue> {
    let a = any_from_js::<f64>(&a, "cholesky")?;
    f64s(&linalg::cholesky(&a, n as usize).map_err(js_error)?)
}

/// Lanczos with full reorthogonalization: `which` is "largest" | "smallest" | "both".
#[allow(clippy::too_many_arguments)]
#[wasm_bindgen]
pub fn lanczos(op: &RawOperator, k: u32, which: &str, max_iter: u32, tol: f64, seed: f64, vectors: bool, check_symmetry: bool) -> JsResult<JsValue> {
    let opts = LanczosOpts { max_iter: max_iter as usize, tol, seed: seed as u64, vectors, check_symmetry };
    lanczos_result(&linalg::lanczos(&mut Shared(op), k as usize, parse_which(which)?, &opts).map_err(js_error)?)
}

pub(crate) fn parse_which(which: &str) -> JsResult<Which> {
    match which {
        "largest" => Ok(Which::Largest),
        "smallest" => Ok(Which::Smallest),
        "both" => Ok(Which::Both),
        other => Err(js_error(Error::invalid(format!("unknown which '{other}': use largest, smallest or both")))),
    }
}

/// The JS object of a Lanczos result (also the async iteration's result).
pub(crate) fn lanczos_result(r: &linalg::LanczosResult) -> JsResult<JsValue> {
    Ok(object(&[
        ("values", f64s(&r.values)?),
        ("vectors", r.vectors.as_deref().map(f64s).transpose()?.unwrap_or(JsValue::UNDEFINED)),
        ("residuals", f64s(&r.residuals)?),
        ("iterations", num(r.iterations)),
        ("products", num(r.products)),
        ("converged", r.converged.into()),
    ]))
}

/// Power iteration with deflation (top k by magnitude).
#[wasm_bindgen(js_name = powerIteration)]
pub fn power_iteration(op: &RawOperator, k: u32, max_iter: u32, tol: f64, seed: f64) -> JsResult<JsValue> {
    power_result(&linalg::power_iteration(&mut Shared(op), k as usize, &PowerOpts { max_iter: max_iter as usize, tol, seed: seed as u64 }).map_err(js_error)?)
}

pub(crate) fn power_result(r: &linalg::PowerResult) -> JsResult<JsValue> {
    Ok(object(&[("values", f64s(&r.values)?), ("vectors", f64s(&r.vectors)?), ("residuals", f64s(&r.residuals)?), ("products", num(r.products)), ("converged", r.converged.into())]))
}

/// Trace estimate: `method` "hutchinson" (`samples` probes) or "hutch++" (`samples` products).
#[wasm_bindgen(js_name = traceEstimate)]
pub fn trace_estimate(op: &RawOperator, method: &str, samples: u32, seed: f64) -> JsResult<JsValue> {
    let r = match method {
        "hutchinson" => linalg::hutchinson_trace(&mut Shared(op), samples as usize, seed as u64),
        "hutch++" => linalg::hutch_pp_trace(&mut Shared(op), samples as usize, seed as u64),
        other => return Err(js_error(Error::invalid(format!("unknown trace method '{other}': use hutchinson or hutch++")))),
    }
    .map_err(js_error)?;
    Ok(trace_result(&r))
}

pub(crate) fn trace_result(r: &linalg::TraceEstimate) -> JsValue {
    object(&[("trace", r.trace.into()), ("stdError", r.std_error.into()), ("products", num(r.products))])
}

/// Hutchinson diagonal estimate.
#[wasm_bindgen(js_name = diagonalEstimate)]
pub fn diagonal_estimate(op: &RawOperator, samples: u32, seed: f64) -> JsResult<JsValue> {
    diagonal_result(&linalg::hutchinson_diagonal(&mut Shared(op), samples as usize, seed as u64).map_err(js_error)?)
}

pub(crate) fn diagonal_result(r: &linalg::DiagonalEstimate) -> JsResult<JsValue> {
    Ok(object(&[("diagonal", f64s(&r.diagonal)?), ("products", num(r.products))]))
}

/// Stochastic Lanczos quadrature: the spectral density on a grid, and the first moments.
#[wasm_bindgen]
pub fn slq(op: &RawOperator, probes: u32, steps: u32, grid_points: u32, sigma: f64, seed: f64) -> JsResult<JsValue> {
    let opts = SlqOpts { probes: probes as usize, steps: steps as usize, grid_points: grid_points as usize, sigma, seed: seed as u64 };
    slq_result(&linalg::slq_quadrature(&mut Shared(op), &opts).map_err(js_error)?, opts.grid_points, sigma)
}

/// The density on the grid and the quadrature, as the JS object of `slq`.
pub(crate) fn slq_result(q: &linalg::SlqQuadrature, grid_points: usize, sigma: f64) -> JsResult<JsValue> {
    let (grid, density) = q.density(grid_points, sigma).map_err(js_error)?;
    Ok(object(&[
        ("grid", f64s(&grid)?),
        ("density", f64s(&density)?),
        ("nodes", f64s(&q.nodes)?),
        ("weights", f64s(&q.weights)?),
        ("products", num(q.products)),
    ]))
}

/// Conjugate gradients on (A + damping·I)x = b.
#[allow(clippy::too_many_arguments)]
#[wasm_bindgen]
pub fn cg(op: &RawOperator, b: JsValue, damping: f64, x0: JsValue, rtol: f64, atol: f64, max_iter: u32, min_iter: u32) -> JsResult<JsValue> {
    let b = any_from_js::<f64>(&b, "cg: b")?;
    let opts = cg_opts(damping, x0, rtol, atol, max_iter, min_iter)?;
    cg_result(&linalg::cg(&mut Shared(op), &b, &opts).map_err(js_error)?)
}

pub(crate) fn cg_opts(damping: f64, x0: JsValue, rtol: f64, atol: f64, max_iter: u32, min_iter: u32) -> JsResult<CgOpts> {
    let mut opts = CgOpts::with_damping(damping).map_err(js_error)?;
    opts.x0 = if x0.is_undefined() || x0.is_null() { None } else { Some(any_from_js(&x0, "cg: x0")?) };
    opts.rtol = rtol;
    opts.atol = atol;
    opts.max_iter = max_iter as usize;
    opts.min_iter = min_iter as usize;
    Ok(opts)
}

pub(crate) fn cg_result(r: &linalg::CgResult) -> JsResult<JsValue> {
    let negative = match &r.negative_curvature {
        Some(n) => object(&[("direction", f64s(&n.direction)?), ("rayleigh", n.rayleigh.into())]),
        None => JsValue::UNDEFINED,
    };
    Ok(object(&[
        ("x", f64s(&r.x)?),
        ("iterations", num(r.iterations)),
        ("residualNorm", r.residual_norm.into()),
        ("converged", r.converged.into()),
        ("negativeCurvature", negative),
        ("model", f64s(&r.model)?),
        ("products", num(r.products)),
    ]))
}

/// MINRES on (A + shift·I)x = b (symmetric, possibly indefinite).
#[wasm_bindgen]
pub fn minres(op: &RawOperator, b: JsValue, shift: f64, rtol: f64, max_iter: u32) -> JsResult<JsValue> {
    let b = any_from_js::<f64>(&b, "minres: b")?;
    minres_result(&linalg::minres(&mut Shared(op), &b, &MinresOpts { shift, rtol, max_iter: max_iter as usize }).map_err(js_error)?)
}

pub(crate) fn minres_result(r: &linalg::MinresResult) -> JsResult<JsValue> {
    Ok(object(&[("x", f64s(&r.x)?), ("iterations", num(r.iterations)), ("residualNorm", r.residual_norm.into()), ("converged", r.converged.into()), ("products", num(r.products))]))
}
