//! Program handles: the tracer in TS builds a program node by node through these methods, then
//! runs it many times. Parameters and data are staged in Rust once (`setParams`, `setInput`) so
//! repeated runs (Lanczos, CG, Hessian columns) copy only what changes.

use crate::js::{any_from_js, copy_into, from_js, JsElement};
use crate::{js_error, JsResult};
use hesse_core::autodiff::builder::Layer;
use hesse_core::autodiff::op::{Indices, Pool2d};
use hesse_core::autodiff::dual::Scalar;
use hesse_core::autodiff::{Act, Curvature, GaussNewtonPart, Linearization, LossKind, Mode, Outcome, Program, Record, Run, Wrt};
use std::cell::RefCell;
use hesse_core::mem::{try_copy, try_vec, try_zeros};
use hesse_core::{Dtype, Error, ErrorCode};
use serde_json::Value;
use wasm_bindgen::prelude::*;

/// `go(&prog, staged, args…)` for the program's dtype.
macro_rules! per_dtype {
    ($self:ident, $go:ident($($arg:expr),*)) => {
        match &$self.store {
            Store::F32(s) => $go(&$self.prog, s, $($arg),*),
            Store::F64(s) => $go(&$self.prog, s, $($arg),*),
        }
    };
}

/// Staged values of one dtype, and the linearization their curvature products share.
pub(crate) struct Staged<T> {
    pub(crate) params: Vec<T>,
    pub(crate) inputs: Vec<Vec<T>>,
    /// The primal results of the last curvature product, replayed by the next ones at the same
    /// point and mode (hesse-core's linearization.rs; it compares the point itself, so staging
    /// new values needs no invalidation here). A program's records at the second product of a
    /// point (its point may change every call: optimizer steps, a batched objective's batches);
    /// an operator's snapshot at the first (it exists for many products at one point).
    pub(crate) lin: RefCell<Linearization<T>>,
}

impl<T: Scalar> Default for Staged<T> {
    fn default() -> Self {
        Staged { params: Vec::new(), inputs: Vec::new(), lin: RefCell::new(Linearization::new(Record::Repeat)) }
    }
}

impl<T: Scalar> Staged<T> {
    /// A copy (for an operator's snapshot), allocated fallibly, with a linearization of its own.
    pub(crate) fn try_clone(&self) -> hesse_core::Result<Self> {
        let mut inputs = try_vec(self.inputs.len(), "staged inputs")?;
        for x in &self.inputs {
            inputs.push(try_copy(x, "staged inputs")?);
        }
        Ok(Staged { params: try_copy(&self.params, "staged parameters")?, inputs, lin: RefCell::new(Linearization::new(Record::First)) })
    }
    /// A run of `prog`; a curvature product (K > 0) goes through the linearization.
    pub(crate) fn run(&self, prog: &Program, out: usize, r: &Run<'_, T>) -> hesse_core::Result<Outcome<T>> {
        match self.lin.try_borrow_mut() {
            Ok(mut lin) if r.mode.k() > 0 => lin.run(prog, crate::isa(), out, r),
            _ => prog.run(crate::isa(), out, r),
        }
    }
    /// A run of `prog` at the staged parameters and data in `mode`.
    pub(crate) fn run_at(&self, prog: &Program, out: usize, wrt: Wrt, check_finite: bool, mode: Mode<'_, T>) -> JsResult<Outcome<T>> {
        let inputs = self.input_slices()?;
        self.run(prog, out, &Run { params: &self.params, inputs: &inputs, wrt, mode, check_finite }).map_err(js_error)
    }
    /// The staged inputs as slices.
    pub(crate) fn input_slices(&self) -> JsResult<Vec<&[T]>> {
        let mut v = try_vec(self.inputs.len(), "staged inputs").map_err(js_error)?;
        v.extend(self.inputs.iter().map(|x| x.as_slice()));
        Ok(v)
    }
}

pub(crate) enum Store {
    F32(Staged<f32>),
    F64(Staged<f64>),
}

impl Store {
    pub(crate) fn try_clone(&self) -> hesse_core::Result<Store> {
        Ok(match self {
            Store::F32(s) => Store::F32(s.try_clone()?),
            Store::F64(s) => Store::F64(s.try_clone()?),
        })
    }
    /// The staged values' linearization: what it did so far, and a new bound on its tape.
    /// (A linearization is borrowed only for the length of one run, which calls no JS: these
    /// never find it busy.)
    pub(crate) fn reuse_stats(&self) -> hesse_core::autodiff::Reuse {
        match self {
            Store::F32(s) => s.lin.try_borrow().map(|l| l.stats()).unwrap_or_default(),
            Store::F64(s) => s.lin.try_borrow().map(|l| l.stats()).unwrap_or_default(),
        }
    }
    pub(crate) fn set_reuse_cap(&self, bytes: usize) {
        let _ = match self {
            Store::F32(s) => s.lin.try_borrow_mut().map(|mut l| l.set_cap(bytes)),
            Store::F64(s) => s.lin.try_borrow_mut().map(|mut l| l.set_cap(bytes)),
        };
    }
    fn elem_size(&self) -> u128 {
        match self {
            Store::F32(_) => 4,
            Store::F64(_) => 8,
        }
    }
}

/// What wasm32 can address: a program whose every run needs more can never run here.
const ADDRESS_SPACE: u128 = 1 << 32;

#[wasm_bindgen]
pub struct RawProgram {
    pub(crate) prog: Program,
    pub(crate) store: Store,
}

fn usize_shape(shape: &[u32]) -> Vec<usize> {
    shape.iter().map(|&d| d as usize).collect()
}

impl RawProgram {
    /// One builder step, all or nothing: on an error, or when the program would no longer fit
    /// wasm32's memory, everything the step added is removed (a failed `sequential` leaves no
    /// half-built layers, and the program keeps working).
    pub(crate) fn build(&mut self, step: impl FnOnce(&mut Program) -> hesse_core::Result<usize>) -> JsResult<u32> {
        let mark = self.prog.mark();
        match step(&mut self.prog).and_then(|id| self.fits().map(|_| id)) {
            Ok(id) => Ok(id as u32),
            Err(e) => {
                self.prog.rollback(mark);
                Err(js_error(e))
            }
        }
    }

    /// Refuses a program whose runs need more than wasm32's 4 GiB: a lower bound of one
    /// value-only run (staged parameters and inputs plus every node's value; gradients and
    /// tangents need more), checked as the program is built, before anything is allocated.
    pub(crate) fn fits(&self) -> hesse_core::Result<()> {
        let bytes = self.prog.min_run_elements() as u128 * self.store.elem_size();
        if bytes > ADDRESS_SPACE {
            return Err(Error::new(
                ErrorCode::OutOfMemory,
                format!(
                    "this program needs at least {bytes} bytes for one run (P = {} parameters, {} values in {} nodes, {}), but wasm32 memory holds at most {ADDRESS_SPACE} bytes (4 GiB); use a smaller model or batch",
                    self.prog.n_params(),
                    self.prog.min_run_elements(),
                    self.prog.nodes().len(),
                    self.dtype()
                ),
            ));
        }
        Ok(())
    }
}

/// A pointwise function by name; `alpha` and `beta` are its constants where it has some.
fn parse_act(name: &str, alpha: f64, beta: f64) -> JsResult<Act> {
    Ok(match name {
        "relu" => Act::Relu,
        "leaky_relu" => Act::LeakyRelu(alpha),
        "tanh" => Act::Tanh,
        "sigmoid" => Act::Sigmoid,
        "gelu" => Act::GeluErf,
        "gelu_tanh" => Act::GeluTanh,
        "softplus" => Act::SoftplusThreshold,
        "elu" => Act::Elu(alpha),
        "exp" => Act::Exp,
        "log" => Act::Log,
        "sqrt" => Act::Sqrt,
        "square" => Act::Square,
        "erf" => Act::Erf,
        "pow" => Act::Pow(alpha),
        "softplus_exact" => Act::Softplus,
        "recip" => Act::Recip,
        "hard_sigmoid" => Act::HardSigmoid { alpha, beta },
        "hard_swish" => Act::HardSwish,
        "silu" => Act::Silu,
        "clip" => Act::Clip { lo: alpha, hi: beta },
        "hardtanh" => Act::HardTanh { lo: alpha, hi: beta },
        _ => return Err(js_error(Error::new(ErrorCode::InvalidArgument, format!("unsupported op '{name}'")))),
    })
}

/// A layer spec from `nn` (JSON) as a core [`Layer`].
fn parse_layer(v: &Value) -> Result<Layer, Error> {
    let bad = |what: &str| Error::invalid(format!("layer {v}: {what}"));
    let int = |k: &str| v.get(k).and_then(Value::as_u64).map(|x| x as usize).ok_or_else(|| bad(&format!("needs integer '{k}'")));
    let pair = |k: &str, d: usize| -> Result<(usize, usize), Error> {
        match v.get(k) {
            None => Ok((d, d)),
            Some(Value::Number(n)) => n.as_u64().map(|x| (x as usize, x as usize)).ok_or_else(|| bad(k)),
            Some(Value::Array(a)) if a.len() == 2 => Ok((a[0].as_u64().ok_or_else(|| bad(k))? as usize, a[1].as_u64().ok_or_else(|| bad(k))? as usize)),
            _ => Err(bad(k)),
        }
    };
    let num = |k: &str, d: f64| v.get(k).and_then(Value::as_f64).unwrap_or(d);
    let bias = v.get("bias").and_then(Value::as_bool).unwrap_or(true);
    let kind = v.get("type").and_then(Value::as_str).ok_or_else(|| bad("needs a 'type'"))?;
    Ok(match kind {
        "linear" => Layer::Linear { inputs: int("in")?, outputs: int("out")?, bias },
        "conv2d" => Layer::Conv2d {
            inputs: int("in")?,
            outputs: int("out")?,
            kernel: pair("kernel", 1)?,
            stride: pair("stride", 1)?,
            padding: pair("padding", 0)?,
            dilation: pair("dilation", 1)?,
            groups: if v.get("groups").is_some() { int("groups")? } else { 1 },
            bias,
        },
        "flatten" => Layer::Flatten,
        "layer_norm" => Layer::LayerNorm { dim: int("dim")?, eps: num("eps", 1e-5) },
        "leaky_relu" => Layer::Act(Act::LeakyRelu(num("slope", 0.01))),
        "elu" => Layer::Act(Act::Elu(num("alpha", 1.0))),
        "gelu" if v.get("approximate").and_then(Value::as_str) == Some("tanh") => Layer::Act(Act::GeluTanh),
        other => Layer::Act(parse_act(other, 0.0, 0.0).map_err(|_| Error::invalid(format!("unknown layer type '{other}'")))?),
    })
}

/// Integers from an Int32Array or a BigInt64Array (copied exactly: never through floats).
fn ints_from_js(v: &JsValue, what: &str) -> JsResult<Vec<i64>> {
    use wasm_bindgen::JsCast;
    if let Some(a) = v.dyn_ref::<js_sys::Int32Array>() {
        let mut tmp = try_vec::<i32>(a.length() as usize, what).map_err(js_error)?;
        tmp.resize(a.length() as usize, 0);
        a.copy_to(&mut tmp);
        let mut out = try_vec::<i64>(tmp.len(), what).map_err(js_error)?;
        out.extend(tmp.iter().map(|&x| i64::from(x)));
        return Ok(out);
    }
    if let Some(a) = v.dyn_ref::<js_sys::BigInt64Array>() {
        let mut out = try_vec::<i64>(a.length() as usize, what).map_err(js_error)?;
        out.resize(a.length() as usize, 0);
        a.copy_to(&mut out);
        return Ok(out);
    }
    Err(js_error(Error::invalid(format!("{what}: expected an Int32Array or a BigInt64Array of integers"))))
}

/// Integers passed as a Float64Array (slice bounds, pads): each must be integral; beyond
/// ±2⁶³ they saturate (ONNX's INT64_MAX / INT64_MIN "to the end" sentinels arrive as ±2⁶³).
fn i64s(v: &[f64], what: &str) -> JsResult<Vec<i64>> {
    v.iter()
        .enumerate()
        .map(|(i, &x)| if x.fract() == 0.0 { Ok(x as i64) } else { Err(js_error(Error::invalid(format!("{what}[{i}] = {x} is not an integer")))) })
        .collect()
}

fn check_slot(slot: usize, n: usize) -> JsResult<()> {
    if slot >= n {
        return Err(js_error(Error::invalid(format!("no input slot {slot} (the program has {n})"))));
    }
    Ok(())
}

#[wasm_bindgen]
impl RawProgram {
    #[wasm_bindgen(constructor)]
    pub fn new(dtype: &str) -> JsResult<RawProgram> {
        let store = match Dtype::parse(dtype).map_err(js_error)? {
            Dtype::F32 => Store::F32(Staged::default()),
            Dtype::F64 => Store::F64(Staged::default()),
        };
        Ok(RawProgram { prog: Program::new(), store })
    }
    pub fn dtype(&self) -> String {
        match self.store {
            Store::F32(_) => "float32".into(),
            Store::F64(_) => "float64".into(),
        }
    }
    #[wasm_bindgen(js_name = nParams)]
    pub fn n_params(&self) -> u32 {
        self.prog.n_params() as u32
    }
    #[wasm_bindgen(js_name = nNodes)]
    pub fn n_nodes(&self) -> u32 {
        self.prog.nodes().len() as u32
    }
    pub fn shape(&self, node: u32) -> JsResult<Vec<u32>> {
        self.prog.shape(node as usize).map(|s| s.iter().map(|&d| d as u32).collect()).map_err(js_error)
    }
    /// [offset, ndim, dims...] per parameter block, flattened.
    #[wasm_bindgen(js_name = paramBlocks)]
    pub fn param_blocks(&self) -> Vec<u32> {
        self.prog.param_blocks().into_iter().flat_map(|(off, s)| [off as u32, s.len() as u32].into_iter().chain(s.into_iter().map(|d| d as u32))).collect()
    }

    pub fn param(&mut self, shape: &[u32]) -> JsResult<u32> {
        self.build(|p| p.param(&usize_shape(shape)))
    }
    /// A data input; its staging buffer is allocated now (zeros), so staging never allocates.
    pub fn input(&mut self, shape: &[u32]) -> JsResult<u32> {
        let mark = self.prog.mark();
        let id = self.build(|p| p.input(&usize_shape(shape)))?;
        let n = hesse_core::shape::numel(&usize_shape(shape)).map_err(js_error)?;
        let staged = match &mut self.store {
            Store::F32(s) => stage(&mut s.inputs, n),
            Store::F64(s) => stage(&mut s.inputs, n),
        };
        if let Err(e) = staged {
            self.prog.rollback(mark);
            return Err(js_error(e));
        }
        Ok(id)
    }
    /// A constant (a Float64Array of numel(shape) values).
    pub fn constant(&mut self, shape: &[u32], values: JsValue) -> JsResult<u32> {
        let values = any_from_js::<f64>(&values, "constant")?;
        self.build(|p| p.constant(&usize_shape(shape), values))
    }
    /// Elementwise binary op with broadcasting: add | sub | mul | div.
    pub fn binary(&mut self, op: &str, a: u32, b: u32) -> JsResult<u32> {
        let (a, b) = (a as usize, b as usize);
        self.build(|p| match op {
            "add" => p.add(a, b),
            "sub" => p.sub(a, b),
            "mul" => p.mul(a, b),
            "div" => p.div(a, b),
            _ => Err(Error::invalid(format!("unsupported op '{op}'"))),
        })
    }
    pub fn scale(&mut self, x: u32, c: f64) -> JsResult<u32> {
        self.build(|p| p.scale(x as usize, c))
    }
    /// A pointwise function by name (`alpha`: leaky_relu's slope, elu's α, pow's p,
    /// hard_sigmoid's α, clip's and hardtanh's lower bound; `beta`: hard_sigmoid's β, the upper bound).
    pub fn act(&mut self, x: u32, name: &str, alpha: f64, beta: f64) -> JsResult<u32> {
        let a = parse_act(name, alpha, beta)?;
        self.build(|p| p.act(x as usize, a))
    }
    pub fn matmul(&mut self, a: u32, b: u32, ta: bool, tb: bool) -> JsResult<u32> {
        self.build(|p| p.matmul(a as usize, b as usize, ta, tb))
    }
    /// conv2d with `attrs` [strideH, strideW, top, left, bottom, right, dilationH, dilationW, groups].
    pub fn conv2d(&mut self, x: u32, w: u32, attrs: &[u32]) -> JsResult<u32> {
        let a = crate::conv_attrs(attrs)?;
        self.build(|p| p.conv2d(x as usize, w as usize, a))
    }
    pub fn reshape(&mut self, x: u32, shape: &[u32]) -> JsResult<u32> {
        self.build(|p| p.reshape(x as usize, &usize_shape(shape)))
    }
    pub fn transpose(&mut self, x: u32) -> JsResult<u32> {
        self.build(|p| p.transpose(x as usize))
    }
    /// Output axis a is input axis perm[a].
    pub fn permute(&mut self, x: u32, perm: &[u32]) -> JsResult<u32> {
        self.build(|p| p.permute(x as usize, &usize_shape(perm)))
    }
    /// Concatenation of nodes `xs` along `axis` (negative counts from the end).
    pub fn concat(&mut self, xs: &[u32], axis: i32) -> JsResult<u32> {
        self.build(|p| p.concat(&usize_shape(xs), axis as i64))
    }
    /// sum | mean along `axis` (all when undefined).
    pub fn reduce(&mut self, op: &str, x: u32, axis: Option<i32>, keepdims: bool) -> JsResult<u32> {
        let axis = axis.map(i64::from);
        self.build(|p| match op {
            "sum" => p.sum(x as usize, axis, keepdims),
            "mean" => p.mean(x as usize, axis, keepdims),
            _ => Err(Error::invalid(format!("unsupported reduction '{op}'"))),
        })
    }
    /// logsumexp | softmax | log_softmax | layer_norm(eps) over the last axis.
    #[wasm_bindgen(js_name = lastAxis)]
    pub fn last_axis(&mut self, op: &str, x: u32, eps: f64) -> JsResult<u32> {
        let x = x as usize;
        self.build(|p| match op {
            "logsumexp" => p.logsumexp(x),
            "softmax" => p.softmax(x),
            "log_softmax" => p.log_softmax(x),
            "layer_norm" => p.layer_norm(x, eps),
            _ => Err(Error::invalid(format!("unsupported op '{op}'"))),
        })
    }
    /// mse | cross_entropy | bce_with_logits.
    pub fn loss(&mut self, kind: &str, pred: u32, target: u32) -> JsResult<u32> {
        let (pr, t) = (pred as usize, target as usize);
        self.build(|p| match kind {
            "mse" => p.mse(pr, t),
            "cross_entropy" => p.cross_entropy(pr, t),
            "bce_with_logits" => p.bce_with_logits(pr, t),
            _ => Err(Error::invalid(format!("unknown loss '{kind}': use mse, cross_entropy or bce_with_logits"))),
        })
    }
    /// Applies `nn` layers (a JSON array of layer specs) to node `x`.
    pub fn sequential(&mut self, x: u32, layers_json: &str) -> JsResult<u32> {
        let v: Value = serde_json::from_str(layers_json).map_err(|e| js_error(Error::invalid(format!("layers: {e}"))))?;
        let arr = v.as_array().ok_or_else(|| js_error(Error::invalid("layers: expected an array")))?;
        let layers = arr.iter().map(parse_layer).collect::<Result<Vec<_>, _>>().map_err(js_error)?;
        self.build(|p| p.sequential(x as usize, &layers))
    }

    /// An index (integer) input of `shape`: returns its slot (not a node id). Its values are
    /// staged with `setIndexInput` and used by the gathers that name the slot.
    #[wasm_bindgen(js_name = indexInput)]
    pub fn index_input(&mut self, shape: &[u32]) -> JsResult<u32> {
        self.prog.index_input(&usize_shape(shape)).map(|s| s as u32).map_err(js_error)
    }
    /// Stages index input `slot` from an Int32Array or BigInt64Array (checked, never wrapped).
    #[wasm_bindgen(js_name = setIndexInput)]
    pub fn set_index_input(&mut self, slot: u32, values: JsValue) -> JsResult<()> {
        let v = ints_from_js(&values, &format!("index input {slot}"))?;
        self.prog.set_index_input(slot as usize, v).map_err(js_error)
    }
    /// ONNX Gather of node `x` along `axis`: at index input `slot` when slot ≥ 0, else at the
    /// constant `values` (Int32Array | BigInt64Array) of `shape`.
    pub fn gather(&mut self, x: u32, axis: i32, slot: i32, shape: &[u32], values: JsValue) -> JsResult<u32> {
        let idx = if slot >= 0 {
            Indices::Input(slot as usize)
        } else {
            Indices::Const { shape: usize_shape(shape), values: ints_from_js(&values, "gather: indices")? }
        };
        self.build(|p| p.gather(x as usize, i64::from(axis), idx))
    }
    /// ONNX Slice (`has_axes`/`has_steps` false: the defaults).
    #[allow(clippy::too_many_arguments)]
    pub fn slice(&mut self, x: u32, starts: &[f64], ends: &[f64], axes: &[f64], has_axes: bool, steps: &[f64], has_steps: bool) -> JsResult<u32> {
        let (st, en) = (i64s(starts, "slice: starts")?, i64s(ends, "slice: ends")?);
        let ax = if has_axes { Some(i64s(axes, "slice: axes")?) } else { None };
        let sp = if has_steps { Some(i64s(steps, "slice: steps")?) } else { None };
        self.build(|p| p.slice(x as usize, &st, &en, ax.as_deref(), sp.as_deref()))
    }
    /// ONNX Pad, constant mode: pads [b₁…b_r, e₁…e_r].
    pub fn pad(&mut self, x: u32, pads: &[f64], value: f64) -> JsResult<u32> {
        let pads = i64s(pads, "pad: pads")?;
        self.build(|p| p.pad(x as usize, &pads, value))
    }
    /// ONNX Expand (bidirectional broadcast with `shape`).
    pub fn expand(&mut self, x: u32, shape: &[u32]) -> JsResult<u32> {
        self.build(|p| p.expand(x as usize, &usize_shape(shape)))
    }
    /// where(mask, x, y) with a constant mask (one byte per element, non-zero = true) of `mask_shape`.
    #[wasm_bindgen(js_name = whereConst)]
    pub fn where_const(&mut self, mask_shape: &[u32], mask: &[u8], x: u32, y: u32) -> JsResult<u32> {
        let m = hesse_core::mem::try_map(mask, |&b| b != 0, "where: mask").map_err(js_error)?;
        self.build(|p| p.where_const(&usize_shape(mask_shape), &m, x as usize, y as usize))
    }
    /// sum | mean | max over `axes` (all when `all`).
    #[wasm_bindgen(js_name = reduceAxes)]
    pub fn reduce_axes(&mut self, op: &str, x: u32, axes: &[i32], all: bool, keepdims: bool) -> JsResult<u32> {
        let ax: Vec<i64> = axes.iter().map(|&a| i64::from(a)).collect();
        let ax = if all { None } else { Some(ax.as_slice()) };
        let x = x as usize;
        self.build(|p| match op {
            "sum" => p.sum_axes(x, ax, keepdims),
            "mean" => p.mean_axes(x, ax, keepdims),
            "max" => p.max_axes(x, ax, keepdims),
            _ => Err(Error::invalid(format!("unsupported reduction '{op}'"))),
        })
    }
    /// softmax | log_softmax | logsumexp (kept as 1) over `axis`.
    #[wasm_bindgen(js_name = onAxis)]
    pub fn on_axis(&mut self, op: &str, x: u32, axis: i32) -> JsResult<u32> {
        let (x, a) = (x as usize, i64::from(axis));
        self.build(|p| match op {
            "softmax" => p.softmax_axis(x, a),
            "log_softmax" => p.log_softmax_axis(x, a),
            "logsumexp" => p.logsumexp_axis(x, a),
            _ => Err(Error::invalid(format!("unsupported op '{op}'"))),
        })
    }
    /// max | avg pooling of [N, C, H, W]: kernel, stride, pads [top, left, bottom, right],
    /// dilation, ceil mode (and count_include_pad for avg).
    #[allow(clippy::too_many_arguments)]
    pub fn pool2d(&mut self, op: &str, x: u32, kernel: &[u32], stride: &[u32], pads: &[u32], dilation: &[u32], ceil_mode: bool, count_include_pad: bool) -> JsResult<u32> {
        let pair = |v: &[u32], what: &str| -> JsResult<(usize, usize)> {
            match v {
                [a, b] => Ok((*a as usize, *b as usize)),
                _ => Err(js_error(Error::invalid(format!("{op}: {what} needs 2 values, got {}", v.len())))),
            }
        };
        let pads: [usize; 4] = match pads {
            [t, l, b, r] => [*t as usize, *l as usize, *b as usize, *r as usize],
            _ => return Err(js_error(Error::invalid(format!("{op}: pads needs 4 values [top, left, bottom, right], got {}", pads.len())))),
        };
        let p2 = Pool2d { kernel: pair(kernel, "kernel")?, stride: pair(stride, "stride")?, pads, dilation: pair(dilation, "dilation")?, ceil_mode };
        let x = x as usize;
        self.build(|p| match op {
            "max" => p.max_pool2d(x, p2),
            "avg" => p.avg_pool2d(x, p2, count_include_pad),
            "global_avg" => p.global_avg_pool(x),
            _ => Err(Error::invalid(format!("unsupported pooling '{op}'"))),
        })
    }

    /// Stages the flat parameter vector (a Float32Array or Float64Array of the program's dtype),
    /// in place when its buffer exists (no second P-sized allocation).
    #[wasm_bindgen(js_name = setParams)]
    pub fn set_params(&mut self, values: JsValue) -> JsResult<()> {
        fn go<T: JsElement>(s: &mut Staged<T>, v: &JsValue, p: usize) -> JsResult<()> {
            if s.params.len() == p {
                copy_into(v, &mut s.params, "params")
            } else {
                s.params = from_js(v, p, "params")?;
                Ok(())
            }
        }
        let p = self.prog.n_params();
        match &mut self.store {
            Store::F32(s) => go(s, &values, p),
            Store::F64(s) => go(s, &values, p),
        }
    }
    /// Stages the data of input `slot` (into the buffer allocated with the input).
    #[wasm_bindgen(js_name = setInput)]
    pub fn set_input(&mut self, slot: u32, values: JsValue) -> JsResult<()> {
        let slot = slot as usize;
        check_slot(slot, self.prog.n_inputs())?;
        let what = format!("input {slot}");
        match &mut self.store {
            Store::F32(s) => copy_into(&values, &mut s.inputs[slot], &what),
            Store::F64(s) => copy_into(&values, &mut s.inputs[slot], &what),
        }
    }

    /// f at node `out` (the staged parameters and data): { value }.
    pub fn value(&self, out: u32, check_finite: bool) -> JsResult<RunResult> {
        fn go<T: RunElement>(prog: &Program, s: &Staged<T>, out: usize, check_finite: bool) -> JsResult<RunResult> {
            let o = s.run_at(prog, out, Wrt::Params, check_finite, Mode::Value)?;
            result(&[("value", T::to_js(&o.output.p)?)])
        }
        per_dtype!(self, go(out as usize, check_finite))
    }
    /// f and ∇f of the scalar at node `out` with respect to `wrt` (-1: the parameters, else an
    /// input slot): { value, grad }.
    pub fn grad(&self, out: u32, wrt: i32, check_finite: bool) -> JsResult<RunResult> {
        fn go<T: RunElement>(prog: &Program, s: &Staged<T>, out: usize, wrt: Wrt, check_finite: bool) -> JsResult<RunResult> {
            let o = s.run_at(prog, out, wrt, check_finite, Mode::Grad)?;
            result(&[("value", T::to_js(&o.output.p)?), ("grad", T::to_js(&o.grad.expect("reverse sweep ran").p)?)])
        }
        per_dtype!(self, go(out as usize, wrt_of(wrt), check_finite))
    }
    /// f and Jᵀu for an output-shaped cotangent u (a typed array): { value, grad }.
    pub fn vjp(&self, out: u32, wrt: i32, cotangent: JsValue, check_finite: bool) -> JsResult<RunResult> {
        fn go<T: RunElement>(prog: &Program, s: &Staged<T>, out: usize, wrt: Wrt, cotangent: &JsValue, check_finite: bool) -> JsResult<RunResult> {
            let u: Vec<T> = any_from_js(cotangent, "cotangent")?;
            let o = s.run_at(prog, out, wrt, check_finite, Mode::Vjp { cotangent: &u })?;
            drop(u);
            result(&[("value", T::to_js(&o.output.p)?), ("grad", T::to_js(&o.grad.expect("reverse sweep ran").p)?)])
        }
        per_dtype!(self, go(out as usize, wrt_of(wrt), &cotangent, check_finite))
    }
    /// f and J·v₁ … J·v_K for K directions `tangents` [K, n] (a typed array): { value, tangents }
    /// ([K, numel(output)]).
    pub fn jvp(&self, out: u32, wrt: i32, tangents: JsValue, k: u32, check_finite: bool) -> JsResult<RunResult> {
        fn go<T: RunElement>(prog: &Program, s: &Staged<T>, out: usize, wrt: Wrt, tangents: &JsValue, k: usize, check_finite: bool) -> JsResult<RunResult> {
            let v: Vec<T> = if k == 0 { Vec::new() } else { any_from_js(tangents, "tangents")? };
            let o = s.run_at(prog, out, wrt, check_finite, Mode::Jvp { tangents: &v, k })?;
            drop(v);
            let t = o.output.t.as_deref().unwrap_or(&[]);
            result(&[("value", T::to_js(&o.output.p)?), ("tangents", T::to_js(t)?)])
        }
        per_dtype!(self, go(out as usize, wrt_of(wrt), &tangents, k as usize, check_finite))
    }
    /// f and C·v₁ … C·v_K (forward-over-reverse) for K directions `tangents` [K, n] and the
    /// curvature C: { value, products } ([K, n]). The gradient is not copied back (a large one
    /// nobody reads costs a measurable copy; `grad` gives it).
    pub fn hvp(&self, out: u32, wrt: i32, tangents: JsValue, k: u32, curvature: &RawCurvature, check_finite: bool) -> JsResult<RunResult> {
        #[allow(clippy::too_many_arguments)]
        fn go<T: RunElement>(prog: &Program, s: &Staged<T>, out: usize, wrt: Wrt, tangents: &JsValue, k: usize, curvature: Curvature, check_finite: bool) -> JsResult<RunResult> {
            let v: Vec<T> = if k == 0 { Vec::new() } else { any_from_js(tangents, "tangents")? };
            let o = s.run_at(prog, out, wrt, check_finite, Mode::Hvp { tangents: &v, k, cotangent: None, curvature })?;
            drop(v);
            let g = o.grad.expect("reverse sweep ran");
            // With K > 0 a gradient without tangents has zero ones (no node carried any): K·n
            // zeros, made in JS (no wasm allocation).
            let products = match &g.t {
                Some(t) => T::to_js(t)?,
                None => T::zeros_js(g.p.len() * k)?,
            };
            result(&[("value", T::to_js(&o.output.p)?), ("products", products)])
        }
        per_dtype!(self, go(out as usize, wrt_of(wrt), &tangents, k as usize, curvature.inner, check_finite))
    }
}

#[wasm_bindgen]
impl RawProgram {
    /// The explicit Gauss–Newton matrix of the staged data and parameters, by SIMD SYRK of
    /// A = [M₁ᵀ … M_Nᵀ]: `part` is "dense" (P×P), "diagonal" (P) or "blocks" (the diagonal blocks
    /// of the (offset, size) pairs in `ranges`, concatenated). `f` is the network output node,
    /// `loss` its loss (mse | cross_entropy | bce_with_logits), `chunk` the tangents per pass.
    /// With `mc_samples` > 0, the Monte Carlo estimate (labels drawn from the model, `mc_seed`).
    #[allow(clippy::too_many_arguments)]
    #[wasm_bindgen(js_name = gaussNewton)]
    pub fn gauss_newton(&self, f: u32, loss: &str, part: &str, chunk: u32, ranges: &[u32], mc_samples: u32, mc_seed: f64, f64_accumulate: bool) -> JsResult<JsValue> {
        let mc = (mc_samples > 0).then_some((mc_samples as usize, mc_seed as u64));
        let kind = LossKind::parse(loss).map_err(js_error)?;
        let part = match part {
            "dense" => GaussNewtonPart::Dense,
            "diagonal" => GaussNewtonPart::Diagonal,
            "blocks" if ranges.len().is_multiple_of(2) => GaussNewtonPart::Blocks(ranges.chunks_exact(2).map(|r| (r[0] as usize, r[1] as usize)).collect()),
            "blocks" => return Err(js_error(Error::invalid(format!("Gauss–Newton blocks: ranges must be (offset, size) pairs, got {} numbers", ranges.len())))),
            other => return Err(js_error(Error::invalid(format!("unknown Gauss–Newton part '{other}': use dense, diagonal or blocks")))),
        };
        let (f, chunk) = (f as usize, chunk as usize);
        match (&self.store, f64_accumulate) {
            (Store::F32(s), false) => {
                let inputs = s.input_slices()?;
                f32::to_js(&self.prog.gauss_newton_with(crate::isa(), f, kind, &s.params, &inputs, chunk, &part, mc).map_err(js_error)?)
            }
            (Store::F32(s), true) => {
                let inputs = s.input_slices()?;
                f64::to_js(&self.prog.gauss_newton_f64(crate::isa(), f, kind, &s.params, &inputs, chunk, &part, mc).map_err(js_error)?)
            }
            (Store::F64(s), _) => {
                let inputs = s.input_slices()?;
                f64::to_js(&self.prog.gauss_newton_with(crate::isa(), f, kind, &s.params, &inputs, chunk, &part, mc).map_err(js_error)?)
            }
        }
    }
}

#[wasm_bindgen]
impl RawProgram {
    /// Jᵀ of node `f` with respect to the parameters at the staged point (P × numel(f),
    /// row-major), by forward or reverse mode, whichever needs fewer directions.
    #[wasm_bindgen(js_name = jacobianT)]
    pub fn jacobian_t(&self, f: u32, chunk: u32) -> JsResult<JsValue> {
        fn go<T: JsElement + hesse_core::kernels::lanes::HasLanes>(prog: &Program, s: &Staged<T>, f: usize, chunk: usize) -> JsResult<JsValue> {
            let inputs = s.input_slices()?;
            T::to_js(&prog.jacobian_t(crate::isa(), f, &s.params, &inputs, chunk).map_err(js_error)?)
        }
        match &self.store {
            Store::F32(s) => go(&self.prog, s, f as usize, chunk as usize),
            Store::F64(s) => go(&self.prog, s, f as usize, chunk as usize),
        }
    }
}

/// What the products of an `hvp` run (and a curvature operator) are, validated once when made:
/// the Hessian, or the GGN / empirical Fisher / Monte Carlo Fisher with the network output at
/// node `output`.
#[wasm_bindgen]
pub struct RawCurvature {
    pub(crate) inner: Curvature,
}

/// The largest integer every f64 holds exactly: a seed beyond it could not have been meant.
const MAX_SEED: f64 = 9_007_199_254_740_992.0; // 2⁵³

#[wasm_bindgen]
impl RawCurvature {
    /// H·v, forward-over-reverse through the whole program.
    pub fn hessian() -> RawCurvature {
        RawCurvature { inner: Curvature::Hessian }
    }
    /// G·v with G = Jᵀ Hℓ J, J the Jacobian of node `output`.
    pub fn ggn(output: u32) -> RawCurvature {
        RawCurvature { inner: Curvature::Ggn { output: output as usize } }
    }
    /// The empirical Fisher at node `output`.
    pub fn fisher(output: u32) -> RawCurvature {
        RawCurvature { inner: Curvature::EmpiricalFisher { output: output as usize } }
    }
    /// The Monte Carlo Fisher at node `output`: `samples` labels per sample drawn for the
    /// likelihood of `loss` (mse | cross_entropy | bce_with_logits) from the PRNG seeded with
    /// `seed` (an integer in [0, 2⁵³]).
    #[wasm_bindgen(js_name = mcFisher)]
    pub fn mc_fisher(output: u32, loss: &str, samples: u32, seed: f64) -> JsResult<RawCurvature> {
        let kind = LossKind::parse(loss).map_err(js_error)?;
        if !(seed.fract() == 0.0 && (0.0..=MAX_SEED).contains(&seed)) {
            return Err(js_error(Error::invalid(format!("Monte Carlo Fisher: the seed must be an integer in [0, 2^53], got {seed}"))));
        }
        Ok(RawCurvature { inner: Curvature::MonteCarloFisher { output: output as usize, kind, samples: samples as usize, seed: seed as u64 } })
    }
}

#[wasm_bindgen(typescript_custom_section)]
const RUN_RESULT: &'static str = r#"
/** What a run of a RawProgram returns: the output's values, and per mode the output tangents
 * (jvp), the gradient (grad, vjp) or the K curvature products (hvp), typed arrays of its dtype. */
export interface RunResult {
  value: Float32Array | Float64Array;
  tangents?: Float32Array | Float64Array;
  grad?: Float32Array | Float64Array;
  products?: Float32Array | Float64Array;
}
"#;

#[wasm_bindgen]
extern "C" {
    /// A JS object of the `RunResult` shape above.
    #[wasm_bindgen(typescript_type = "RunResult")]
    pub type RunResult;
}

/// A `RunResult` of (field, typed array) pairs.
fn result(fields: &[(&str, JsValue)]) -> JsResult<RunResult> {
    use wasm_bindgen::JsCast;
    let o = js_sys::Object::new();
    for (k, v) in fields {
        js_sys::Reflect::set(&o, &(*k).into(), v)?;
    }
    Ok(o.unchecked_into())
}

/// -1: the parameters; else the input slot.
fn wrt_of(wrt: i32) -> Wrt {
    if wrt < 0 {
        Wrt::Params
    } else {
        Wrt::Input(wrt as usize)
    }
}

/// The element types a program runs in, as JS typed arrays.
trait RunElement: JsElement + hesse_core::kernels::lanes::HasLanes {}
impl<T: JsElement + hesse_core::kernels::lanes::HasLanes> RunElement for T {}


/// Appends a zero buffer of `n` values for a new input slot.
pub(crate) fn stage<T: hesse_core::real::Real>(inputs: &mut Vec<Vec<T>>, n: usize) -> hesse_core::Result<()> {
    hesse_core::mem::try_reserve(inputs, 1, "staged inputs")?;
    inputs.push(try_zeros(n, "staged input")?);
    Ok(())
}
