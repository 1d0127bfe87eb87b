//! wasm-bindgen bindings of hesse-core: tensor handles, op entry points, error mapping.
//! No math lives here. Data never crosses as a wasm-bindgen slice (whose allocation failure
//! would abort the instance): JS asks for a zeroed tensor (a fallible allocation that reports
//! OUT_OF_MEMORY) and copies into it through a typed-array view of wasm memory at `dataPtr`.

use hesse_core::kernels::{Binary, Isa, Reduce, Unary};
use hesse_core::ops::{self, GemmOptions};
use hesse_core::tensor::Data;
use hesse_core::{Dtype, Error, ErrorCode, Tensor};
use std::cell::Cell;
use wasm_bindgen::prelude::*;

mod alloc;
mod js;
mod kfac;
mod iteration;
mod linalg;
mod program;
mod program_bytes;
pub use program::RawProgram;

#[global_allocator]
static ALLOCATOR: alloc::Counting = alloc::Counting;

thread_local! {
    /// Kernel family used by every op (switchable for tests and benchmarks).
    static ISA: Cell<Isa> = const { Cell::new(Isa::Simd) };
    /// Live tensor handles and their bytes, so leaks are observable from JS.
    static LIVE: Cell<(u32, f64)> = const { Cell::new((0, 0.0)) };
}

/// A core error as a JS `Error` with a `code` property; the TS layer rethrows it as HesseError.
pub(crate) fn js_error(e: Error) -> JsValue {
    let err = js_sys::Error::new(&e.message);
    let _ = js_sys::Reflect::set(&err, &"code".into(), &e.code.as_str().into());
    err.into()
}

pub(crate) type JsResult<T> = Result<T, JsValue>;

pub(crate) fn isa() -> Isa {
    ISA.with(Cell::get)
}

fn usize_shape(shape: &[u32]) -> Vec<usize> {
    shape.iter().map(|&d| d as usize).collect()
}

/// A tensor owned by Rust; JS holds it through the `Tensor` class, which disposes it.
#[wasm_bindgen]
pub struct RawTensor {
    t: Tensor,
}

impl RawTensor {
    fn wrap(t: Tensor) -> RawTensor {
        LIVE.with(|l| {
            let (n, b) = l.get();
            l.set((n + 1, b + t.nbytes() as f64))
        });
        RawTensor { t }
    }
}

impl Drop for RawTensor {
    fn drop(&mut self) {
        let bytes = self.t.nbytes() as f64;
        LIVE.with(|l| {
            let (n, b) = l.get();
            l.set((n - 1, b - bytes))
        });
    }
}

#[wasm_bindgen]
impl RawTensor {
    /// A zero tensor of `shape` and `dtype` ("float32" | "float64").
    pub fn zeros(shape: &[u32], dtype: &str) -> JsResult<RawTensor> {
        let dt = Dtype::parse(dtype).map_err(js_error)?;
        Tensor::zeros(&usize_shape(shape), dt).map(RawTensor::wrap).map_err(js_error)
    }
    pub fn shape(&self) -> Vec<u32> {
        self.t.shape().iter().map(|&d| d as u32).collect()
    }
    pub fn dtype(&self) -> String {
        self.t.dtype().name().to_string()
    }
    pub fn size(&self) -> u32 {
        self.t.len() as u32
    }
    /// Byte offset of the elements in wasm memory (valid until the next call that may allocate).
    #[wasm_bindgen(js_name = dataPtr)]
    pub fn data_ptr(&mut self) -> u32 {
        match self.t.data_mut() {
            Data::F32(v) => v.as_mut_ptr() as u32,
            Data::F64(v) => v.as_mut_ptr() as u32,
        }
    }
    pub fn reshape(&self, shape: &[u32]) -> JsResult<RawTensor> {
        self.t.reshape(&usize_shape(shape)).map(RawTensor::wrap).map_err(js_error)
    }
    pub fn astype(&self, dtype: &str) -> JsResult<RawTensor> {
        let dt = Dtype::parse(dtype).map_err(js_error)?;
        ops::astype(&self.t, dt).map(RawTensor::wrap).map_err(js_error)
    }
}

fn wrap(r: hesse_core::Result<Tensor>) -> JsResult<RawTensor> {
    r.map(RawTensor::wrap).map_err(js_error)
}

fn unknown(kind: &str, name: &str) -> JsValue {
    js_error(Error::new(ErrorCode::InvalidArgument, format!("unknown {kind} '{name}'")))
}

#[wasm_bindgen]
pub fn unary(op: &str, x: &RawTensor) -> JsResult<RawTensor> {
    let op = match op {
        "neg" => Unary::Neg,
        "abs" => Unary::Abs,
        "square" => Unary::Square,
        "sqrt" => Unary::Sqrt,
        "relu" => Unary::Relu,
        "exp" => Unary::Exp,
        "log" => Unary::Log,
        "tanh" => Unary::Tanh,
        "sigmoid" => Unary::Sigmoid,
        _ => return Err(unknown("unary op", op)),
    };
    wrap(ops::unary(isa(), op, &x.t))
}

#[wasm_bindgen]
pub fn binary(op: &str, a: &RawTensor, b: &RawTensor) -> JsResult<RawTensor> {
    let op = match op {
        "add" => Binary::Add,
        "sub" => Binary::Sub,
        "mul" => Binary::Mul,
        "div" => Binary::Div,
        "maximum" => Binary::Maximum,
        "minimum" => Binary::Minimum,
        _ => return Err(unknown("binary op", op)),
    };
    wrap(ops::binary(isa(), op, &a.t, &b.t))
}

/// Reduction along `axis` (all axes when undefined).
#[wasm_bindgen]
pub fn reduce(op: &str, x: &RawTensor, axis: Option<i32>, keepdims: bool) -> JsResult<RawTensor> {
    let axis = axis.map(i64::from);
    match op {
        "sum" => wrap(ops::reduce(isa(), Reduce::Sum, &x.t, axis, keepdims)),
        "max" => wrap(ops::reduce(isa(), Reduce::Max, &x.t, axis, keepdims)),
        "logsumexp" => wrap(ops::reduce(isa(), Reduce::LogSumExp, &x.t, axis, keepdims)),
        "mean" => wrap(ops::mean(isa(), &x.t, axis, keepdims)),
        _ => Err(unknown("reduction", op)),
    }
}

/// α·op(A)·op(B).
#[wasm_bindgen]
pub fn gemm(a: &RawTensor, b: &RawTensor, trans_a: bool, trans_b: bool, alpha: f64) -> JsResult<RawTensor> {
    wrap(ops::gemm(isa(), &a.t, &b.t, None, GemmOptions { trans_a, trans_b, alpha, beta: 0.0 }))
}

/// α·op(A)·op(B) + β·C (a new tensor; C is not modified).
#[wasm_bindgen(js_name = gemmAccumulate)]
pub fn gemm_accumulate(a: &RawTensor, b: &RawTensor, c: &RawTensor, trans_a: bool, trans_b: bool, alpha: f64, beta: f64) -> JsResult<RawTensor> {
    wrap(ops::gemm(isa(), &a.t, &b.t, Some(&c.t), GemmOptions { trans_a, trans_b, alpha, beta }))
}

#[wasm_bindgen]
pub fn transpose(x: &RawTensor) -> JsResult<RawTensor> {
    wrap(ops::transpose(&x.t))
}

/// conv2d with `attrs` [strideH, strideW, top, left, bottom, right, dilationH, dilationW, groups].
#[wasm_bindgen]
pub fn conv2d(x: &RawTensor, w: &RawTensor, attrs: &[u32]) -> JsResult<RawTensor> {
    wrap(ops::conv2d(isa(), &x.t, &w.t, conv_attrs(attrs)?))
}

/// The nine conv2d attributes as [`hesse_core::kernels::ConvAttrs`] (the TS side validated them).
pub(crate) fn conv_attrs(a: &[u32]) -> JsResult<hesse_core::kernels::ConvAttrs> {
    let u = |i: usize| a[i] as usize;
    if a.len() != 9 {
        return Err(js_error(Error::invalid(format!("conv2d: expected 9 attributes (stride 2, pads 4, dilation 2, groups), got {}", a.len()))));
    }
    Ok(hesse_core::kernels::ConvAttrs { stride: (u(0), u(1)), pads: [u(2), u(3), u(4), u(5)], dilation: (u(6), u(7)), groups: u(8) })
}

/// Selects the kernel family for all later ops: "simd" (default) or "scalar" (the reference).
#[wasm_bindgen(js_name = setKernels)]
pub fn set_kernels(name: &str) -> JsResult<()> {
    let isa = Isa::parse(name).ok_or_else(|| unknown("kernel family (use 'simd' or 'scalar')", name))?;
    ISA.with(|c| c.set(isa));
    Ok(())
}

#[wasm_bindgen(js_name = getKernels)]
pub fn get_kernels() -> String {
    match isa() {
        Isa::Simd => "simd".into(),
        Isa::Scalar => "scalar".into(),
    }
}

/// [live tensor handles, their bytes].
#[wasm_bindgen(js_name = liveTensors)]
pub fn live_tensors() -> Vec<f64> {
    let (n, b) = LIVE.with(Cell::get);
    vec![n as f64, b]
}

/// [current, peak] heap bytes since the last `resetHeapPeak` (peak memory of a workload), and 1
/// while the allocator's emergency reserve is in use (memory ran out and has not recovered).
#[wasm_bindgen(js_name = heapStats)]
pub fn heap_stats() -> Vec<f64> {
    let (now, peak) = alloc::stats();
    vec![now as f64, peak as f64, f64::from(u8::from(alloc::reserve_in_use()))]
}

#[wasm_bindgen(js_name = resetHeapPeak)]
pub fn reset_heap_peak() {
    alloc::reset_peak()
}

/// The module's linear memory (for typed-array views of tensor data).
#[wasm_bindgen(js_name = wasmMemory)]
pub fn wasm_memory() -> JsValue {
    wasm_bindgen::memory()
}
