//! Linearization reuse: many curvature products at one point pay for the primal work once.
//!
//! A curvature product C·v (H·v, G·v, F·v) runs the primal forward sweep, the primal reverse
//! sweep (the gradient) and the tangent work on v. The primal results do not depend on v: at
//! fixed (program, output, mode, parameters, data) they are the same every product, so Lanczos,
//! CG, Hutchinson and SLQ recompute them identically dozens of times.
//!
//! A [`Tape`] records, in call order, the results of the *costly* primal computations of one run
//! (every `Ctx::primal` call in dual.rs: GEMMs, convolutions and their adjoints, pointwise
//! towers and their derivative arrays, logsumexp and its softmax); a later run of the same key
//! replays them: each such primal is copied from the tape instead of computed. The cheap primal
//! maps (copies, reshapes, slices, sums, broadcast adds) still run: taping them would cost as much
//! memory as they cost time. The tangent code is untouched and reads the same primal bits, so a
//! replayed run is bitwise the run it replays (tested in tests/linearization.rs).
//!
//! [`Linearization`] decides when a tape may be replayed. Its key is everything the sequence of
//! primal calls depends on: the program's version (any node added, or an index input staged,
//! changes it), the output node, the run's mode (wrt and `Mode::key`: the mode, K, cotangent presence, curvature),
//! and the parameters, data and cotangent themselves, compared bit for bit with a copy (an O(P +
//! data) compare per product, against the O(FLOPs) it saves). So a stale tape can never be used:
//! the caller needs no invalidation, and a change of θ or of the data simply records anew.
//!
//! Memory: a tape holds at most the run's own value-and-tangent footprint,
//! (K + 1)·(Σ numel of the nodes + P + data) elements (`Program::min_run_elements`), and at most
//! `cap_bytes`; past either bound (or when an allocation for it fails) recording stops, the tape
//! is dropped, and the runs of that key go fresh. Replay is guarded: a result whose length or
//! type differs from the tape's, or a run that does not consume the whole tape, is an error
//! (never a wrong result). A run with a tape that runs out of memory is retried once without
//! one (a run that fits without reuse must not fail because of it).

use super::dual::Scalar;
use super::program::{ModeKey, Outcome, Program, Run, Wrt};
use crate::error::{Error, ErrorCode, Result};
use crate::kernels::Isa;
use crate::mem::{try_copy, try_vec, try_zeros};
use std::any::Any;
use std::cell::RefCell;

/// The costly primal results of one run, in call order: recording or replaying.
pub struct Tape {
    inner: RefCell<Inner>,
}

struct Inner {
    replay: bool,
    entries: Vec<Box<dyn Any>>,
    /// Next entry to replay.
    cursor: usize,
    bytes: usize,
    budget: usize,
    /// Recording stopped (over budget or out of memory): the run goes on fresh, nothing is kept.
    dropped: bool,
}

/// `lens` zeroed buffers filled by `f`: a primal computed as without a tape.
pub(crate) fn fresh<T: Scalar, const N: usize>(what: &str, lens: [usize; N], f: impl FnOnce(&mut [Vec<T>; N]) -> Result<()>) -> Result<[Vec<T>; N]> {
    let mut out: [Vec<T>; N] = std::array::from_fn(|_| Vec::new());
    for (o, &n) in out.iter_mut().zip(&lens) {
        *o = try_zeros(n, what)?;
    }
    f(&mut out)?;
    Ok(out)
}

impl Tape {
    fn recorder(budget: usize) -> Tape {
        Tape { inner: RefCell::new(Inner { replay: false, entries: Vec::new(), cursor: 0, bytes: 0, budget, dropped: false }) }
    }

    /// The primal results `f` computes into `lens` zeroed buffers: computed and recorded, or
    /// copied from the tape in replay.
    pub(crate) fn primals<T: Scalar, const N: usize>(&self, what: &str, lens: [usize; N], f: impl FnOnce(&mut [Vec<T>; N]) -> Result<()>) -> Result<[Vec<T>; N]> {
        let mut t = self.inner.borrow_mut();
        if t.replay {
            let mut out: [Vec<T>; N] = std::array::from_fn(|_| Vec::new());
            for (o, &n) in out.iter_mut().zip(&lens) {
                let at = t.cursor;
                let rec = t.entries.get(at).and_then(|e| e.downcast_ref::<Vec<T>>());
                match rec {
                    Some(v) if v.len() == n => *o = try_copy(v, what)?,
                    _ => return Err(Error::invalid(format!("internal: replaying the linearization, {what} (result {at}) of {n} values does not match the tape; the run was not the recorded one"))),
                }
                t.cursor += 1;
            }
            return Ok(out);
        }
        drop(t);
        let out = fresh(what, lens, f)?;
        let mut t = self.inner.borrow_mut();
        if !t.dropped {
            let bytes: usize = lens.iter().map(|n| n.saturating_mul(std::mem::size_of::<T>())).fold(0, usize::saturating_add);
            t.dropped = t.bytes.saturating_add(bytes) > t.budget || !t.record(&out);
            t.bytes = t.bytes.saturating_add(bytes);
            if t.dropped {
                t.entries = Vec::new();
            }
        }
        Ok(out)
    }

    /// Whether a finished recording can be replayed (it was not dropped).
    fn into_replay(self) -> Option<Tape> {
        let mut t = self.inner.into_inner();
        if t.dropped {
            return None;
        }
        t.replay = true;
        Some(Tape { inner: RefCell::new(t) })
    }

    fn rewind(&self) {
        self.inner.borrow_mut().cursor = 0;
    }

    /// A replay must have used every recorded result.
    fn finish(&self) -> Result<()> {
        let t = self.inner.borrow();
        if t.replay && t.cursor != t.entries.len() {
            return Err(Error::invalid(format!("internal: the replayed run used {} of the linearization's {} primal results", t.cursor, t.entries.len())));
        }
        Ok(())
    }

    /// Bytes of primal results held.
    pub fn bytes(&self) -> usize {
        self.inner.borrow().bytes
    }
}

impl std::fmt::Debug for Tape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let t = self.inner.borrow();
        write!(f, "Tape {{ {} results, {} bytes, replay: {}, at {} }}", t.entries.len(), t.bytes, t.replay, t.cursor)
    }
}

impl Inner {
    /// Keeps copies of `out`; false when memory ran out.
    fn record<T: Scalar, const N: usize>(&mut self, out: &[Vec<T>; N]) -> bool {
        if self.entries.try_reserve(N).is_err() {
            return false;
        }
        for v in out {
            match try_copy(v, "linearization") {
                Ok(c) => self.entries.push(Box::new(c)),
                Err(_) => return false,
            }
        }
        true
    }
}

/// When a [`Linearization`] records a tape for a new key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Record {
    /// At the first run: for an operator, made for many products at one point.
    First,
    /// At the second run of the same key: a program whose staged point may change every call
    /// (an optimizer's steps, a batched objective staging its batches in turn) then never pays
    /// for a tape it would not replay.
    Repeat,
}

/// Everything the sequence of primal calls of a run depends on, except the values compared
/// in [`Seen`].
#[derive(Clone, Debug, PartialEq)]
struct Key {
    version: u64,
    out: usize,
    wrt: Wrt,
    /// The mode without its values (the cotangent, if any, is compared in [`Seen`]; a Vjps
    /// run's cotangents only ever reach tangents, never a primal).
    mode: ModeKey,
}

/// The point of the last run: its key, copies of its values, and its tape if any.
struct Seen<T> {
    key: Key,
    params: Vec<T>,
    inputs: Vec<Vec<T>>,
    cotangent: Option<Vec<T>>,
    tape: State,
}

enum State {
    /// Seen once, not recorded ([`Record::Repeat`]).
    Once,
    Ready(Tape),
    /// The tape did not fit its bound: runs of this key go fresh.
    TooBig,
}

/// Counts of what [`Linearization::run`] did (for tests and benchmarks).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Reuse {
    /// Runs that computed everything (and did not record).
    pub fresh: usize,
    pub recorded: usize,
    pub replayed: usize,
    /// Bytes of the current tape (0 without one).
    pub tape_bytes: usize,
}

/// A cache of one run's primal results, replayed by the next runs at the same point and mode
/// (see the module docs). One per program.
pub struct Linearization<T> {
    record: Record,
    cap_bytes: usize,
    /// (Boxed: a linearization sits in every staged store, most never used.)
    seen: Option<Box<Seen<T>>>,
    stats: Reuse,
}

impl<T: Scalar> Linearization<T> {
    /// The default bound on a tape's bytes besides the run's own footprint: 1 GiB (a quarter of
    /// wasm32's memory).
    pub const DEFAULT_CAP: usize = 1 << 30;

    pub fn new(record: Record) -> Self {
        Self::with_cap(record, Self::DEFAULT_CAP)
    }
    pub fn with_cap(record: Record, cap_bytes: usize) -> Self {
        Linearization { record, cap_bytes, seen: None, stats: Reuse::default() }
    }
    /// A new bound on the tape's bytes (0: never keep one, every run fresh); drops the tape.
    pub fn set_cap(&mut self, cap_bytes: usize) {
        self.cap_bytes = cap_bytes;
        self.clear();
    }
    /// Drops the tape and the copies of the last point.
    pub fn clear(&mut self) {
        self.seen = None;
        self.stats.tape_bytes = 0;
    }
    pub fn stats(&self) -> Reuse {
        self.stats
    }

    /// [`Program::run`], replaying the primal results of an earlier run at the same point and
    /// mode when there is one (bitwise the same outcome).
    pub fn run(&mut self, prog: &Program, isa: Isa, out: usize, r: &Run<'_, T>) -> Result<Outcome<T>> {
        let key = Key { version: prog.version(), out, wrt: r.wrt, mode: r.mode.key() };
        let same = self.seen.as_ref().is_some_and(|s| s.key == key && s.matches(r));
        if !same {
            self.clear();
            if self.record == Record::First {
                return self.record_run(prog, isa, out, r, key);
            }
            let o = prog.run_taped(isa, out, r, None)?;
            self.stats.fresh += 1;
            self.seen = Seen::of(key, r, State::Once).ok(); // (no memory for the copies: no reuse)
            return Ok(o);
        }
        let seen = self.seen.as_mut().expect("same point");
        match &seen.tape {
            State::Ready(tape) => {
                tape.rewind();
                match prog.run_taped(isa, out, r, Some(tape)).and_then(|o| tape.finish().map(|_| o)) {
                    Ok(o) => {
                        self.stats.replayed += 1;
                        Ok(o)
                    }
                    Err(e) => {
                        // Memory the tape holds may be what the run lacked: without it, fresh.
                        self.clear();
                        self.retry_fresh(prog, isa, out, r, key, e)
                    }
                }
            }
            State::TooBig => {
                self.stats.fresh += 1;
                prog.run_taped(isa, out, r, None)
            }
            State::Once => {
                self.seen = None;
                self.record_run(prog, isa, out, r, key)
            }
        }
    }

    fn record_run(&mut self, prog: &Program, isa: Isa, out: usize, r: &Run<'_, T>, key: Key) -> Result<Outcome<T>> {
        let own = (prog.min_run_elements() as u128) * (r.mode.k() as u128 + 1) * std::mem::size_of::<T>() as u128;
        let tape = Tape::recorder(own.min(self.cap_bytes as u128) as usize);
        let o = match prog.run_taped(isa, out, r, Some(&tape)) {
            Ok(o) => o,
            Err(e) => {
                drop(tape);
                return self.retry_fresh(prog, isa, out, r, key, e);
            }
        };
        self.stats.recorded += 1;
        let bytes = tape.bytes();
        let state = match tape.into_replay() {
            Some(t) => {
                self.stats.tape_bytes = bytes;
                State::Ready(t)
            }
            None => State::TooBig,
        };
        // Without memory for the copies of the point, nothing is kept (the next run is fresh).
        self.seen = Seen::of(key, r, state).ok();
        if self.seen.is_none() {
            self.stats.tape_bytes = 0;
        }
        Ok(o)
    }
}

impl<T: Scalar> Linearization<T> {
    /// After a run with a tape failed with `e`: out of memory, the run again without one (the
    /// tape's memory is freed; a run that fits without reuse must not fail because of it); any
    /// other error is the run's own. The runs of this key then go fresh.
    fn retry_fresh(&mut self, prog: &Program, isa: Isa, out: usize, r: &Run<'_, T>, key: Key, e: Error) -> Result<Outcome<T>> {
        if e.code != ErrorCode::OutOfMemory {
            return Err(e);
        }
        let o = prog.run_taped(isa, out, r, None)?;
        self.stats.fresh += 1;
        self.seen = Seen::of(key, r, State::TooBig).ok();
        Ok(o)
    }
}

/// Bit-for-bit equality (so −0 ≠ +0: they can give different results).
fn same_bits<T: Scalar>(a: &[T], b: &[T]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_f64().to_bits() == y.to_f64().to_bits())
}

impl<T: Scalar> Seen<T> {
    fn of(key: Key, r: &Run<'_, T>, tape: State) -> Result<Box<Self>> {
        let mut inputs = try_vec(r.inputs.len(), "linearization")?;
        for x in r.inputs {
            inputs.push(try_copy(x, "linearization")?);
        }
        let cotangent = r.mode.cotangent().map(|c| try_copy(c, "linearization")).transpose()?;
        let params = try_copy(r.params, "linearization")?;
        Ok(Box::new(Seen { key, params, inputs, cotangent, tape }))
    }
    fn matches(&self, r: &Run<'_, T>) -> bool {
        same_bits(&self.params, r.params)
            && self.inputs.len() == r.inputs.len()
            && self.inputs.iter().zip(r.inputs).all(|(a, b)| same_bits(a, b))
            && match (&self.cotangent, r.mode.cotangent()) {
                (Some(a), Some(b)) => same_bits(a, b),
                (None, None) => true,
                _ => false,
            }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tape with two results, [1, 2, 3] and [], recorded as one call of two outputs.
    fn recorded() -> Tape {
        let t = Tape::recorder(1 << 20);
        let [a, b] = t
            .primals::<f64, 2>("test", [3, 0], |[a, _]| {
                a.copy_from_slice(&[1.0, 2.0, 3.0]);
                Ok(())
            })
            .unwrap();
        assert_eq!((a, b), (vec![1.0, 2.0, 3.0], vec![]));
        t.into_replay().expect("within budget")
    }

    #[test]
    fn replay_returns_the_recorded_results_without_computing() {
        let t = recorded();
        let [a, b] = t.primals::<f64, 2>("test", [3, 0], |_| panic!("a replay computes nothing")).unwrap();
        assert_eq!((a, b), (vec![1.0, 2.0, 3.0], vec![]));
        t.finish().unwrap();
    }

    #[test]
    fn a_replay_that_is_not_the_recorded_run_is_an_error() {
        // Another length, another type, more results than recorded, fewer: errors, not values.
        let t = recorded();
        assert!(t.primals::<f64, 2>("test", [4, 0], |_| Ok(())).unwrap_err().message.contains("does not match the tape"));
        let t = recorded();
        assert!(t.primals::<f32, 2>("test", [3, 0], |_| Ok(())).is_err());
        let t = recorded();
        t.primals::<f64, 2>("test", [3, 0], |_| Ok(())).unwrap();
        assert!(t.primals::<f64, 1>("test", [1], |_| Ok(())).is_err());
        let t = recorded();
        t.primals::<f64, 1>("test", [3], |_| Ok(())).unwrap();
        assert!(t.finish().unwrap_err().message.contains("used 1 of the linearization's 2"));
    }

    #[test]
    fn a_recording_over_its_budget_is_dropped_and_the_run_goes_on() {
        let t = Tape::recorder(16);
        let [a] = t.primals::<f64, 1>("test", [3], |[a]| {
            a.fill(7.0);
            Ok(())
        }).unwrap();
        assert_eq!(a, vec![7.0; 3]); // computed as without a tape
        assert!(t.into_replay().is_none());
    }
}
