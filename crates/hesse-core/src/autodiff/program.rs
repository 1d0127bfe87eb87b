//! Programs: a traced function as a list of nodes (op, inputs, shape), built once and run many
//! times in the modes of [`Mode`], from one forward and at most one reverse sweep:
//!
//! | mode  | forward on     | reverse sweep seeded with   | result                                 |
//! |-------|----------------|-----------------------------|----------------------------------------|
//! | Value | plain          | none                        | f                                      |
//! | Jvp   | duals (K tan.) | none                        | f, J·v₁…J·v_K                          |
//! | Grad  | plain          | 1 (scalar f)                | f, ∇f                                  |
//! | Vjp   | plain          | u                           | f, Jᵀu                                 |
//! | Vjps  | plain          | 0 with K tangents u₁…u_K    | f, Jᵀu₁…Jᵀu_K (as ∇'s tangents)        |
//! | Hvp   | duals (K tan.) | duals (1 or u)              | f, ∇f, C·v₁…C·v_K (forward-over-reverse)|
//!
//! A run is a composition of phases ([`Program::run`]): `check` the request, the `forward`
//! sweep, then for the modes with a reverse sweep the curvature `cut` (prepared from the forward
//! values: the GGN or a Fisher replaces the loss's curvature at the network output) and the
//! `reverse` sweep, which applies the cut when it reaches that node.
//!
//! The variable being differentiated is either the flat parameter vector (every `Param` node is a
//! slice of it) or one data input.

use super::dual::{self, Ctx, Dual, Scalar};
use super::linearization::Tape;
use super::op::Op;
use crate::error::{fmt_shape, Error, ErrorCode, Result};
use crate::kernels::Isa;
use crate::mem::{product, try_copy, try_map, try_reserve, try_vec, try_zeros};
use crate::shape::numel;

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Node {
    pub op: Op,
    pub ins: Vec<usize>,
    pub shape: Vec<usize>,
}

/// What the derivatives are taken with respect to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wrt {
    /// The flat parameter vector (P values, in the order `Param` nodes were created).
    Params,
    /// The data input of this slot.
    Input(usize),
}

#[derive(Clone, Debug, Default)]
pub struct Program {
    nodes: Vec<Node>,
    n_params: usize,
    /// Node id of each input slot.
    inputs: Vec<usize>,
    /// Node id of each parameter block, in order.
    params: Vec<usize>,
    /// The layers built by `sequential`, for per-layer curvature (K-FAC).
    pub(crate) layers: Vec<LayerRecord>,
    /// Σ numel over the nodes: every run holds each node's value at once.
    elements: u64,
    /// Shape of each index (integer) input slot: indices for gather, kept apart from the float
    /// values (no node holds them; `Op::GatherInput` names its slot).
    index_inputs: Vec<Vec<usize>>,
    /// The staged values of each index input slot (zeros until set), as checked i64.
    pub(crate) index_values: Vec<std::sync::Arc<Vec<i64>>>,
    /// Changes (to a value no other program state had) whenever a node is added or removed or an
    /// index input is staged: what a run computes is a function of it, the output, the mode, the
    /// parameters and the data (the key of linearization reuse). A clone keeps it: same content.
    version: u64,
}

/// A fresh [`Program`] version.
fn next_version() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// A point of a program's construction to roll back to ([`Program::mark`]).
#[derive(Clone, Copy, Debug)]
pub struct Mark {
    nodes: usize,
    inputs: usize,
    params: usize,
    layers: usize,
    n_params: usize,
    elements: u64,
    index_inputs: usize,
}

/// Where a parametrized layer sits in the program: enough for K-FAC's factors.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LayerRecord {
    /// Index of the layer in its `sequential` (PyTorch's module index).
    pub index: usize,
    pub kind: LayerKind,
    /// The layer's input node (a [N, in] for linear, x [N, C, H, W] for conv2d).
    pub input: usize,
    /// Its output before any activation (s = a·Wᵀ + b).
    pub output: usize,
    /// Offset and size of its weight, and of its bias if any, in the parameter vector.
    pub weight: (usize, usize),
    pub bias: Option<(usize, usize)>,
    /// For conv2d: kernel and attributes.
    pub conv: Option<((usize, usize), crate::kernels::ConvAttrs)>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum LayerKind {
    Linear,
    Conv2d,
}

/// Which curvature the tangents of the reverse sweep carry (hvp mode, K > 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Curvature {
    /// The Hessian: forward-over-reverse through the whole program.
    #[default]
    Hessian,
    /// The generalized Gauss–Newton matrix G = Jᵀ Hℓ J (Schraudolph 2002), where J is the
    /// Jacobian of the network output at node `output` and Hℓ the Hessian of the loss with
    /// respect to that output. The loss must depend on the variable only through `output`.
    Ggn { output: usize },
    /// The empirical Fisher (1/N) Σᵢ ∇ℓᵢ ∇ℓᵢᵀ = Jᵀ F J with F built from the per-sample loss
    /// gradients at `output` (the batch is its axis 0 and the loss a mean over it).
    EmpiricalFisher { output: usize },
    /// The Monte Carlo Fisher: F from `samples` labels per sample drawn from the model's
    /// predictive distribution for `kind`'s likelihood (an unbiased estimate of the GGN).
    MonteCarloFisher { output: usize, kind: super::LossKind, samples: usize, seed: u64 },
}

/// What a run computes: one variant per mode, so that only meaningful combinations of tangents,
/// cotangents and curvature can be asked for. `k` is K, the number of directions (explicit: an
/// empty variable or output has K directions of length 0).
#[derive(Clone, Copy, Debug)]
pub enum Mode<'a, T> {
    /// f: the forward sweep on plain values.
    Value,
    /// f and J·v₁ … J·v_K: the forward sweep on duals, no reverse sweep. `tangents` is
    /// [K, n] row-major (n the variable's length).
    Jvp { tangents: &'a [T], k: usize },
    /// f and ∇f (a scalar output): plain forward and reverse sweeps.
    Grad,
    /// f and Jᵀu for one output-shaped cotangent u (the reverse sweep seeded with u).
    Vjp { cotangent: &'a [T] },
    /// Jᵀu₁ … Jᵀu_K for K cotangents of the output at once, [K, numel(output)]: the reverse
    /// sweep seeded with a zero primal whose tangents are the uₖ, so the rules carry only them
    /// back, linearly; they come back as the gradient's tangents (rows of the Jacobian for unit uₖ).
    Vjps { cotangents: &'a [T], k: usize },
    /// f, ∇f and C·v₁ … C·v_K (forward-over-reverse): `tangents` as in Jvp, C the `curvature`
    /// (the Hessian, or the GGN / a Fisher cut at the network output). With a `cotangent` u
    /// (None: a scalar output's 1) the gradient is Jᵀu and its tangents the directional
    /// derivatives of Jᵀu.
    Hvp { tangents: &'a [T], k: usize, cotangent: Option<&'a [T]>, curvature: Curvature },
}

impl<'a, T> Mode<'a, T> {
    /// K, the directions carried (0 in the first-order modes).
    pub fn k(&self) -> usize {
        match *self {
            Mode::Jvp { k, .. } | Mode::Vjps { k, .. } | Mode::Hvp { k, .. } => k,
            Mode::Value | Mode::Grad | Mode::Vjp { .. } => 0,
        }
    }
    /// The K forward directions of the variable, [K, n] (empty where none).
    pub fn tangents(&self) -> &'a [T] {
        match *self {
            Mode::Jvp { tangents, .. } | Mode::Hvp { tangents, .. } => tangents,
            _ => &[],
        }
    }
    /// The seed of the reverse sweep when it is not a scalar's 1.
    pub fn cotangent(&self) -> Option<&'a [T]> {
        match *self {
            Mode::Vjp { cotangent } => Some(cotangent),
            Mode::Hvp { cotangent, .. } => cotangent,
            _ => None,
        }
    }
    /// Whether the run has a reverse sweep.
    pub fn reverse(&self) -> bool {
        !matches!(self, Mode::Value | Mode::Jvp { .. })
    }
    /// What the linearization key needs of the mode: everything but the values.
    pub(crate) fn key(&self) -> ModeKey {
        match *self {
            Mode::Value => ModeKey::Value,
            Mode::Jvp { k, .. } => ModeKey::Jvp { k },
            Mode::Grad => ModeKey::Grad,
            Mode::Vjp { .. } => ModeKey::Vjp,
            Mode::Vjps { k, .. } => ModeKey::Vjps { k },
            Mode::Hvp { k, cotangent, curvature, .. } => ModeKey::Hvp { k, cotangent: cotangent.is_some(), curvature },
        }
    }
}

/// A [`Mode`] without its values (linearization.rs keys its tapes by it).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum ModeKey {
    Value,
    Jvp { k: usize },
    Grad,
    Vjp,
    Vjps { k: usize },
    Hvp { k: usize, cotangent: bool, curvature: Curvature },
}

/// A request to [`Program::run`]: the point (parameters and data), the variable, and the mode.
#[derive(Clone, Copy, Debug)]
pub struct Run<'a, T> {
    pub params: &'a [T],
    pub inputs: &'a [&'a [T]],
    pub wrt: Wrt,
    pub mode: Mode<'a, T>,
    /// Report NaN or ±∞ in parameters, inputs and tangents as errors.
    pub check_finite: bool,
}

impl<'a, T> Run<'a, T> {
    /// A run at (params, inputs) with respect to the parameters, without finiteness checks.
    pub fn at(params: &'a [T], inputs: &'a [&'a [T]], mode: Mode<'a, T>) -> Self {
        Run { params, inputs, wrt: Wrt::Params, mode, check_finite: false }
    }
}

/// Most tangent directions of an empty variable (see [`Program::run`]'s checks).
const MAX_EMPTY_K: usize = 1 << 16;

/// What a run returns.
#[derive(Debug)]
pub struct Outcome<T> {
    /// The output with its K tangents (J·v in jvp mode).
    pub output: Dual<T>,
    /// The gradient with respect to the variable, with K tangents (H·v) in hvp mode.
    pub grad: Option<Dual<T>>,
    /// For each node asked for in [`Program::run_capture`]: its value, and the gradient that
    /// reached it in the reverse sweep (None where none did or no sweep ran).
    pub captured: Vec<(Dual<T>, Option<Dual<T>>)>,
}

impl Program {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }
    pub fn shape(&self, id: usize) -> Result<&[usize]> {
        self.nodes.get(id).map(|n| n.shape.as_slice()).ok_or_else(|| Error::invalid(format!("no node {id} in this program")))
    }
    /// See the field: equal versions, equal programs.
    pub fn version(&self) -> u64 {
        self.version
    }
    /// Number of parameters P.
    pub fn n_params(&self) -> usize {
        self.n_params
    }
    pub fn n_inputs(&self) -> usize {
        self.inputs.len()
    }
    pub fn input_shape(&self, slot: usize) -> Option<&[usize]> {
        self.inputs.get(slot).map(|&id| self.nodes[id].shape.as_slice())
    }
    /// The parametrized layers built by `sequential`, in order.
    pub fn layers(&self) -> &[LayerRecord] {
        &self.layers
    }
    /// (offset, shape) of each parameter block.
    pub fn param_blocks(&self) -> Vec<(usize, Vec<usize>)> {
        self.params
            .iter()
            .map(|&id| match self.nodes[id].op {
                Op::Param { offset } => (offset, self.nodes[id].shape.clone()),
                _ => unreachable!(),
            })
            .collect()
    }

    /// Adds a node after checking its inputs and inferring its shape (whose element count must
    /// fit the address space).
    pub fn push(&mut self, op: Op, ins: &[usize], target: Option<&[usize]>) -> Result<usize> {
        let mut shapes = Vec::with_capacity(ins.len());
        for &i in ins {
            shapes.push(self.shape(i)?);
        }
        let shape = op.infer_shape(&shapes, target)?;
        let n = numel(&shape)?;
        try_reserve(&mut self.nodes, 1, "program nodes")?;
        self.nodes.push(Node { op, ins: ins.to_vec(), shape });
        self.version = next_version();
        self.elements = self.elements.saturating_add(n as u64);
        Ok(self.nodes.len() - 1)
    }

    /// A parameter block of `shape`: the next numel(shape) values of the flat parameter vector.
    pub fn param(&mut self, shape: &[usize]) -> Result<usize> {
        let n = numel(shape)?;
        let total = crate::mem::add("parameters", self.n_params, n)?;
        try_reserve(&mut self.params, 1, "parameter blocks")?;
        let id = self.push(Op::Param { offset: self.n_params }, &[], Some(shape))?;
        self.n_params = total;
        self.params.push(id);
        Ok(id)
    }

    /// The next data input, of `shape`.
    pub fn input(&mut self, shape: &[usize]) -> Result<usize> {
        try_reserve(&mut self.inputs, 1, "program inputs")?;
        let id = self.push(Op::Input { slot: self.inputs.len() }, &[], Some(shape))?;
        self.inputs.push(id);
        Ok(id)
    }

    /// The current end of the program, to [`Program::rollback`] to when a build step fails.
    pub fn mark(&self) -> Mark {
        Mark {
            nodes: self.nodes.len(),
            inputs: self.inputs.len(),
            params: self.params.len(),
            layers: self.layers.len(),
            n_params: self.n_params,
            elements: self.elements,
            index_inputs: self.index_inputs.len(),
        }
    }

    /// Removes everything added since `m` (a failed `sequential` leaves no half-built layers).
    pub fn rollback(&mut self, m: Mark) {
        self.nodes.truncate(m.nodes);
        self.inputs.truncate(m.inputs);
        self.params.truncate(m.params);
        self.layers.truncate(m.layers);
        self.n_params = m.n_params;
        self.elements = m.elements;
        self.index_inputs.truncate(m.index_inputs);
        self.index_values.truncate(m.index_inputs);
        self.version = next_version();
    }

    /// The next index (integer) input, of `shape`: its slot. Its values (zeros until
    /// [`Program::set_index_input`]) are the indices of the gathers that name the slot.
    pub fn index_input(&mut self, shape: &[usize]) -> Result<usize> {
        let n = numel(shape)?;
        try_reserve(&mut self.index_inputs, 1, "index inputs")?;
        try_reserve(&mut self.index_values, 1, "index inputs")?;
        let zeros = std::sync::Arc::new(try_zeros::<i64>(n, "index input")?);
        self.index_inputs.push(shape.to_vec());
        self.index_values.push(zeros);
        self.version = next_version();
        Ok(self.index_inputs.len() - 1)
    }
    pub fn n_index_inputs(&self) -> usize {
        self.index_inputs.len()
    }
    pub fn index_input_shape(&self, slot: usize) -> Option<&[usize]> {
        self.index_inputs.get(slot).map(|s| s.as_slice())
    }
    /// Stages the values of index input `slot` (numel(shape) integers; their range is checked
    /// by each gather that uses them, against its own axis, when it runs).
    pub fn set_index_input(&mut self, slot: usize, values: Vec<i64>) -> Result<()> {
        let shape = self.index_inputs.get(slot).ok_or_else(|| Error::invalid(format!("no index input slot {slot} (the program has {})", self.index_inputs.len())))?;
        if values.len() != numel(shape)? {
            return Err(Error::new(ErrorCode::LengthMismatch, format!("index input {slot} has shape {} ({} values), got {} values", fmt_shape(shape), numel(shape)?, values.len())));
        }
        self.index_values[slot] = std::sync::Arc::new(values);
        self.version = next_version();
        Ok(())
    }

    /// A lower bound on the elements any run of the program holds at once: the staged
    /// parameters and inputs (P and Σ numel(inputs)) plus every node's value (a value-only run
    /// keeps them all; gradients and tangents need more).
    pub fn min_run_elements(&self) -> u64 {
        let staged: u64 = self.inputs.iter().map(|&id| self.nodes[id].shape.iter().product::<usize>() as u64).sum();
        self.elements.saturating_add(self.n_params as u64).saturating_add(staged)
    }

    /// Which nodes depend on the variable (only those carry tangents or need gradients).
    fn depends_on(&self, wrt: Wrt) -> Vec<bool> {
        let mut dep = vec![false; self.nodes.len()];
        for (i, n) in self.nodes.iter().enumerate() {
            dep[i] = match n.op {
                Op::Param { .. } => wrt == Wrt::Params,
                Op::Input { slot } => wrt == Wrt::Input(slot),
                Op::Const(_) => false,
                _ => n.ins.iter().any(|&j| dep[j]),
            };
        }
        dep
    }

    /// anc[i]: whether node `f` depends on node i (i ≤ f; f itself included).
    pub(crate) fn ancestors(&self, f: usize) -> Vec<bool> {
        let mut anc = vec![false; f + 1];
        anc[f] = true;
        for i in (0..=f).rev() {
            if anc[i] {
                for &j in &self.nodes[i].ins {
                    anc[j] = true;
                }
            }
        }
        anc
    }

    /// For Gauss–Newton curvature at node `f`: checks that everything depending on the variable
    /// either feeds `f` or depends on it (the loss sees the variable only through f), and returns
    /// (f, the nodes f depends on, itself included).
    fn check_gauss_newton(&self, f: usize, out: usize, dep: &[bool]) -> Result<(usize, Vec<usize>)> {
        if f >= out {
            return Err(Error::invalid(format!("Gauss–Newton: the network output (node {f}) must come before the loss (node {out})")));
        }
        let anc = self.ancestors(f);
        let mut after = vec![false; out + 1];
        after[f] = true;
        for i in 0..=out {
            if i > f {
                after[i] = self.nodes[i].ins.iter().any(|&j| after[j]);
            }
            let feeds_f = i <= f && anc[i];
            if dep[i] && !after[i] && !feeds_f {
                return Err(Error::invalid(format!(
                    "Gauss–Newton: node {i} ({}) depends on the parameters but not through the network output; the GGN and Fisher need loss(f(θ), y) (use the Hessian for other objectives)",
                    self.nodes[i].op.name()
                )));
            }
        }
        Ok((f, (0..=f).filter(|&j| anc[j]).collect()))
    }

    /// Validates a run request; returns the variable's length n.
    fn check<T: Scalar>(&self, out: usize, r: &Run<'_, T>) -> Result<usize> {
        if out >= self.nodes.len() {
            return Err(Error::invalid(format!("no node {out} in this program")));
        }
        if r.params.len() != self.n_params {
            return Err(Error::new(ErrorCode::LengthMismatch, format!("params has {} values but the program has P = {}", r.params.len(), self.n_params)));
        }
        if r.inputs.len() != self.inputs.len() {
            return Err(Error::invalid(format!("the program takes {} data inputs, got {}", self.inputs.len(), r.inputs.len())));
        }
        for (slot, (&id, data)) in self.inputs.iter().zip(r.inputs).enumerate() {
            let s = &self.nodes[id].shape;
            if data.len() != numel(s)? {
                return Err(Error::shape(format!(
                    "input {slot} has {} values but the program was traced with shape {} ({} values)",
                    data.len(),
                    fmt_shape(s),
                    numel(s)?
                )));
            }
        }
        let n_var = match r.wrt {
            Wrt::Params => self.n_params,
            Wrt::Input(slot) => numel(self.input_shape(slot).ok_or_else(|| Error::invalid(format!("no input slot {slot}")))?)?,
        };
        let (k, tangents) = (r.mode.k(), r.mode.tangents());
        // K tangents of the widest value: every K·n product of the run below fits.
        let widest = self.nodes[..=out].iter().filter_map(|n| crate::shape::extent(&n.shape)).max().unwrap_or(0).max(n_var);
        product(&format!("{k} tangents of {widest} values"), &[k, widest])?;
        // K is bounded by the K·n values passed in, except for an empty variable (or output):
        // there nothing bounds the K-fold loops of the rules, so cap it.
        let out_shape = &self.nodes[out].shape;
        let data = if let Mode::Vjps { .. } = r.mode { numel(out_shape)? } else { n_var };
        if data == 0 && k > MAX_EMPTY_K {
            return Err(Error::invalid(format!("{k} directions of an empty variable or output: at most {MAX_EMPTY_K}")));
        }
        if let Mode::Vjps { cotangents, .. } = r.mode {
            let m = numel(out_shape)?;
            if cotangents.len() != k * m {
                return Err(Error::new(
                    ErrorCode::LengthMismatch,
                    format!("{k} cotangents of the output {} need {} values and no tangents, got {} and 0", fmt_shape(out_shape), k * m, cotangents.len()),
                ));
            }
        } else if tangents.len() != k * n_var {
            return Err(Error::new(ErrorCode::LengthMismatch, format!("{k} tangent direction(s) of length {n_var} need {} values, got {}", k * n_var, tangents.len())));
        }
        match r.mode.cotangent() {
            Some(c) if c.len() != numel(out_shape)? => {
                return Err(Error::shape(format!("the cotangent has {} values but the output has shape {}", c.len(), fmt_shape(out_shape))))
            }
            None if matches!(r.mode, Mode::Grad | Mode::Hvp { .. }) && numel(out_shape)? != 1 => {
                return Err(Error::shape(format!(
                    "gradients need a scalar output, but the function returns shape {} (reduce it with sum or mean, or use vjp)",
                    fmt_shape(out_shape)
                )))
            }
            _ => {}
        }
        if r.check_finite {
            finite("params", r.params)?;
            for (slot, x) in r.inputs.iter().enumerate() {
                finite(&format!("input {slot}"), x)?;
            }
            finite("the tangent directions", tangents)?;
        }
        Ok(n_var)
    }

    /// Runs the program up to node `out` (see the table in the module docs).
    pub fn run<T: Scalar>(&self, isa: Isa, out: usize, r: &Run<'_, T>) -> Result<Outcome<T>> {
        self.run_capture(isa, out, r, &[])
    }

    /// [`Program::run`], also returning the values and gradients of the `capture` nodes (layer
    /// inputs and outputs for K-FAC).
    pub fn run_capture<T: Scalar>(&self, isa: Isa, out: usize, r: &Run<'_, T>, capture: &[usize]) -> Result<Outcome<T>> {
        self.run_with(isa, out, r, capture, None)
    }

    /// [`Program::run`] recording its costly primal results on `tape`, or replaying them from
    /// it (linearization.rs).
    pub(crate) fn run_taped<T: Scalar>(&self, isa: Isa, out: usize, r: &Run<'_, T>, tape: Option<&Tape>) -> Result<Outcome<T>> {
        self.run_with(isa, out, r, &[], tape)
    }

    /// The run as its phases: `check` the request, `forward` sweep, then (in the modes with
    /// one) prepare the curvature `Cut` from the forward values and run the `reverse` sweep.
    fn run_with<T: Scalar>(&self, isa: Isa, out: usize, r: &Run<'_, T>, capture: &[usize], tape: Option<&Tape>) -> Result<Outcome<T>> {
        if let Some(&bad) = capture.iter().find(|&&c| c > out) {
            return Err(Error::invalid(format!("cannot capture node {bad}: the run stops at node {out}")));
        }
        let n_var = self.check(out, r)?;
        let cx = Ctx { isa, k: r.mode.k(), index_inputs: &self.index_values, tape };
        let mut vals = self.forward(&cx, out, r, n_var)?;
        let mut captured: Vec<(Dual<T>, Option<Dual<T>>)> = try_vec(capture.len(), "captured values")?;
        for &c in capture {
            captured.push((vals[c].try_clone("captured values")?, None));
        }
        if !r.mode.reverse() {
            return Ok(Outcome { output: vals.pop().expect("out exists"), grad: None, captured });
        }
        let dep = self.depends_on(r.wrt);
        let cut = match r.mode {
            Mode::Hvp { curvature, .. } => self.cut(curvature, out, &dep, &vals)?,
            _ => None,
        };
        let grad = self.reverse(&cx, out, r, n_var, &dep, &mut vals, cut.as_ref(), capture, &mut captured)?;
        Ok(Outcome { output: vals.swap_remove(out), grad: Some(grad), captured })
    }

    /// The forward sweep: every node's value up to `out`, with K tangents on the nodes that
    /// depend on the variable in the modes that have forward directions (Jvp, Hvp).
    fn forward<T: Scalar>(&self, cx: &Ctx<'_>, out: usize, r: &Run<'_, T>, n_var: usize) -> Result<Vec<Dual<T>>> {
        let k = r.mode.k();
        let tangents = r.mode.tangents();
        let forward_tangents = matches!(r.mode, Mode::Jvp { .. } | Mode::Hvp { .. }) && k > 0;
        // The tangents of the variable's slice [offset, offset + n) for all K directions.
        let leaf_tangents = |offset: usize, n: usize| -> Result<Option<Vec<T>>> {
            if !forward_tangents {
                return Ok(None);
            }
            let mut t = try_vec(k * n, "leaf tangents")?;
            (0..k).for_each(|kk| t.extend_from_slice(&tangents[kk * n_var + offset..kk * n_var + offset + n]));
            Ok(Some(t))
        };
        let mut vals: Vec<Dual<T>> = try_vec(out + 1, "node values")?;
        for node in &self.nodes[..=out] {
            let v = match node.op {
                Op::Param { offset } => {
                    let n = numel(&node.shape)?;
                    let t = if r.wrt == Wrt::Params { leaf_tangents(offset, n)? } else { None };
                    Dual { shape: node.shape.clone(), p: try_copy(&r.params[offset..offset + n], "parameter values")?, t }
                }
                Op::Input { slot } => {
                    let t = if r.wrt == Wrt::Input(slot) { leaf_tangents(0, n_var)? } else { None };
                    Dual { shape: node.shape.clone(), p: try_copy(r.inputs[slot], "input values")?, t }
                }
                // An empty value needs no work (and its rule might loop over the other dims,
                // which can be huge: [2³¹, 0] is a valid, empty shape).
                _ if node.shape.contains(&0) => Dual::constant(node.shape.clone(), Vec::new()),
                _ => {
                    let ins: Vec<&Dual<T>> = node.ins.iter().map(|&j| &vals[j]).collect();
                    node.op.eval(cx, &ins, &node.shape)?
                }
            };
            vals.push(v);
        }
        Ok(vals)
    }

    /// The seed of the reverse sweep at `out`: a scalar's 1, the cotangent u, or (Vjps) a zero
    /// primal carrying the K cotangents as its tangents.
    fn seed<T: Scalar>(&self, out: usize, mode: &Mode<'_, T>) -> Result<Dual<T>> {
        let shape = self.nodes[out].shape.clone();
        Ok(match *mode {
            Mode::Vjps { cotangents, k } => {
                let p = try_zeros(numel(&shape)?, "output cotangents")?;
                let t = if k > 0 { Some(try_copy(cotangents, "output cotangents")?) } else { None };
                Dual { p, shape, t }
            }
            _ => match mode.cotangent() {
                Some(c) => Dual::constant(shape, try_copy(c, "cotangent")?),
                None => Dual::constant(shape, vec![T::ONE]),
            },
        })
    }

    /// The curvature cut of an Hvp run (None for the Hessian), prepared between the sweeps from
    /// the forward values: where it is (the network output f and the nodes f depends on), and
    /// for the Monte Carlo Fisher the sampled output-space seeds (a function of f's values, so
    /// they are drawn before the reverse sweep, not in the middle of it).
    fn cut<T: Scalar>(&self, curvature: Curvature, out: usize, dep: &[bool], vals: &[Dual<T>]) -> Result<Option<Cut>> {
        let output = match curvature {
            Curvature::Hessian => return Ok(None),
            Curvature::Ggn { output } | Curvature::EmpiricalFisher { output } | Curvature::MonteCarloFisher { output, .. } => output,
        };
        let (at, ancestors) = self.check_gauss_newton(output, out, dep)?;
        let kind = match curvature {
            Curvature::MonteCarloFisher { kind, samples, seed, .. } => CutKind::MonteCarlo(McSeeds::draw(kind, samples, seed, &vals[at])),
            Curvature::EmpiricalFisher { .. } => CutKind::EmpiricalFisher,
            _ => CutKind::Ggn,
        };
        Ok(Some(Cut { at, ancestors, kind }))
    }

    /// The reverse sweep from `out`, on duals when K > 0 (gradients and their tangents H·v
    /// together), applying `cut` where it is; returns the variable's gradient (its tangents: the
    /// K products). Fills the gradients of the `capture` nodes.
    #[allow(clippy::too_many_arguments)]
    fn reverse<T: Scalar>(
        &self,
        cx: &Ctx<'_>,
        out: usize,
        r: &Run<'_, T>,
        n_var: usize,
        dep: &[bool],
        vals: &mut [Dual<T>],
        cut: Option<&Cut>,
        capture: &[usize],
        captured: &mut [(Dual<T>, Option<Dual<T>>)],
    ) -> Result<Dual<T>> {
        let k = r.mode.k();
        let mut grads: Vec<Option<Dual<T>>> = try_vec(out + 1, "node gradients")?;
        grads.resize_with(out + 1, || None);
        grads[out] = Some(self.seed(out, &r.mode)?);
        let gt = if k > 0 { Some(try_zeros(k * n_var, "gradient tangents")?) } else { None };
        let mut gv = Dual { shape: vec![n_var], p: try_zeros(n_var, "gradient")?, t: gt };
        for i in (0..=out).rev() {
            let Some(mut g) = grads[i].take() else { continue };
            for (slot, _) in capture.iter().enumerate().filter(|(_, &c)| c == i) {
                captured[slot].1 = Some(g.try_clone("captured gradients")?);
            }
            if let Some(cut) = cut.filter(|c| c.at == i) {
                cut.apply(&mut g, vals, k)?;
            }
            let node = &self.nodes[i];
            let leaf_offset = match node.op {
                Op::Param { offset } if r.wrt == Wrt::Params => Some(offset),
                Op::Input { slot } if r.wrt == Wrt::Input(slot) => Some(0),
                _ => None,
            };
            if let Some(off) = leaf_offset {
                scatter(&mut gv, &g, off, n_var, k);
                continue;
            }
            // An empty output passes nothing back (its inputs' gradients are zero).
            if !dep[i] || node.shape.contains(&0) {
                continue;
            }
            let ins: Vec<&Dual<T>> = node.ins.iter().map(|&j| &vals[j]).collect();
            let needs: Vec<bool> = node.ins.iter().map(|&j| dep[j]).collect();
            for (j, gj) in node.op.vjp(cx, &ins, &vals[i], g, &needs)?.into_iter().enumerate() {
                if let Some(gj) = gj {
                    dual::accumulate(cx, &mut grads[node.ins[j]], gj)?;
                }
            }
        }
        Ok(gv)
    }
}

/// Where and how an Hvp run's reverse sweep turns from the loss's curvature to the network's
/// Jacobian: G = Jᵀ Hℓ J (the GGN) or Jᵀ F J (a Fisher) at the network output f.
struct Cut {
    /// The network output f.
    at: usize,
    /// The nodes f depends on, itself included.
    ancestors: Vec<usize>,
    kind: CutKind,
}

enum CutKind {
    Ggn,
    EmpiricalFisher,
    /// The sampled seeds (or the error drawing them gave, reported when the sweep reaches f, as
    /// a run that never reaches it never needed them).
    MonteCarlo(Result<Option<McSeeds>>),
}

impl Cut {
    /// At f, g.t = Hℓ·J·v (the loss part ran forward-over-reverse): for a Fisher, replace it by
    /// F·(J·v); then drop the forward tangents of f and its ancestors, so that from here down
    /// the sweep is first order and the rules only carry g's tangents back, giving Jᵀ(C J v).
    fn apply<T: Scalar>(&self, g: &mut Dual<T>, vals: &mut [Dual<T>], k: usize) -> Result<()> {
        match &self.kind {
            CutKind::Ggn => {}
            CutKind::EmpiricalFisher => g.t = fisher_tangents(g, &vals[self.at], k)?,
            CutKind::MonteCarlo(seeds) => {
                g.t = match seeds {
                    Ok(Some(s)) => Some(s.product(&vals[self.at], k)?),
                    Ok(None) => None,
                    Err(e) => return Err(e.clone()),
                }
            }
        }
        for &j in &self.ancestors {
            vals[j].t = None;
        }
        Ok(())
    }
}

/// F·u for the empirical Fisher, per sample i, a sample being a row of the output's last axis
/// (one position: [N, C] → N rows, [N, T, D] → N·T; gauss_newton.rs `LossKind::rows`, the
/// objective passes the rows view): with gᵢ the gradient of the mean loss at row i (so
/// ∇ℓᵢ = R·gᵢ for L = (1/R) Σᵢ ℓᵢ), (1/R)·∇ℓᵢ⟨∇ℓᵢ, uᵢ⟩ = R·gᵢ⟨gᵢ, uᵢ⟩.
fn fisher_tangents<T: Scalar>(g: &Dual<T>, f: &Dual<T>, k: usize) -> Result<Option<Vec<T>>> {
    let Some(u) = f.t.as_ref() else { return Ok(None) };
    if g.numel() == 0 {
        return Ok(Some(Vec::new())); // (no loop over the rows of an empty batch)
    }
    let row = if g.shape.len() >= 2 { g.shape[g.shape.len() - 1] } else { 1 };
    let n = g.numel() / row;
    let scale = T::from_f64(n as f64);
    let mut w = try_zeros(k * g.numel(), "empirical Fisher")?;
    for kk in 0..k {
        for i in 0..n {
            let (gi, ui) = (&g.p[i * row..(i + 1) * row], &u[kk * g.numel() + i * row..kk * g.numel() + (i + 1) * row]);
            let dot = gi.iter().zip(ui).fold(T::ZERO, |s, (&a, &b)| s + a * b);
            for (wj, &gj) in w[kk * g.numel() + i * row..kk * g.numel() + (i + 1) * row].iter_mut().zip(gi) {
                *wj = scale * gj * dot;
            }
        }
    }
    Ok(Some(w))
}

/// The Monte Carlo Fisher's sampled loss gradients at the network output: `samples` labels per
/// row (position) of f drawn from the model's predictive distribution for the loss (the K-FAC
/// Monte Carlo seeds, gauss_newton.rs), [samples, n, c].
struct McSeeds {
    n: usize,
    c: usize,
    samples: usize,
    seeds: Vec<f64>,
}

impl McSeeds {
    /// None when f carries no tangents (nothing to multiply).
    fn draw<T: Scalar>(kind: super::LossKind, samples: usize, seed: u64, f: &Dual<T>) -> Result<Option<McSeeds>> {
        if f.t.is_none() {
            return Ok(None);
        }
        let (n, c) = kind.rows(&f.shape, "Monte Carlo Fisher")?;
        if samples == 0 {
            return Err(Error::invalid(format!("Monte Carlo Fisher: needs at least one sample (network output {})", fmt_shape(&f.shape))));
        }
        if n * c == 0 {
            return Ok(Some(McSeeds { n, c, samples, seeds: Vec::new() }));
        }
        let fv = try_map(&f.p, |v| v.to_f64(), "Monte Carlo Fisher")?;
        let seeds = kind.output_space_seeds(&fv, n, c, super::KfacVariant::MonteCarlo { samples, seed })?;
        Ok(Some(McSeeds { n, c, samples, seeds }))
    }

    /// F·u: per sample i, Σₛ sᵢ,ₛ⟨sᵢ,ₛ, uᵢ⟩ with sᵢ,ₛ the seeds and u = J·v f's tangents.
    fn product<T: Scalar>(&self, f: &Dual<T>, k: usize) -> Result<Vec<T>> {
        let (n, c, samples, seeds) = (self.n, self.c, self.samples, &self.seeds);
        if n * c == 0 {
            return Ok(Vec::new());
        }
        let u = f.t.as_ref().expect("seeds are drawn only for an output with tangents");
        let mut w = try_zeros(k * n * c, "Monte Carlo Fisher")?;
        for kk in 0..k {
            for i in 0..n {
                let ui = &u[(kk * n + i) * c..(kk * n + i + 1) * c];
                for s in 0..samples {
                    let si = &seeds[(s * n + i) * c..(s * n + i + 1) * c];
                    let dot: f64 = si.iter().zip(ui).map(|(a, b)| a * b.to_f64()).sum();
                    for (q, &sq) in si.iter().enumerate() {
                        let o = &mut w[(kk * n + i) * c + q];
                        *o = *o + T::from_f64(sq * dot);
                    }
                }
            }
        }
        Ok(w)
    }
}

/// Adds a leaf's gradient (and its K tangents) into the variable's gradient at `off`.
fn scatter<T: Scalar>(gv: &mut Dual<T>, g: &Dual<T>, off: usize, n_var: usize, k: usize) {
    let n = g.numel();
    gv.p[off..off + n].iter_mut().zip(&g.p).for_each(|(d, &s)| *d += s);
    if let Some(gt) = &g.t {
        let t = gv.t.as_mut().expect("K > 0");
        for kk in 0..k {
            t[kk * n_var + off..kk * n_var + off + n].iter_mut().zip(&gt[kk * n..(kk + 1) * n]).for_each(|(d, &s)| *d += s);
        }
    }
}

fn finite<T: Scalar>(name: &str, v: &[T]) -> Result<()> {
    match v.iter().position(|x| !x.to_f64().is_finite()) {
        Some(i) => Err(Error::invalid(format!("{name} has a non-finite value ({:?}) at index {i}", v[i]))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::autodiff::{Act, LossKind};

    /// f = tanh(x·W) [3, 2] with W [2, 2] the parameters, and L = mse(f, y): a network whose
    /// GGN differs from its Hessian (tanh'' ≠ 0).
    struct Net {
        prog: Program,
        f: usize,
        loss: usize,
        params: Vec<f64>,
        x: Vec<f64>,
        y: Vec<f64>,
    }

    fn net() -> Net {
        let mut prog = Program::new();
        let x = prog.input(&[3, 2]).unwrap();
        let y = prog.input(&[3, 2]).unwrap();
        let w = prog.param(&[2, 2]).unwrap();
        let s = prog.matmul(x, w, false, false).unwrap();
        let f = prog.act(s, Act::Tanh).unwrap();
        let loss = prog.mse(f, y).unwrap();
        let wave = |n: usize, a: f64| (0..n).map(|i| (a * (i as f64 + 1.0)).sin()).collect::<Vec<_>>();
        Net { prog, f, loss, params: wave(4, 0.7), x: wave(6, 1.3), y: wave(6, 0.4) }
    }

    fn eye(n: usize) -> Vec<f64> {
        (0..n * n).map(|i| if i / n == i % n { 1.0 } else { 0.0 }).collect()
    }

    fn bits(v: &[f64]) -> Vec<u64> {
        v.iter().map(|x| x.to_bits()).collect()
    }

    #[test]
    fn the_forward_phase_is_the_value_mode_and_every_mode_shares_it() {
        let n = net();
        let inputs: [&[f64]; 2] = [&n.x, &n.y];
        let v = [0.3, -0.2, 0.5, 0.1];
        let value = n.prog.run(Isa::Simd, n.loss, &Run::at(&n.params, &inputs, Mode::Value)).unwrap();
        assert!(value.grad.is_none() && value.output.t.is_none());
        // The phase itself, called directly, ends in the value mode's output.
        let r = Run::at(&n.params, &inputs, Mode::Value);
        let n_var = n.prog.check(n.loss, &r).unwrap();
        let cx = Ctx { isa: Isa::Simd, k: 0, index_inputs: &n.prog.index_values, tape: None };
        let vals = n.prog.forward(&cx, n.loss, &r, n_var).unwrap();
        assert_eq!(bits(&vals[n.loss].p), bits(&value.output.p));
        // Every other mode computes the same primal forward sweep, bit for bit; Jvp's output
        // tangents are Hvp's (the same forward on duals).
        let jvp = n.prog.run(Isa::Simd, n.loss, &Run::at(&n.params, &inputs, Mode::Jvp { tangents: &v, k: 1 })).unwrap();
        let hvp = n.prog.run(Isa::Simd, n.loss, &Run::at(&n.params, &inputs, Mode::Hvp { tangents: &v, k: 1, cotangent: None, curvature: Curvature::Hessian })).unwrap();
        let grad = n.prog.run(Isa::Simd, n.loss, &Run::at(&n.params, &inputs, Mode::Grad)).unwrap();
        for o in [&jvp, &hvp, &grad] {
            assert_eq!(bits(&o.output.p), bits(&value.output.p));
        }
        assert_eq!(bits(jvp.output.t.as_ref().unwrap()), bits(hvp.output.t.as_ref().unwrap()));
        // And the reverse sweep's primal is the gradient mode's.
        assert_eq!(bits(&hvp.grad.as_ref().unwrap().p), bits(&grad.grad.as_ref().unwrap().p));
    }

    #[test]
    fn the_ggn_cut_is_j_transpose_h_loss_j() {
        // Reference: J (6×4) from Jvp runs with unit tangents at f, and Hℓ = (2/6)·I for the mean
        // squared error over 6 values, so G = (1/3)·JᵀJ, against the cut's products G·eⱼ.
        let n = net();
        let inputs: [&[f64]; 2] = [&n.x, &n.y];
        let e = eye(4);
        let jv = n.prog.run(Isa::Simd, n.f, &Run::at(&n.params, &inputs, Mode::Jvp { tangents: &e, k: 4 })).unwrap().output.t.unwrap();
        let mode = Mode::Hvp { tangents: &e, k: 4, cotangent: None, curvature: Curvature::Ggn { output: n.f } };
        let g = n.prog.run(Isa::Simd, n.loss, &Run::at(&n.params, &inputs, mode)).unwrap().grad.unwrap().t.unwrap();
        let mode = Mode::Hvp { tangents: &e, k: 4, cotangent: None, curvature: Curvature::Hessian };
        let h = n.prog.run(Isa::Simd, n.loss, &Run::at(&n.params, &inputs, mode)).unwrap().grad.unwrap().t.unwrap();
        let mut differs = false;
        for i in 0..4 {
            for j in 0..4 {
                let want: f64 = (0..6).map(|q| jv[i * 6 + q] * jv[j * 6 + q]).sum::<f64>() / 3.0;
                assert!((g[i * 4 + j] - want).abs() < 1e-12, "G[{i},{j}] = {} vs JᵀHℓJ {want}", g[i * 4 + j]);
                differs |= (h[i * 4 + j] - want).abs() > 1e-6;
            }
        }
        assert!(differs, "the Hessian of this net is not its GGN: the cut must have changed something");
    }

    #[test]
    fn the_empirical_fisher_cut_is_the_mean_of_per_sample_gradient_outer_products() {
        // Reference: ∇ℓᵢ = Jᵢᵀ·(2/2)(fᵢ − yᵢ) per row i (each row's loss is the mean over its 2
        // values) from Jvp columns, and F = (1/3) Σᵢ ∇ℓᵢ∇ℓᵢᵀ.
        let n = net();
        let inputs: [&[f64]; 2] = [&n.x, &n.y];
        let e = eye(4);
        let o = n.prog.run(Isa::Simd, n.f, &Run::at(&n.params, &inputs, Mode::Jvp { tangents: &e, k: 4 })).unwrap();
        let (fv, jv) = (o.output.p, o.output.t.unwrap());
        let grads: Vec<[f64; 4]> = (0..3)
            .map(|i| std::array::from_fn(|p| (0..2).map(|c| jv[p * 6 + i * 2 + c] * (fv[i * 2 + c] - n.y[i * 2 + c])).sum()))
            .collect();
        let mode = Mode::Hvp { tangents: &e, k: 4, cotangent: None, curvature: Curvature::EmpiricalFisher { output: n.f } };
        let fisher = n.prog.run(Isa::Simd, n.loss, &Run::at(&n.params, &inputs, mode)).unwrap().grad.unwrap().t.unwrap();
        for a in 0..4 {
            for b in 0..4 {
                let want: f64 = grads.iter().map(|g| g[a] * g[b]).sum::<f64>() / 3.0;
                assert!((fisher[a * 4 + b] - want).abs() < 1e-12, "F[{a},{b}] = {} vs {want}", fisher[a * 4 + b]);
            }
        }
    }

    #[test]
    fn k_cotangents_at_once_are_k_vjps() {
        let n = net();
        let inputs: [&[f64]; 2] = [&n.x, &n.y];
        let us: Vec<f64> = (0..12).map(|i| (0.37 * i as f64).cos()).collect();
        let all = n.prog.run(Isa::Simd, n.f, &Run::at(&n.params, &inputs, Mode::Vjps { cotangents: &us, k: 2 })).unwrap().grad.unwrap().t.unwrap();
        for kk in 0..2 {
            let one = n.prog.run(Isa::Simd, n.f, &Run::at(&n.params, &inputs, Mode::Vjp { cotangent: &us[kk * 6..(kk + 1) * 6] })).unwrap().grad.unwrap().p;
            for p in 0..4 {
                assert!((all[kk * 4 + p] - one[p]).abs() < 1e-14, "Jᵀu{kk}[{p}]");
            }
        }
    }

    #[test]
    fn the_monte_carlo_seeds_are_drawn_before_the_reverse_sweep_from_the_forward_values() {
        // The prepared cut holds seeds equal to K-FAC's Monte Carlo seeds of the forward values,
        // and a zero sample count surfaces as the same error through a run.
        let n = net();
        let inputs: [&[f64]; 2] = [&n.x, &n.y];
        let v = [0.3, -0.2, 0.5, 0.1];
        let curvature = Curvature::MonteCarloFisher { output: n.f, kind: LossKind::Mse, samples: 3, seed: 11 };
        let r = Run::at(&n.params, &inputs, Mode::Hvp { tangents: &v, k: 1, cotangent: None, curvature });
        let n_var = n.prog.check(n.loss, &r).unwrap();
        let cx = Ctx { isa: Isa::Simd, k: 1, index_inputs: &n.prog.index_values, tape: None };
        let vals = n.prog.forward(&cx, n.loss, &r, n_var).unwrap();
        let cut = n.prog.cut(curvature, n.loss, &n.prog.depends_on(Wrt::Params), &vals).unwrap().expect("a Fisher cut");
        assert_eq!((cut.at, cut.ancestors.last().copied()), (n.f, Some(n.f)));
        let CutKind::MonteCarlo(Ok(Some(s))) = &cut.kind else { panic!("seeds drawn") };
        let want = LossKind::Mse.output_space_seeds(&vals[n.f].p, 3, 2, crate::autodiff::KfacVariant::MonteCarlo { samples: 3, seed: 11 }).unwrap();
        assert_eq!((s.n, s.c, s.samples, bits(&s.seeds)), (3, 2, 3, bits(&want)));
        let none = Curvature::MonteCarloFisher { output: n.f, kind: LossKind::Mse, samples: 0, seed: 11 };
        let e = n.prog.run(Isa::Simd, n.loss, &Run::at(&n.params, &inputs, Mode::Hvp { tangents: &v, k: 1, cotangent: None, curvature: none })).unwrap_err();
        assert!(e.message.contains("needs at least one sample"), "{}", e.message);
    }
}
