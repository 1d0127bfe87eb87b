//! Programs: a traced function as a list of nodes (op, inputs, shape), built once and run many
//! times in four modes from one forward and one reverse sweep:
//!
//! | mode     | forward on     | reverse sweep | result                                  |
//! |----------|----------------|---------------|-----------------------------------------|
//! | value    | plain          | no            | f                                       |
//! | gradient | plain          | plain         | f, ∇f                                   |
//! | jvp      | duals (K tan.) | no            | f, J·v₁…J·v_K                           |
//! | hvp      | duals (K tan.) | duals         | f, ∇f, H·v₁…H·v_K (forward-over-reverse)|
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

/// A request to [`Program::run`].
pub struct Run<'a, T> {
    pub params: &'a [T],
    pub inputs: &'a [&'a [T]],
    pub wrt: Wrt,
    /// K tangent directions of the variable, [K, n] row-major (empty for K = 0).
    pub tangents: &'a [T],
    pub k: usize,
    /// Run the reverse sweep (gradient, and with K > 0 the Hessian-vector products).
    pub backward: bool,
    /// Seed of the reverse sweep for a non-scalar output (output-shaped); None: a scalar's 1.
    pub cotangent: Option<&'a [T]>,
    /// K cotangents of the output at once, [K, numel(output)] (with `k` = K and no tangents):
    /// the reverse sweep then returns Jᵀu₁ … Jᵀu_K as the gradient's tangents (rows of the
    /// Jacobian for unit uₖ). Empty otherwise.
    pub cotangents: &'a [T],
    /// Report NaN or ±∞ in parameters, inputs and tangents as errors.
    pub check_finite: bool,
    /// What the tangents of the gradient are: H·v (default), G·v or F·v.
    pub curvature: Curvature,
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
        // K tangents of the widest value: every K·n product of the run below fits.
        let widest = self.nodes[..=out].iter().filter_map(|n| crate::shape::extent(&n.shape)).max().unwrap_or(0).max(n_var);
        product(&format!("{} tangents of {widest} values", r.k), &[r.k, widest])?;
        // K is bounded by the K·n values passed in, except for an empty variable (or output):
        // there nothing bounds the K-fold loops of the rules, so cap it.
        let data = if r.cotangents.is_empty() { n_var } else { numel(&self.nodes[out].shape)? };
        if data == 0 && r.k > MAX_EMPTY_K {
            return Err(Error::invalid(format!("{} directions of an empty variable or output: at most {MAX_EMPTY_K}", r.k)));
        }
        if !r.cotangents.is_empty() {
            let m = numel(&self.nodes[out].shape)?;
            if !r.tangents.is_empty() || r.cotangents.len() != r.k * m {
                return Err(Error::new(
                    ErrorCode::LengthMismatch,
                    format!("{} cotangents of the output {} need {} values and no tangents, got {} and {}", r.k, fmt_shape(&self.nodes[out].shape), r.k * m, r.cotangents.len(), r.tangents.len()),
                ));
            }
        } else if r.tangents.len() != r.k * n_var {
            return Err(Error::new(
                ErrorCode::LengthMismatch,
                format!("{} tangent direction(s) of length {n_var} need {} values, got {}", r.k, r.k * n_var, r.tangents.len()),
            ));
        }
        let out_shape = &self.nodes[out].shape;
        match r.cotangent {
            Some(c) if c.len() != numel(out_shape)? => {
                return Err(Error::shape(format!("the cotangent has {} values but the output has shape {}", c.len(), fmt_shape(out_shape))))
            }
            None if r.backward && r.cotangents.is_empty() && numel(out_shape)? != 1 => {
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
            finite("the tangent directions", r.tangents)?;
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

    fn run_with<T: Scalar>(&self, isa: Isa, out: usize, r: &Run<'_, T>, capture: &[usize], tape: Option<&Tape>) -> Result<Outcome<T>> {
        if let Some(&bad) = capture.iter().find(|&&c| c > out) {
            return Err(Error::invalid(format!("cannot capture node {bad}: the run stops at node {out}")));
        }
        let n_var = self.check(out, r)?;
        let cx = Ctx { isa, k: r.k, index_inputs: &self.index_values, tape };
        let dep = self.depends_on(r.wrt);
        // The tangents of the variable's slice [offset, offset + n) for all K directions.
        let leaf_tangents = |offset: usize, n: usize| -> Result<Option<Vec<T>>> {
            if r.k == 0 || !r.cotangents.is_empty() {
                return Ok(None);
            }
            let mut t = try_vec(r.k * n, "leaf tangents")?;
            (0..r.k).for_each(|k| t.extend_from_slice(&r.tangents[k * n_var + offset..k * n_var + offset + n]));
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
                    node.op.eval(&cx, &ins, &node.shape)?
                }
            };
            vals.push(v);
        }
        let mut captured: Vec<(Dual<T>, Option<Dual<T>>)> = try_vec(capture.len(), "captured values")?;
        for &c in capture {
            captured.push((vals[c].try_clone("captured values")?, None));
        }
        if !r.backward && r.cotangent.is_none() && r.cotangents.is_empty() {
            return Ok(Outcome { output: vals.pop().expect("out exists"), grad: None, captured });
        }

        // Reverse sweep, on duals when K > 0: gradients and their tangents H·v together.
        let seed = match r.cotangent {
            Some(c) => try_copy(c, "cotangent")?,
            None => vec![T::ONE],
        };
        let mut grads: Vec<Option<Dual<T>>> = try_vec(out + 1, "node gradients")?;
        grads.resize_with(out + 1, || None);
        let out_shape = self.nodes[out].shape.clone();
        grads[out] = Some(if r.cotangents.is_empty() {
            Dual::constant(out_shape, seed)
        } else {
            // Zero primal, K cotangents as tangents: with no forward tangents the rules carry
            // only these back, linearly (Jᵀuₖ).
            Dual { p: try_zeros(r.cotangents.len() / r.k.max(1), "output cotangents")?, shape: out_shape, t: Some(try_copy(r.cotangents, "output cotangents")?) }
        });
        let gt = if r.k > 0 { Some(try_zeros(r.k * n_var, "gradient tangents")?) } else { None };
        let mut gv = Dual { shape: vec![n_var], p: try_zeros(n_var, "gradient")?, t: gt };
        let gauss_newton_at = match r.curvature {
            Curvature::Hessian => None,
            Curvature::Ggn { output } | Curvature::EmpiricalFisher { output } | Curvature::MonteCarloFisher { output, .. } => Some(self.check_gauss_newton(output, out, &dep)?),
        };
        for i in (0..=out).rev() {
            let Some(mut g) = grads[i].take() else { continue };
            for (slot, _) in capture.iter().enumerate().filter(|(_, &c)| c == i) {
                captured[slot].1 = Some(g.try_clone("captured gradients")?);
            }
            if let Some((f, ancestors)) = &gauss_newton_at {
                if i == *f {
                    // Here g.t = Hℓ·J·v (the loss part ran forward-over-reverse). For the
                    // Fisher, replace it by the per-sample outer products of the gradient.
                    match r.curvature {
                        Curvature::EmpiricalFisher { .. } => g.t = fisher_tangents(&g, &vals[i], r.k)?,
                        Curvature::MonteCarloFisher { kind, samples, seed, .. } => g.t = mc_fisher_tangents(kind, samples, seed, &vals[i], r.k)?,
                        _ => {}
                    }
                    // From here down the sweep is first order: without the forward tangents
                    // the rules only carry g's tangents back, giving Jᵀ(Hℓ J v).
                    for &j in ancestors {
                        vals[j].t = None;
                    }
                }
            }
            let node = &self.nodes[i];
            let leaf_offset = match node.op {
                Op::Param { offset } if r.wrt == Wrt::Params => Some(offset),
                Op::Input { slot } if r.wrt == Wrt::Input(slot) => Some(0),
                _ => None,
            };
            if let Some(off) = leaf_offset {
                scatter(&mut gv, &g, off, n_var, r.k);
                continue;
            }
            // An empty output passes nothing back (its inputs' gradients are zero).
            if !dep[i] || node.shape.contains(&0) {
                continue;
            }
            let ins: Vec<&Dual<T>> = node.ins.iter().map(|&j| &vals[j]).collect();
            let needs: Vec<bool> = node.ins.iter().map(|&j| dep[j]).collect();
            for (j, gj) in node.op.vjp(&cx, &ins, &vals[i], g, &needs)?.into_iter().enumerate() {
                if let Some(gj) = gj {
                    dual::accumulate(&cx, &mut grads[node.ins[j]], gj)?;
                }
            }
        }
        Ok(Outcome { output: vals.swap_remove(out), grad: Some(gv), captured })
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

/// F·u for the Monte Carlo Fisher: per sample i, Σₛ sᵢ,ₛ⟨sᵢ,ₛ, uᵢ⟩ with sᵢ,ₛ the scaled loss
/// gradients at sampled labels (the K-FAC Monte Carlo seeds), u = J·v the output tangents.
fn mc_fisher_tangents<T: Scalar>(kind: super::LossKind, samples: usize, seed: u64, f: &Dual<T>, k: usize) -> Result<Option<Vec<T>>> {
    let Some(u) = f.t.as_ref() else { return Ok(None) };
    // One label drawn per row (position) of the output, as the Monte Carlo Gauss–Newton factor.
    let (n, c) = kind.rows(&f.shape, "Monte Carlo Fisher")?;
    if samples == 0 {
        return Err(Error::invalid(format!("Monte Carlo Fisher: needs at least one sample (network output {})", fmt_shape(&f.shape))));
    }
    if n * c == 0 {
        return Ok(Some(Vec::new()));
    }
    let fv = try_map(&f.p, |v| v.to_f64(), "Monte Carlo Fisher")?;
    let seeds = kind.output_space_seeds(&fv, n, c, super::KfacVariant::MonteCarlo { samples, seed })?;
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
    Ok(Some(w))
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
