//! Errors a caller can cause. hesse-core never panics on user input: every such case is an
//! [`Error`] with a stable [`ErrorCode`] (mapped to `HesseError.code` in JS) and a message that
//! names the op and the shapes involved.

use std::fmt;

/// Stable, machine-readable error categories. The JS side sees [`ErrorCode::as_str`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorCode {
    /// Operand shapes do not fit the op (matmul inner dims, broadcasting, conv channels).
    ShapeMismatch,
    /// Data length does not equal the product of the shape.
    LengthMismatch,
    /// Operands of one op have different dtypes.
    DtypeMismatch,
    /// A dtype name that hesse does not know.
    UnknownDtype,
    /// An allocation larger than the address space or than memory can grow to.
    OutOfMemory,
    /// Any other argument out of its domain (axis out of range, zero stride, ...).
    InvalidArgument,
}

impl ErrorCode {
    const ALL: [ErrorCode; 6] = [
        ErrorCode::ShapeMismatch,
        ErrorCode::LengthMismatch,
        ErrorCode::DtypeMismatch,
        ErrorCode::UnknownDtype,
        ErrorCode::OutOfMemory,
        ErrorCode::InvalidArgument,
    ];
    /// The code of [`ErrorCode::as_str`]'s name (e.g. from an error a JS callback rethrew).
    pub fn parse(name: &str) -> Option<ErrorCode> {
        Self::ALL.into_iter().find(|c| c.as_str() == name)
    }
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::ShapeMismatch => "SHAPE_MISMATCH",
            ErrorCode::LengthMismatch => "LENGTH_MISMATCH",
            ErrorCode::DtypeMismatch => "DTYPE_MISMATCH",
            ErrorCode::UnknownDtype => "UNKNOWN_DTYPE",
            ErrorCode::OutOfMemory => "OUT_OF_MEMORY",
            ErrorCode::InvalidArgument => "INVALID_ARGUMENT",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    pub code: ErrorCode,
    pub message: String,
}

impl Error {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Error { code, message: message.into() }
    }
    pub fn shape(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::ShapeMismatch, message)
    }
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidArgument, message)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;

/// Formats a shape as NumPy prints it: `[2, 3]`.
pub fn fmt_shape(shape: &[usize]) -> String {
    format!("{shape:?}")
}
