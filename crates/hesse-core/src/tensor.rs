//! Dense row-major tensors of f32 or f64 with a shape.

use crate::error::{fmt_shape, Error, ErrorCode, Result};
use crate::real::Real;
use crate::shape::numel;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dtype {
    F32,
    F64,
}

impl Dtype {
    pub fn parse(name: &str) -> Result<Dtype> {
        match name {
            "float32" | "f32" => Ok(Dtype::F32),
            "float64" | "f64" => Ok(Dtype::F64),
            _ => Err(Error::new(ErrorCode::UnknownDtype, format!("unknown dtype '{name}': use 'float32' or 'float64'"))),
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Dtype::F32 => "float32",
            Dtype::F64 => "float64",
        }
    }
    pub fn size_of(self) -> usize {
        match self {
            Dtype::F32 => 4,
            Dtype::F64 => 8,
        }
    }
}

/// The storage of a tensor: one contiguous buffer per dtype.
#[derive(Clone, Debug, PartialEq)]
pub enum Data {
    F32(Vec<f32>),
    F64(Vec<f64>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    shape: Vec<usize>,
    data: Data,
}

pub use crate::mem::try_zeros;

/// Types that can live in a [`Tensor`]; lets generic code build and borrow storage.
pub trait Element: Real {
    const DTYPE: Dtype;
    fn wrap(v: Vec<Self>) -> Data;
    fn view(d: &Data) -> Option<&[Self]>;
}
impl Element for f32 {
    const DTYPE: Dtype = Dtype::F32;
    fn wrap(v: Vec<f32>) -> Data {
        Data::F32(v)
    }
    fn view(d: &Data) -> Option<&[f32]> {
        match d {
            Data::F32(v) => Some(v),
            _ => None,
        }
    }
}
impl Element for f64 {
    const DTYPE: Dtype = Dtype::F64;
    fn wrap(v: Vec<f64>) -> Data {
        Data::F64(v)
    }
    fn view(d: &Data) -> Option<&[f64]> {
        match d {
            Data::F64(v) => Some(v),
            _ => None,
        }
    }
}

impl Tensor {
    /// A tensor over `data`, which must hold exactly `prod(shape)` elements.
    pub fn new<T: Element>(data: Vec<T>, shape: &[usize]) -> Result<Tensor> {
        let n = numel(shape)?;
        if data.len() != n {
            return Err(Error::new(
                ErrorCode::LengthMismatch,
                format!("tensor: data has {} elements but shape {} needs {n}", data.len(), fmt_shape(shape)),
            ));
        }
        Ok(Tensor { shape: shape.to_vec(), data: T::wrap(data) })
    }

    /// Copies `data` into a new tensor (the allocation is checked, not aborted).
    pub fn from_slice<T: Element>(data: &[T], shape: &[usize]) -> Result<Tensor> {
        let n = numel(shape)?;
        if data.len() != n {
            return Err(Error::new(
                ErrorCode::LengthMismatch,
                format!("tensor: data has {} elements but shape {} needs {n}", data.len(), fmt_shape(shape)),
            ));
        }
        let mut v = try_zeros::<T>(n, "tensor")?;
        v.copy_from_slice(data);
        Tensor::new(v, shape)
    }

    /// A zero tensor; an `OutOfMemory` error naming the shape where memory cannot hold it.
    pub fn zeros(shape: &[usize], dtype: Dtype) -> Result<Tensor> {
        let n = numel(shape)?;
        let what = format!("tensor of shape {} ({})", fmt_shape(shape), dtype.name());
        match dtype {
            Dtype::F32 => Tensor::new(try_zeros::<f32>(n, &what)?, shape),
            Dtype::F64 => Tensor::new(try_zeros::<f64>(n, &what)?, shape),
        }
    }

    pub fn shape(&self) -> &[usize] {
        &self.shape
    }
    pub fn ndim(&self) -> usize {
        self.shape.len()
    }
    pub fn len(&self) -> usize {
        match &self.data {
            Data::F32(v) => v.len(),
            Data::F64(v) => v.len(),
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn dtype(&self) -> Dtype {
        match self.data {
            Data::F32(_) => Dtype::F32,
            Data::F64(_) => Dtype::F64,
        }
    }
    pub fn data(&self) -> &Data {
        &self.data
    }
    /// Mutable storage (the bindings fill a new tensor through it).
    pub fn data_mut(&mut self) -> &mut Data {
        &mut self.data
    }
    /// Bytes of element storage (what the memory accounting of the bindings counts).
    pub fn nbytes(&self) -> usize {
        self.len() * self.dtype().size_of()
    }

    /// The elements as `T`, or a dtype error naming `op`.
    pub fn as_slice<T: Element>(&self, op: &str) -> Result<&[T]> {
        T::view(&self.data).ok_or_else(|| {
            Error::new(
                ErrorCode::DtypeMismatch,
                format!("{op}: expected a {} tensor, got {} of shape {}", T::DTYPE.name(), self.dtype().name(), fmt_shape(&self.shape)),
            )
        })
    }

    /// Elements widened to f64 (for export and tests).
    pub fn to_f64_vec(&self) -> Vec<f64> {
        match &self.data {
            Data::F32(v) => v.iter().map(|&x| x as f64).collect(),
            Data::F64(v) => v.clone(),
        }
    }

    /// Same data, new shape with the same element count.
    pub fn reshape(&self, shape: &[usize]) -> Result<Tensor> {
        let n = numel(shape)?;
        if n != self.len() {
            return Err(Error::shape(format!(
                "reshape: cannot reshape {} ({} elements) to {} ({n} elements)",
                fmt_shape(&self.shape),
                self.len(),
                fmt_shape(shape)
            )));
        }
        Ok(Tensor { shape: shape.to_vec(), data: self.data.clone() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrong_length_is_reported_with_shape() {
        let e = Tensor::from_slice(&[1.0f32, 2.0, 3.0], &[2, 2]).unwrap_err();
        assert_eq!(e.code, ErrorCode::LengthMismatch);
        assert!(e.message.contains("[2, 2]"));
    }

    #[test]
    fn huge_request_is_an_error_not_an_abort() {
        let e = Tensor::zeros(&[1 << 40, 1 << 30], Dtype::F32).unwrap_err();
        assert_eq!(e.code, ErrorCode::OutOfMemory);
    }

    #[test]
    fn dtype_names() {
        assert_eq!(Dtype::parse("float64").unwrap(), Dtype::F64);
        assert_eq!(Dtype::parse("int8").unwrap_err().code, ErrorCode::UnknownDtype);
    }
}
