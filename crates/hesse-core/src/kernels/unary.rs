//! Elementwise unary kernels. Each op is a type with a scalar formula `f` and, where a vector
//! formula exists, a SIMD one `fv` (default: `f` lane by lane). One `run` loop drives them all.

use super::lanes::{HasLanes, Lanes};
use super::Isa;
use crate::real::Real;

/// One elementwise function, stated once for scalars and (optionally) once for lanes.
pub trait UnaryKernel {
    fn f<T: Real>(x: T) -> T;
    #[inline(always)]
    fn fv<V: Lanes>(x: V) -> V {
        x.map(Self::f)
    }
}

macro_rules! unary_ops {
    ($( $(#[$doc:meta])* $name:ident => |$x:ident| $f:expr, vector |$v:ident| $fv:expr ;)*) => {
        /// The unary ops hesse has kernels for.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum Unary { $($name),* }
        $(
            $(#[$doc])*
            pub struct $name;
            impl UnaryKernel for $name {
                #[inline(always)]
                fn f<T: Real>($x: T) -> T { $f }
                #[inline(always)]
                fn fv<V: Lanes>($v: V) -> V { $fv }
            }
        )*
        /// Applies `op` to `x` into `out` with the kernels of `isa`.
        pub fn unary<T: Real + HasLanes>(isa: Isa, op: Unary, x: &[T], out: &mut [T]) {
            match op { $(Unary::$name => run::<T, $name>(isa, x, out)),* }
        }
        impl Unary {
            pub fn name(self) -> &'static str {
                match self { $(Unary::$name => stringify!($name)),* }
            }
        }
    };
}

unary_ops! {
    /// -x
    Neg => |x| -x, vector |v| v.neg();
    /// |x|
    Abs => |x| x.abs(), vector |v| v.abs();
    /// x²
    Square => |x| x * x, vector |v| v.mul(v);
    /// √x
    Sqrt => |x| x.sqrt(), vector |v| v.sqrt();
    /// max(x, 0); NaN stays NaN.
    Relu => |x| if x.is_nan() || x > T::ZERO { x } else { T::ZERO }, vector |v| v.max(V::splat(V::Elem::ZERO));
    /// eˣ
    Exp => |x| x.exp(), vector |v| v.map(Real::exp);
    /// ln x
    Log => |x| x.ln(), vector |v| v.map(Real::ln);
    /// tanh x
    Tanh => |x| x.tanh(), vector |v| v.tanh();
    /// σ(x) = 1 / (1 + e⁻ˣ), written so that large |x| neither overflows nor loses the tail.
    Sigmoid => |x| sigmoid(x), vector |v| v.map(sigmoid);
}

#[inline(always)]
fn sigmoid<T: Real>(x: T) -> T {
    if x >= T::ZERO {
        T::ONE / (T::ONE + (-x).exp())
    } else {
        let e = x.exp();
        e / (T::ONE + e)
    }
}

fn run<T: Real + HasLanes, K: UnaryKernel>(isa: Isa, x: &[T], out: &mut [T]) {
    assert_eq!(x.len(), out.len(), "unary: input and output lengths differ");
    match isa {
        Isa::Scalar => {
            for (o, &v) in out.iter_mut().zip(x) {
                *o = K::f(v);
            }
        }
        Isa::Simd => {
            let w = <T::V as Lanes>::WIDTH;
            let body = x.len() / w * w;
            for (o, i) in out[..body].chunks_exact_mut(w).zip(x[..body].chunks_exact(w)) {
                // SAFETY: both chunks have exactly `w` elements.
                unsafe { K::fv(T::V::load(i.as_ptr())).store(o.as_mut_ptr()) }
            }
            for (o, &v) in out[body..].iter_mut().zip(&x[body..]) {
                *o = K::f(v);
            }
        }
    }
}
