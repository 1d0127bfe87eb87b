//! Shape arithmetic: element counts without overflow, NumPy broadcasting, axis normalization.

use crate::error::{fmt_shape, Error, ErrorCode, Result};

/// Product of the non-zero dims of `shape`, None where it overflows. A shape is valid when
/// this fits, so that every partial product of its dims fits too (even in an empty tensor, whose
/// other dims are still multiplied by the kernels' index arithmetic).
pub fn extent(shape: &[usize]) -> Option<usize> {
    shape.iter().filter(|&&d| d != 0).try_fold(1usize, |acc, &d| acc.checked_mul(d))
}

/// Number of elements of `shape`, or an error where its dims overflow the address space.
pub fn numel(shape: &[usize]) -> Result<usize> {
    let e = extent(shape).ok_or_else(|| {
        Error::new(ErrorCode::OutOfMemory, format!("shape {} has more elements than memory can address", fmt_shape(shape)))
    })?;
    Ok(if shape.contains(&0) { 0 } else { e })
}

/// Row-major strides of a contiguous tensor.
pub fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1usize; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1];
    }
    s
}

/// NumPy broadcasting: align trailing dims; each pair must be equal or one of them 1.
pub fn broadcast(op: &str, a: &[usize], b: &[usize]) -> Result<Vec<usize>> {
    let n = a.len().max(b.len());
    let mut out = vec![0; n];
    for i in 0..n {
        let da = if i < n - a.len() { 1 } else { a[i - (n - a.len())] };
        let db = if i < n - b.len() { 1 } else { b[i - (n - b.len())] };
        out[i] = if da == db || db == 1 {
            da
        } else if da == 1 {
            db
        } else {
            return Err(Error::shape(format!(
                "{op}: shapes {} and {} cannot be broadcast together (dim {i}: {da} vs {db})",
                fmt_shape(a),
                fmt_shape(b)
            )));
        };
    }
    Ok(out)
}

/// Strides of `shape` viewed as `out` after broadcasting: 0 along broadcast dims.
pub fn broadcast_strides(shape: &[usize], out: &[usize]) -> Vec<usize> {
    let own = strides(shape);
    let lead = out.len() - shape.len();
    (0..out.len())
        .map(|i| if i < lead || shape[i - lead] == 1 { 0 } else { own[i - lead] })
        .collect()
}

/// Resolves a possibly negative axis (Python style) against `ndim`.
pub fn normalize_axis(op: &str, axis: i64, shape: &[usize]) -> Result<usize> {
    let nd = shape.len() as i64;
    let a = if axis < 0 { axis + nd } else { axis };
    if a < 0 || a >= nd {
        return Err(Error::invalid(format!("{op}: axis {axis} is out of range for shape {}", fmt_shape(shape))));
    }
    Ok(a as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcasting_follows_numpy() {
        assert_eq!(broadcast("add", &[2, 3], &[3]).unwrap(), vec![2, 3]);
        assert_eq!(broadcast("add", &[4, 1, 5], &[3, 1]).unwrap(), vec![4, 3, 5]);
        assert_eq!(broadcast("add", &[], &[2]).unwrap(), vec![2]);
        let e = broadcast("add", &[2, 3], &[4]).unwrap_err();
        assert_eq!(e.code, ErrorCode::ShapeMismatch);
        assert!(e.message.contains("[2, 3]") && e.message.contains("[4]"), "{}", e.message);
    }

    #[test]
    fn numel_overflow_is_an_error() {
        assert!(numel(&[usize::MAX, 2]).is_err());
        // Empty, but its other dims still overflow: refused (kernels multiply them).
        assert!(numel(&[usize::MAX, 2, 0]).is_err());
        assert_eq!(numel(&[]).unwrap(), 1);
        assert_eq!(numel(&[3, 0, 2]).unwrap(), 0);
    }
}
