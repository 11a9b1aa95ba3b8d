//! What generic numeric code needs, in one import: `use perturb::prelude::*;`.
//!
//! - [`ArrayOps`]: an [`Array`] with `+ - * /` and unary `-` (every array type is one); bound
//!   generic code by it to write it with operators.
//! - [`Array`] (every tensor method), [`Element`] (`f32`/`f64`), [`Tensor`], [`Float`] (for the
//!   scalar code of [`Dual`](crate::Dual) and [`Var`](crate::Var)), [`Error`] (for the `try_`
//!   forms), [`Tree`] (parameter trees).
//!
//! The `std::ops` traits are not here: operators need none in scope, and with them in scope a
//! method call such as `x.add(&y)` on an owned `x` would be the operator's (taking `x` by
//! value) rather than [`Array::add`].
//!
//! # Writing a function once, with operators
//!
//! A function generic over the array type runs on plain tensors and under every transform
//! (`grad`, `jvp`, `jacfwd`, `hessian`, `hvp`, ...), which call it with their own array types.
//! Bound it by `A: ArrayOps<Elem = f64>` (or `A: ArrayOps` for either element type) and write
//! the maths:
//!
//! ```
//! use perturb::prelude::*;
//! use perturb::tensor::{grad, hessian, hvp, jvp};
//!
//! // Rosenbrock: sum(100 (x[1..] - x[..n-1]^2)^2 + (x[..n-1] - 1)^2).
//! fn rosenbrock<A: ArrayOps<Elem = f64>>(x: &A) -> A {
//!     let n = x.shape()[0];
//!     let (head, tail) = (x.narrow(0, 0, n - 1), x.narrow(0, 1, n - 1));
//!     ((tail - head.square()).square() * 100.0 + (head - 1.0).square()).sum_all()
//! }
//!
//! let x = Tensor::vector(&[1.0, 1.0]);
//! assert_eq!(rosenbrock(&x).to_vec(), vec![0.0]);
//! assert_eq!(grad(|x| Ok(rosenbrock(x)), &x).unwrap().to_vec(), vec![0.0, 0.0]);
//! // At the minimum the Hessian is [[802, -400], [-400, 200]] (differentiate twice by hand).
//! let h = hessian(|x| Ok(rosenbrock(x)), &x).unwrap();
//! assert_eq!(h.to_vec(), vec![802.0, -400.0, -400.0, 200.0]);
//! let v = Tensor::vector(&[1.0, 0.0]);
//! assert_eq!(hvp(|x| Ok(rosenbrock(x)), &x, &v).unwrap().to_vec(), vec![802.0, -400.0]);
//! let (_, slope) = jvp(|x| Ok(rosenbrock(x)), &x, &v).unwrap();
//! assert_eq!(slope.to_vec(), vec![0.0]);
//! ```
//!
//! What the operators take, in generic code (`x`, `y` of type `A`, `&A` for references):
//!
//! | form | generic code | why |
//! |---|---|---|
//! | `x + y`, `x + &y`, `-x` | yes | owned on the left: stated by [`ArrayOps`] |
//! | `&x + &y`, `&x + y` | write `x.clone() + y` | a trait cannot state an implied bound on `&Self` |
//! | `x * 2.0` | with `Elem = f64` (or `f32`) | the constant is of the element type |
//! | `x * A::elem(2.0)` | yes | [`Array::elem`] converts an `f64` to `A::Elem` |
//! | `2.0 * x` | concrete types only | the constant's type would carry the bound |
//!
//! A clone of an array copies no elements (tensors share their storage, tape variables are
//! handles), so `x.clone() * y` costs what `&x * &y` would. Concrete types ([`Tensor`],
//! [`TensorVar`](crate::tensor::TensorVar), ...) have every form, references and constants on
//! either side included.
//!
//! The operators panic on a shape mismatch, naming the operation and the shapes; code that
//! wants a [`Result`] uses the `try_` methods (`x.try_add(&y)?`). In code bounded by
//! `ArrayOps`, a method call on an owned value with an operator's name (`x.mul(&y)` with
//! `x: A`) is the operator's and takes `x` by value: write `Array::mul(&x, &y)` to keep `x`,
//! or the operator.
//!
//! A [`TensorFn`](crate::tensor::TensorFn)'s `call` is bounded by [`Array`] alone (the trait
//! fixes its signature), so its body uses the methods; closures passed to the transforms, as
//! above, can call functions bounded by `ArrayOps`.
//!
//! [`Tree`] is the trait of parameter trees; the derive of the same name comes with it where
//! the crate provides one.

pub use crate::error::Error;
pub use crate::tensor::{Array, ArrayOps, Element, Tensor};
pub use crate::Tree;
pub use num_traits::Float;
