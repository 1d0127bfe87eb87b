//! A program as bytes and back (a worker gets the program its objective runs), and one program
//! spliced into another (a worker's objective records the serialized model where a model would
//! record itself).
//!
//! The bytes are postcard (serde, varint integers) of [`Wire`]: a format tag, the nodes in order
//! (op, inputs, shape), the index inputs with their staged values, and the `sequential` layer
//! records. Nothing derived is stored: reading the bytes back replays every node through
//! [`Program::push`] (and `param`, `input`, `index_input`), so the result passed the same checks
//! as a program built by the builders — input ids before the node, shape inference, CSR maps,
//! conv geometry — and a corrupt byte string is an error, never a program that traps when run.

use super::dual::SparseMap;
use super::op::Op;
use super::program::{LayerRecord, Node, Program};
use crate::error::{fmt_shape, Error, ErrorCode, Result};
use serde::{Deserialize, Serialize};

/// Changes whenever the encoding of a node changes: old bytes are then refused by name.
const FORMAT: &str = "hesse-program/1";

#[derive(Serialize, Deserialize)]
struct Wire {
    format: String,
    nodes: Vec<Node>,
    /// Shape and staged values of each index input slot.
    index_inputs: Vec<(Vec<usize>, Vec<i64>)>,
    layers: Vec<LayerRecord>,
}

/// A `SparseMap` as read: its label by name, which becomes the one known label of that name
/// (the label is a `&'static str`; an unknown one is corrupt input). Its CSR structure is checked
/// when its node is replayed (`infer_shape`).
#[derive(Deserialize)]
pub(crate) struct WireMap {
    label: String,
    in_len: usize,
    offsets: Vec<usize>,
    cols: Vec<usize>,
    weights: Option<Vec<f64>>,
}

const MAP_LABELS: [&str; 8] = ["avg_pool2d", "expand", "gather", "max", "max_pool2d", "pad", "slice", "where"];

impl<'de> Deserialize<'de> for SparseMap {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<SparseMap, D::Error> {
        let w = WireMap::deserialize(d)?;
        let label = MAP_LABELS.iter().find(|&&k| k == w.label).copied().ok_or_else(|| serde::de::Error::custom(format!("unknown sparse map '{}'", w.label.escape_debug())))?;
        Ok(SparseMap { label, in_len: w.in_len, offsets: w.offsets, cols: w.cols, weights: w.weights })
    }
}

/// How many inputs each op takes (the builders always give these; corrupt bytes may not, and the
/// shape rules index their inputs).
fn arity_ok(op: &Op, n: usize) -> bool {
    match op {
        Op::Param { .. } | Op::Input { .. } | Op::Const(_) => n == 0,
        Op::Add | Op::Sub | Op::Mul | Op::Div | Op::MatMul { .. } | Op::Conv2d(_) | Op::Pick => n == 2,
        Op::Concat { .. } => n >= 1,
        _ => n == 1,
    }
}

fn corrupt(what: String) -> Error {
    Error::new(ErrorCode::InvalidArgument, format!("program bytes: {what} (not bytes written by toBytes of this version, or corrupted)"))
}

impl Program {
    /// The program as bytes ([`Program::from_bytes`] reads them back).
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let index_inputs = (0..self.n_index_inputs())
            .map(|s| (self.index_input_shape(s).unwrap_or_default().to_vec(), self.index_values[s].as_ref().clone()))
            .collect();
        let wire = Wire { format: FORMAT.into(), nodes: self.nodes().to_vec(), index_inputs, layers: self.layers().to_vec() };
        postcard::to_allocvec(&wire).map_err(|e| Error::new(ErrorCode::OutOfMemory, format!("program to bytes: {e}")))
    }

    /// The program `to_bytes` wrote, rebuilt node by node through the builders' checks.
    pub fn from_bytes(bytes: &[u8]) -> Result<Program> {
        let wire: Wire = postcard::from_bytes(bytes).map_err(|e| corrupt(format!("{e} in {} bytes", bytes.len())))?;
        if wire.format != FORMAT {
            return Err(corrupt(format!("format '{}', this build reads '{FORMAT}'", wire.format.escape_debug())));
        }
        let mut p = Program::new();
        for (s, (shape, values)) in wire.index_inputs.into_iter().enumerate() {
            p.index_input(&shape).and_then(|slot| p.set_index_input(slot, values)).map_err(|e| corrupt(format!("index input {s}: {}", e.message)))?;
        }
        for (i, n) in wire.nodes.into_iter().enumerate() {
            replay(&mut p, i, n.op, &n.ins, &n.shape)?;
        }
        for l in wire.layers {
            check_layer(&p, &l)?;
            p.layers.push(l);
        }
        Ok(p)
    }

    /// Appends the nodes 0..=`out` of `sub` (a model applied to its input 0, as a program of its
    /// own) to this program, applied to this program's node `x` (a float input) or, for a model
    /// whose input is an index input, to this program's index input slot `x_index`; `sub`'s
    /// parameters become the next parameters here, its other index inputs new index inputs (with
    /// their staged values). Returns the node of `out` here. All or nothing.
    pub fn splice(&mut self, sub: &Program, out: usize, x: Option<usize>, x_index: Option<usize>) -> Result<usize> {
        let mark = self.mark();
        let r = self.splice_nodes(sub, out, x, x_index);
        if r.is_err() {
            self.rollback(mark);
        }
        r
    }

    fn splice_nodes(&mut self, sub: &Program, out: usize, x: Option<usize>, x_index: Option<usize>) -> Result<usize> {
        sub.shape(out)?;
        let bad = |m: String| Error::invalid(format!("splice: {m}"));
        let mut slots = Vec::with_capacity(sub.n_index_inputs());
        for s in 0..sub.n_index_inputs() {
            let shape = sub.index_input_shape(s).unwrap_or_default();
            match x_index {
                Some(xi) if s == 0 => {
                    if self.index_input_shape(xi) != Some(shape) {
                        return Err(bad(format!("the model's index input is {}, this program's slot {xi} is {:?}", fmt_shape(shape), self.index_input_shape(xi))));
                    }
                    slots.push(xi);
                }
                _ => {
                    let slot = self.index_input(shape)?;
                    self.set_index_input(slot, sub.index_values[s].as_ref().clone())?;
                    slots.push(slot);
                }
            }
        }
        let base = self.n_params();
        let mut map = Vec::with_capacity(out + 1);
        for (i, n) in sub.nodes()[..=out].iter().enumerate() {
            let ins: Vec<usize> = n.ins.iter().map(|&j| map[j]).collect();
            let id = match &n.op {
                Op::Param { .. } => self.param(&n.shape)?,
                Op::Input { slot: 0 } if x.is_some() => {
                    let x = x.unwrap_or_default();
                    if self.shape(x)? != n.shape.as_slice() {
                        return Err(bad(format!("the model's input is {}, node {x} here is {}", fmt_shape(&n.shape), fmt_shape(self.shape(x)?))));
                    }
                    x
                }
                Op::Input { slot } => return Err(bad(format!("node {i} of the model is its float input {slot}, which has nothing to stand for here"))),
                Op::GatherInput { axis, slot, index_shape } => {
                    let slot = *slots.get(*slot).ok_or_else(|| bad(format!("node {i}: no index input {slot}")))?;
                    self.push(Op::GatherInput { axis: *axis, slot, index_shape: index_shape.clone() }, &ins, Some(&n.shape))?
                }
                op => self.push(op.clone(), &ins, Some(&n.shape))?,
            };
            map.push(id);
        }
        for l in sub.layers() {
            if l.input <= out && l.output <= out {
                let shift = |(o, n): (usize, usize)| (o + base, n);
                self.layers.push(LayerRecord { input: map[l.input], output: map[l.output], weight: shift(l.weight), bias: l.bias.map(shift), ..l.clone() });
            }
        }
        Ok(map[out])
    }
}

/// Node `i` of the bytes, added to `p` through the builder it came from; its shape must come out
/// as stored.
fn replay(p: &mut Program, i: usize, op: Op, ins: &[usize], shape: &[usize]) -> Result<()> {
    if !arity_ok(&op, ins.len()) {
        return Err(corrupt(format!("node {i} ({}) has {} inputs", op.name(), ins.len())));
    }
    if let Some(&j) = ins.iter().find(|&&j| j >= i) {
        return Err(corrupt(format!("node {i} ({}) reads node {j}, which is not before it", op.name())));
    }
    let name = op.name();
    let id = match op {
        Op::Param { offset } if offset == p.n_params() => p.param(shape).map_err(|e| corrupt(format!("node {i} (param): {}", e.message)))?,
        Op::Input { slot } if slot == p.n_inputs() => p.input(shape).map_err(|e| corrupt(format!("node {i} (input): {}", e.message)))?,
        Op::Param { .. } | Op::Input { .. } => return Err(corrupt(format!("node {i} ({name}) is out of order"))),
        Op::GatherInput { slot, ref index_shape, .. } if p.index_input_shape(slot) != Some(index_shape.as_slice()) => {
            return Err(corrupt(format!("node {i} (gather) reads index input {slot} as {}, which the bytes do not hold", fmt_shape(index_shape))));
        }
        op => p.push(op, ins, Some(shape)).map_err(|e| corrupt(format!("node {i} ({name}): {}", e.message)))?,
    };
    if id != i || p.shape(id)? != shape {
        return Err(corrupt(format!("node {i} ({name}) has shape {}, its inputs give {}", fmt_shape(shape), fmt_shape(p.shape(id)?))));
    }
    Ok(())
}

/// A layer record points at nodes of the program and at parameter ranges inside P.
fn check_layer(p: &Program, l: &LayerRecord) -> Result<()> {
    let n = p.nodes().len();
    let inside = |(o, s): (usize, usize)| o.checked_add(s).is_some_and(|e| e <= p.n_params());
    if l.input >= n || l.output >= n || !inside(l.weight) || !l.bias.is_none_or(inside) {
        return Err(corrupt(format!("layer {} points outside the program ({n} nodes, P = {})", l.index, p.n_params())));
    }
    Ok(())
}
