//! Numbers across the JS boundary without traps: typed arrays are copied into fallibly allocated
//! Rust buffers (never a wasm-bindgen `&[T]` argument, whose allocation aborts when memory is
//! full), and results are created as JS typed arrays through constructors that report a thrown
//! RangeError (an exception crossing Rust frames would leave the handle's borrow flag set and
//! make every later call a "recursive use" error).

use crate::{js_error, JsResult};
use hesse_core::tensor::Element;
use hesse_core::{Dtype, Error, ErrorCode};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

#[wasm_bindgen]
extern "C" {
    /// The global Float32Array class, imported with a constructor that catches.
    #[wasm_bindgen(js_name = Float32Array)]
    type NewF32;
    #[wasm_bindgen(catch, constructor, js_class = "Float32Array")]
    fn new(len: u32) -> Result<NewF32, JsValue>;
    /// The global Float64Array class, likewise.
    #[wasm_bindgen(js_name = Float64Array)]
    type NewF64;
    #[wasm_bindgen(catch, constructor, js_class = "Float64Array")]
    fn new(len: u32) -> Result<NewF64, JsValue>;
}

fn js_oom(n: usize, kind: &str) -> JsValue {
    js_error(Error::new(ErrorCode::OutOfMemory, format!("cannot allocate a {kind} of {n} values in JavaScript")))
}

/// Element types with a matching JS typed array.
pub(crate) trait JsElement: Element {
    const ARRAY: &'static str;
    /// The length of `v` if it is a typed array of this element type.
    fn js_len(v: &JsValue) -> Option<usize>;
    /// Copies the typed array `v` (exactly `dst.len()` values, checked by the caller) into `dst`.
    fn js_copy(v: &JsValue, dst: &mut [Self]);
    /// A new typed array holding a copy of `v`.
    fn to_js(v: &[Self]) -> JsResult<JsValue>;
    /// A new typed array of `n` zeros.
    fn zeros_js(n: usize) -> JsResult<JsValue>;
}

macro_rules! js_element {
    ($t:ty, $arr:ty, $new:path, $name:literal) => {
        impl JsElement for $t {
            const ARRAY: &'static str = $name;
            fn js_len(v: &JsValue) -> Option<usize> {
                v.dyn_ref::<$arr>().map(|a| a.length() as usize)
            }
            fn js_copy(v: &JsValue, dst: &mut [$t]) {
                v.unchecked_ref::<$arr>().copy_to(dst);
            }
            fn to_js(v: &[$t]) -> JsResult<JsValue> {
                let a = Self::zeros_js(v.len())?;
                a.unchecked_ref::<$arr>().copy_from(v);
                Ok(a)
            }
            fn zeros_js(n: usize) -> JsResult<JsValue> {
                let len = u32::try_from(n).map_err(|_| js_oom(n, $name))?;
                $new(len).map(JsValue::from).map_err(|_| js_oom(n, $name))
            }
        }
    };
}
js_element!(f32, js_sys::Float32Array, NewF32::new, "Float32Array");
js_element!(f64, js_sys::Float64Array, NewF64::new, "Float64Array");

/// Checks that `v` is a typed array of `T` with exactly `n` values (`what` names it).
fn check<T: JsElement>(v: &JsValue, n: usize, what: &str) -> JsResult<()> {
    let len = T::js_len(v).ok_or_else(|| {
        let dtype = if T::DTYPE == Dtype::F32 { "float32" } else { "float64" };
        js_error(Error::new(ErrorCode::DtypeMismatch, format!("{what}: expected a {} (the {dtype} values)", T::ARRAY)))
    })?;
    if len != n {
        return Err(js_error(Error::new(ErrorCode::LengthMismatch, format!("{what}: expected {n} values, got {len}"))));
    }
    Ok(())
}

/// A copy of the typed array `v`, which must hold exactly `n` values.
pub(crate) fn from_js<T: JsElement>(v: &JsValue, n: usize, what: &str) -> JsResult<Vec<T>> {
    check::<T>(v, n, what)?;
    let mut out = hesse_core::mem::try_zeros::<T>(n, what).map_err(js_error)?;
    T::js_copy(v, &mut out);
    Ok(out)
}

/// Copies the typed array `v` into `dst` (same length), with no allocation.
pub(crate) fn copy_into<T: JsElement>(v: &JsValue, dst: &mut [T], what: &str) -> JsResult<()> {
    check::<T>(v, dst.len(), what)?;
    T::js_copy(v, dst);
    Ok(())
}

/// A copy of a typed array of any length (`what` names it).
pub(crate) fn any_from_js<T: JsElement>(v: &JsValue, what: &str) -> JsResult<Vec<T>> {
    let n = T::js_len(v).unwrap_or(0);
    from_js(v, n, what)
}

/// A Float64Array of a copy of `v`.
pub(crate) fn f64s(v: &[f64]) -> JsResult<JsValue> {
    f64::to_js(v)
}
