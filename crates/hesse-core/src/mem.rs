//! Fallible allocation and checked size arithmetic: every buffer whose size a caller controls is
//! allocated here, so that running out of memory is an `OutOfMemory` error, never an abort (in
//! wasm an abort is a trap that kills the instance), and every size is computed with checked
//! arithmetic, so that an overflow is an error, never a wrapped (silently wrong) shape.
//!
//! While one of these allocations runs, [`in_fallible_allocation`] is true: the wasm bindings'
//! allocator uses it to keep its emergency reserve (for the small bookkeeping allocations that
//! cannot be made fallible: argument strings, error messages) out of reach of big buffers.

use crate::error::{Error, ErrorCode, Result};
use std::alloc::Layout;
use std::cell::Cell;

thread_local! {
    static FALLIBLE: Cell<bool> = const { Cell::new(false) };
}

/// True while a fallible allocation of this module is asking the allocator for memory.
pub fn in_fallible_allocation() -> bool {
    FALLIBLE.with(Cell::get)
}

fn fallible<R>(f: impl FnOnce() -> R) -> R {
    let outer = FALLIBLE.with(|c| c.replace(true));
    let r = f();
    FALLIBLE.with(|c| c.set(outer));
    r
}

/// The error for a buffer of `n` elements of `T` that cannot be allocated.
pub fn oom<T>(what: &str, n: usize) -> Error {
    let bytes = (n as u128) * std::mem::size_of::<T>() as u128;
    Error::new(ErrorCode::OutOfMemory, format!("{what}: cannot allocate {n} elements ({bytes} bytes)"))
}

/// Types whose all-zero bit pattern is their zero (so fresh, already zeroed memory needs no
/// writes: `calloc` can skip the memset for pages it just got from the system).
///
/// # Safety
/// Implementors must be plain data for which all-zero bytes are a valid value.
pub unsafe trait Zeroable: Copy {}
unsafe impl Zeroable for f32 {}
unsafe impl Zeroable for f64 {}
unsafe impl Zeroable for i64 {}

/// `n` zeros, or an `OutOfMemory` error naming `what` and the bytes.
pub fn try_zeros<T: Zeroable>(n: usize, what: &str) -> Result<Vec<T>> {
    let layout = Layout::array::<T>(n).map_err(|_| oom::<T>(what, n))?;
    if layout.size() == 0 {
        return Ok(Vec::new());
    }
    // SAFETY: the layout has a non-zero size; a non-null result is a zeroed block of exactly that
    // layout (n elements of T, all-zero is a valid T), which Vec takes ownership of and frees with
    // the same layout (capacity n, element type T).
    unsafe {
        let p = fallible(|| std::alloc::alloc_zeroed(layout)) as *mut T;
        if p.is_null() {
            return Err(oom::<T>(what, n));
        }
        Ok(Vec::from_raw_parts(p, n, n))
    }
}

/// An empty vector with room for `n` elements.
pub fn try_vec<T>(n: usize, what: &str) -> Result<Vec<T>> {
    let mut v = Vec::new();
    try_reserve(&mut v, n, what)?;
    Ok(v)
}

/// Room for `extra` more elements in `v`.
pub fn try_reserve<T>(v: &mut Vec<T>, extra: usize, what: &str) -> Result<()> {
    fallible(|| v.try_reserve(extra)).map_err(|_| oom::<T>(what, v.len().saturating_add(extra)))
}

/// Room for exactly `extra` more elements in `v` (no geometric growth).
pub fn try_reserve_exact<T>(v: &mut Vec<T>, extra: usize, what: &str) -> Result<()> {
    fallible(|| v.try_reserve_exact(extra)).map_err(|_| oom::<T>(what, v.len().saturating_add(extra)))
}

/// Appends `x` (growing the vector fallibly).
pub fn try_push<T>(v: &mut Vec<T>, x: T, what: &str) -> Result<()> {
    if v.len() == v.capacity() {
        try_reserve(v, 1, what)?;
    }
    v.push(x);
    Ok(())
}

/// A copy of `src`.
pub fn try_copy<T: Copy>(src: &[T], what: &str) -> Result<Vec<T>> {
    let mut v = try_vec(src.len(), what)?;
    v.extend_from_slice(src);
    Ok(v)
}

/// `f` applied to each element of `src`, collected.
pub fn try_map<T, U>(src: &[T], f: impl FnMut(&T) -> U, what: &str) -> Result<Vec<U>> {
    let mut v = try_vec(src.len(), what)?;
    v.extend(src.iter().map(f));
    Ok(v)
}

/// The product of `factors` (a size), or an `OutOfMemory` error naming `what` and the factors:
/// a size past the address space can never be allocated.
pub fn product(what: &str, factors: &[usize]) -> Result<usize> {
    factors.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d)).ok_or_else(|| {
        let parts: Vec<String> = factors.iter().map(|d| d.to_string()).collect();
        Error::new(ErrorCode::OutOfMemory, format!("{what}: a size of {} elements overflows the address space", parts.join(" × ")))
    })
}

/// a + b for a size or a coordinate, or an `InvalidArgument` error naming `what`.
pub fn add(what: &str, a: usize, b: usize) -> Result<usize> {
    a.checked_add(b).ok_or_else(|| Error::invalid(format!("{what}: {a} + {b} overflows the address space")))
}

/// a · b for a geometry value (not an element count), or an `InvalidArgument` error naming `what`.
pub fn mul(what: &str, a: usize, b: usize) -> Result<usize> {
    a.checked_mul(b).ok_or_else(|| Error::invalid(format!("{what}: {a} × {b} overflows the address space")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zeros_are_zero_and_huge_requests_are_errors() {
        let v = try_zeros::<f64>(1000, "t").unwrap();
        assert!(v.len() == 1000 && v.iter().all(|&x| x == 0.0));
        assert!(try_zeros::<f32>(0, "t").unwrap().is_empty());
        let e = try_zeros::<f64>(usize::MAX / 4, "huge buffer").unwrap_err();
        assert_eq!(e.code, ErrorCode::OutOfMemory);
        assert!(e.message.contains("huge buffer"), "{}", e.message);
        assert!(!in_fallible_allocation());
    }

    #[test]
    fn size_arithmetic_is_checked() {
        assert_eq!(product("x", &[2, 3, 4]).unwrap(), 24);
        let e = product("conv2d im2col", &[usize::MAX / 2, 3]).unwrap_err();
        assert_eq!(e.code, ErrorCode::OutOfMemory);
        assert!(e.message.starts_with("conv2d im2col:") && e.message.contains(" × 3"), "{}", e.message);
        assert_eq!(add("pad", usize::MAX, 1).unwrap_err().code, ErrorCode::InvalidArgument);
        assert_eq!(mul("pad", usize::MAX, 2).unwrap_err().code, ErrorCode::InvalidArgument);
    }
}
