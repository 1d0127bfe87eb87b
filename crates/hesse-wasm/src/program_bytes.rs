//! Programs as bytes (hesse-core's autodiff/serialize.rs): a worker rebuilds the program the
//! main thread traced, and splices a serialized model into the objective it builds. No math.

use crate::program::{stage, RawProgram};
use crate::{js_error, JsResult};
use hesse_core::autodiff::Program;
use wasm_bindgen::prelude::*;

#[wasm_bindgen]
impl RawProgram {
    /// The program (nodes, constants, index inputs and their staged values, layer records) as
    /// bytes; staged parameters and float inputs are not part of it.
    #[wasm_bindgen(js_name = toBytes)]
    pub fn to_bytes(&self) -> JsResult<Vec<u8>> {
        self.prog.to_bytes().map_err(js_error)
    }

    /// The program `toBytes` wrote, of `dtype`, with zeros staged for its inputs and parameters.
    /// Corrupt or truncated bytes: INVALID_ARGUMENT.
    #[wasm_bindgen(js_name = fromBytes)]
    pub fn from_bytes(bytes: &[u8], dtype: &str) -> JsResult<RawProgram> {
        let mut raw = RawProgram::new(dtype)?;
        raw.prog = Program::from_bytes(bytes).map_err(js_error)?;
        raw.fits().map_err(js_error)?;
        for slot in 0..raw.prog.n_inputs() {
            let n = raw.prog.input_shape(slot).map_or(0, |s| s.iter().product());
            match &mut raw.store {
                crate::program::Store::F32(s) => stage(&mut s.inputs, n),
                crate::program::Store::F64(s) => stage(&mut s.inputs, n),
            }
            .map_err(js_error)?;
        }
        Ok(raw)
    }

    /// Records `sub`'s nodes up to `out` (a model applied to its input) here, applied to node
    /// `x` (or, with `xIsIndex`, to index input slot `x`); returns the node of `out` here.
    /// All or nothing (Program::splice).
    pub fn splice(&mut self, sub: &RawProgram, out: u32, x: u32, x_is_index: bool) -> JsResult<u32> {
        let (xf, xi) = if x_is_index { (None, Some(x as usize)) } else { (Some(x as usize), None) };
        self.build(|p| p.splice(&sub.prog, out as usize, xf, xi))
    }
}
