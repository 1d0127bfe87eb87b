//! K-FAC bindings: the factors of every linear and conv2d layer as one handle, applied
//! block-diagonally to full parameter vectors (entries outside the K-FAC layers map to zero),
//! and the parameter blocks no layer covers. Also the loss's rows view (the curvature split
//! point of an objective: `lossRows`).

use crate::js::{any_from_js, f64s};
use crate::program::{RawProgram, Staged, Store};
use crate::{js_error, JsResult};
use hesse_core::autodiff::kfac::KfacInverse;
use hesse_core::autodiff::{KfacFactors, KfacVariant, LossKind, Program};
use hesse_core::{Error, ErrorCode};
use wasm_bindgen::prelude::*;

#[wasm_bindgen]
pub struct RawKfac {
    factors: Vec<KfacFactors>,
    /// (offset, size) of the parameter blocks no K-FAC layer covers.
    uncovered: Vec<(usize, usize)>,
    n_params: usize,
    inverse: Option<(f64, Vec<KfacInverse>)>,
}

#[wasm_bindgen]
impl RawProgram {
    /// K-FAC factors at the staged point: `variant` "exact" or "mc" (`samples`, `seed`).
    pub fn kfac(&self, f: u32, loss: &str, variant: &str, samples: u32, seed: f64) -> JsResult<RawKfac> {
        let kind = LossKind::parse(loss).map_err(js_error)?;
        let variant = match variant {
            "exact" => KfacVariant::Exact,
            "mc" => KfacVariant::MonteCarlo { samples: samples as usize, seed: seed as u64 },
            other => return Err(js_error(Error::invalid(format!("unknown K-FAC variant '{other}': use exact or mc")))),
        };
        fn go<T: hesse_core::autodiff::dual::Scalar>(prog: &Program, s: &Staged<T>, f: usize, kind: LossKind, variant: KfacVariant) -> JsResult<Vec<KfacFactors>> {
            let inputs = s.input_slices()?;
            prog.kfac(crate::isa(), f, kind, &s.params, &inputs, variant).map_err(js_error)
        }
        let factors = match &self.store {
            Store::F32(s) => go(&self.prog, s, f as usize, kind, variant)?,
            Store::F64(s) => go(&self.prog, s, f as usize, kind, variant)?,
        };
        let uncovered = self.prog.kfac_layers(f as usize).map_err(js_error)?.uncovered;
        Ok(RawKfac { factors, uncovered, n_params: self.prog.n_params(), inverse: None })
    }

    /// The rows view of loss `kind` on (pred, target) (`Program::loss_rows`): [pred as [R, C],
    /// target as rows], the node to build the loss on and to take curvature at. Adds at most
    /// four shape nodes, all or nothing. `class_axis`: cross-entropy's class axis (NumPy-style),
    /// or undefined to infer it from the shapes.
    #[wasm_bindgen(js_name = lossRows)]
    pub fn loss_rows(&mut self, kind: &str, pred: u32, target: u32, class_axis: Option<i32>) -> JsResult<Vec<u32>> {
        let kind = LossKind::parse(kind).map_err(js_error)?;
        let mark = self.prog.mark();
        match self.prog.loss_rows_with(kind, pred as usize, target as usize, class_axis.map(i64::from)) {
            Ok((p, t)) => Ok(vec![p as u32, t as u32]),
            Err(e) => {
                self.prog.rollback(mark);
                Err(js_error(e))
            }
        }
    }
}

impl RawKfac {
    fn check(&self, v: &[f64]) -> JsResult<()> {
        if v.len() != self.n_params {
            return Err(js_error(Error::new(ErrorCode::LengthMismatch, format!("K-FAC: expected a vector of the {} parameters, got {}", self.n_params, v.len()))));
        }
        Ok(())
    }
    /// Applies `f` to each layer's slice of v (a Float64Array of P values), writing into the
    /// same slice of the result (a Float64Array).
    fn per_layer(&self, v: &JsValue, f: impl Fn(usize, &[f64]) -> hesse_core::Result<Vec<f64>>) -> JsResult<JsValue> {
        let v = any_from_js::<f64>(v, "K-FAC")?;
        self.check(&v)?;
        let mut out = hesse_core::mem::try_zeros(v.len(), "K-FAC product").map_err(js_error)?;
        for (i, k) in self.factors.iter().enumerate() {
            let r = k.gather(&v).and_then(|layer| f(i, &layer)).map_err(js_error)?;
            k.scatter(&r, &mut out).map_err(js_error)?;
        }
        f64s(&out)
    }
}

#[wasm_bindgen]
impl RawKfac {
    /// Per layer: { layer, kind, a, b, dIn, dOut, hasBias, offset, biasOffset (-1: none),
    /// weightTransposed, size }.
    pub fn layers(&self) -> JsResult<js_sys::Array> {
        self.factors
            .iter()
            .map(|k| {
                let o = js_sys::Object::new();
                for (key, val) in [
                    ("layer", JsValue::from(k.layer as f64)),
                    ("kind", JsValue::from(if k.kind == hesse_core::autodiff::program::LayerKind::Conv2d { "conv2d" } else { "linear" })),
                    ("a", f64s(&k.a)?),
                    ("b", f64s(&k.b)?),
                    ("dIn", (k.d_in as f64).into()),
                    ("dOut", (k.d_out as f64).into()),
                    ("hasBias", k.has_bias.into()),
                    ("offset", (k.weight_offset as f64).into()),
                    ("biasOffset", k.bias_offset.map_or(-1.0, |b| b as f64).into()),
                    ("weightTransposed", k.weight_transposed.into()),
                    ("size", (k.size() as f64).into()),
                ] {
                    let _ = js_sys::Reflect::set(&o, &key.into(), &val);
                }
                Ok(JsValue::from(o))
            })
            .collect()
    }
    /// The parameter blocks no K-FAC layer covers, as (offset, size) pairs, flat.
    pub fn uncovered(&self) -> Vec<u32> {
        self.uncovered.iter().flat_map(|&(o, s)| [o as u32, s as u32]).collect()
    }
    /// Block-diagonal (B ⊗ A)·v over the K-FAC layers.
    pub fn mvp(&self, v: JsValue) -> JsResult<JsValue> {
        self.per_layer(&v, |i, s| self.factors[i].mvp(s))
    }
    /// Block-diagonal (B ⊗ A + λI)⁻¹·v (the eigendecompositions are kept for the last λ).
    #[wasm_bindgen(js_name = inverseApply)]
    pub fn inverse_apply(&mut self, v: JsValue, damping: f64) -> JsResult<JsValue> {
        if self.inverse.as_ref().map(|(d, _)| *d) != Some(damping) {
            let inv = self.factors.iter().map(|k| k.inverse(damping)).collect::<Result<Vec<_>, _>>().map_err(js_error)?;
            self.inverse = Some((damping, inv));
        }
        let inv = &self.inverse.as_ref().expect("just set").1;
        self.per_layer(&v, |i, s| inv[i].apply(s))
    }
}

/// Batching (ts/objective.ts with `batchSize`; kept in its own block): the factors of a dataset
/// accumulated from those of its batches. Each batch's factors are those of its own mean loss, so
/// with weights wᵢ = Bᵢ/N both combine linearly: Σᵢ wᵢ·Aᵢ = (1/N) Σₙ āₙāₙᵀ (A is a mean over
/// samples) and Σᵢ wᵢ·Bᵢ = the full data's B (B is a sum whose backpropagated g carry the mean
/// loss's 1/√Bᵢ, so Bᵢ = (1/Bᵢ)·Σₙ∈ᵢ (per-sample terms)).
#[wasm_bindgen]
impl RawKfac {
    /// A ← w·A and B ← w·B in every layer (the first batch's weight).
    pub fn scale(&mut self, weight: f64) {
        for k in &mut self.factors {
            k.a.iter_mut().chain(k.b.iter_mut()).for_each(|x| *x *= weight);
        }
        self.inverse = None;
    }
    /// A ← A + w·A_other and B ← B + w·B_other in every layer; `other` must come from the same
    /// model (same layers and factor sizes), else INVALID_ARGUMENT and nothing changes.
    #[wasm_bindgen(js_name = addScaled)]
    pub fn add_scaled(&mut self, other: &RawKfac, weight: f64) -> JsResult<()> {
        let same = self.factors.len() == other.factors.len()
            && self.factors.iter().zip(&other.factors).all(|(s, o)| {
                (s.layer, s.d_in, s.d_out, s.has_bias, s.weight_offset) == (o.layer, o.d_in, o.d_out, o.has_bias, o.weight_offset) && s.a.len() == o.a.len() && s.b.len() == o.b.len()
            });
        if !same {
            return Err(js_error(Error::invalid("K-FAC addScaled: the two sets of factors are of different layers (not the same model)")));
        }
        for (s, o) in self.factors.iter_mut().zip(&other.factors) {
            s.a.iter_mut().zip(&o.a).for_each(|(x, &y)| *x += weight * y);
            s.b.iter_mut().zip(&o.b).for_each(|(x, &y)| *x += weight * y);
        }
        self.inverse = None;
        Ok(())
    }
}
