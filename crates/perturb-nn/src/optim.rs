//! Optimisers ([`GradientDescent`], [`Sgd`], [`Adam`]), learning-rate [`Schedule`]s and
//! [`clip_grad_norm`].
//!
//! Parameters and gradients are plain tensors, in matching order: typically the model's
//! parameter tensors and what `TensorTape::gradient` returned for them.
//!
//! ```
//! use perturb::tensor::{Array, Tensor, TensorTape};
//! use perturb_nn::optim::{GradientDescent, Optimizer};
//!
//! // Minimise (w - 3)^2 from w = 0.
//! let mut w = vec![Tensor::vector(&[0.0_f64])];
//! let mut opt = GradientDescent::new(0.1);
//! for _ in 0..100 {
//!     let tape = TensorTape::new();
//!     let wv = tape.var(w[0].clone());
//!     let loss = wv.add_scalar(-3.0).square().sum_all();
//!     let grads = tape.gradient(&loss, &[&wv]).unwrap();
//!     opt.step(&mut w, &grads).unwrap();
//! }
//! assert!((w[0].to_vec()[0] - 3.0).abs() < 1e-8);
//! ```

use perturb::tensor::{Element, Tensor};
use perturb::Error;

/// Updates parameters from their gradients.
///
/// ```
/// use perturb::tensor::Tensor;
/// use perturb_nn::optim::{Optimizer, Sgd};
/// let mut opt: Box<dyn Optimizer<f64>> = Box::new(Sgd::new(0.5, 0.0, false));
/// let mut p = vec![Tensor::vector(&[1.0])];
/// opt.step(&mut p, &[Tensor::vector(&[1.0])]).unwrap();
/// assert_eq!(p[0].to_vec(), vec![0.5]);
/// opt.set_lr(0.1);
/// assert_eq!(opt.lr(), 0.1);
/// ```
pub trait Optimizer<T: Element> {
    /// One update of `params` from `grads` (same count, same shapes; an error, with nothing
    /// updated, otherwise, if the parameters' shapes changed since the last step, or if a
    /// hyperparameter is out of range: a learning rate that is negative or not finite, a
    /// momentum or beta outside `[0, 1)`, a negative weight decay, an `eps` that is not > 0).
    ///
    /// ```
    /// use perturb::tensor::Tensor;
    /// use perturb_nn::optim::{GradientDescent, Optimizer};
    /// let mut p = vec![Tensor::vector(&[1.0_f64, 2.0])];
    /// let mut opt = GradientDescent::new(1.0);
    /// assert!(opt.step(&mut p, &[]).is_err());
    /// assert!(opt.step(&mut p, &[Tensor::vector(&[1.0])]).is_err());
    /// opt.lr = f64::NAN;
    /// assert!(opt.step(&mut p, &[Tensor::vector(&[1.0, 1.0])]).is_err());
    /// assert_eq!(p[0].to_vec(), vec![1.0, 2.0]);
    /// ```
    fn step(&mut self, params: &mut [Tensor<T>], grads: &[Tensor<T>]) -> Result<(), Error>;

    /// The current learning rate.
    ///
    /// ```
    /// use perturb_nn::optim::{Adam, Optimizer};
    /// assert_eq!(Optimizer::<f64>::lr(&Adam::<f64>::new(1e-3)), 1e-3);
    /// ```
    fn lr(&self) -> f64;

    /// Sets the learning rate (e.g. from a [`Schedule`]).
    ///
    /// ```
    /// use perturb_nn::optim::{GradientDescent, Optimizer};
    /// let mut opt = GradientDescent::new(1.0);
    /// Optimizer::<f32>::set_lr(&mut opt, 0.25);
    /// assert_eq!(opt.lr, 0.25);
    /// ```
    fn set_lr(&mut self, lr: f64);
}

fn elem<T: Element>(x: f64) -> T {
    T::from_f64(x).unwrap_or_else(T::nan)
}

/// `value` as a `T`, after checking that it is finite and in `[low, high)` both as given and
/// as a `T`, and not turned to 0 (for `f32`, `1e-50` becomes 0, `1e300` inf and `1 - 1e-9`
/// exactly 1); otherwise an error naming `name`, so that a NaN or out-of-range
/// hyperparameter never reaches the weights.
fn hyper<T: Element>(
    op: &'static str,
    name: &str,
    value: f64,
    (low, high): (f64, f64),
) -> Result<T, Error> {
    let ok = |v: f64| v.is_finite() && v >= low && v < high;
    let range = if high.is_finite() {
        format!("in [{low}, {high})")
    } else {
        format!("finite and >= {low}")
    };
    if !ok(value) {
        return Err(Error::InvalidArgument {
            op,
            reason: format!("{name} must be {range}, got {value}"),
        });
    }
    let t = T::from_f64(value).unwrap_or_else(T::nan);
    let held = t.to_f64().unwrap_or(f64::NAN);
    if ok(held) && (held != 0.0 || value == 0.0) {
        return Ok(t);
    }
    Err(Error::InvalidArgument {
        op,
        reason: format!(
            "{name} = {value} is {held} as {}, so it must be {range} and not 0 in that type",
            std::any::type_name::<T>()
        ),
    })
}

/// A learning rate or weight decay: finite and >= 0.
const NON_NEGATIVE: (f64, f64) = (0.0, f64::INFINITY);
/// A decay or momentum coefficient: in [0, 1).
const DECAY: (f64, f64) = (0.0, 1.0);

/// Checks the counts and shapes of `params` and `grads` (and of the optimiser's `state`, when
/// it has been created).
fn check<T: Element>(
    op: &'static str,
    params: &[Tensor<T>],
    grads: &[Tensor<T>],
    state: &[Tensor<T>],
) -> Result<(), Error> {
    if grads.len() != params.len() {
        return Err(Error::LengthMismatch {
            op,
            what: "grads",
            expected: params.len(),
            found: grads.len(),
        });
    }
    if !state.is_empty() && state.len() != params.len() {
        return Err(Error::LengthMismatch {
            op,
            what: "params (the optimiser's state was made for another count)",
            expected: state.len(),
            found: params.len(),
        });
    }
    for (i, (p, g)) in params.iter().zip(grads).enumerate() {
        if p.shape() != g.shape() {
            return Err(Error::InvalidArgument {
                op,
                reason: format!(
                    "grads[{i}] has shape {:?}, but params[{i}] has shape {:?}",
                    g.shape(),
                    p.shape()
                ),
            });
        }
        if let Some(s) = state.get(i).filter(|s| s.shape() != p.shape()) {
            return Err(Error::InvalidArgument {
                op,
                reason: format!(
                    "params[{i}] has shape {:?}, but the optimiser's state was made for {:?} \
                     (use a new optimiser for a new model)",
                    p.shape(),
                    s.shape()
                ),
            });
        }
    }
    Ok(())
}

/// Builds a tensor of `like`'s shape from an element-wise function of the index.
fn build<T: Element>(like: &Tensor<T>, f: impl Fn(usize) -> T) -> Tensor<T> {
    let data: Vec<T> = (0..like.len()).map(f).collect();
    Tensor::from_vec(data, like.shape()).unwrap_or_else(|_| like.clone())
}

/// Plain gradient descent exactly as the lecture writes it: `W <- W - lr dL/dW`.
///
/// ```
/// use perturb::tensor::Tensor;
/// use perturb_nn::optim::{GradientDescent, Optimizer};
/// let mut p = vec![Tensor::vector(&[1.0_f64, 2.0])];
/// GradientDescent::new(0.5).step(&mut p, &[Tensor::vector(&[2.0, -2.0])]).unwrap();
/// assert_eq!(p[0].to_vec(), vec![0.0, 3.0]);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GradientDescent {
    /// The learning rate.
    pub lr: f64,
}

impl GradientDescent {
    /// Gradient descent with learning rate `lr`.
    ///
    /// ```
    /// assert_eq!(perturb_nn::optim::GradientDescent::new(0.1).lr, 0.1);
    /// ```
    pub fn new(lr: f64) -> Self {
        GradientDescent { lr }
    }
}

impl<T: Element> Optimizer<T> for GradientDescent {
    fn step(&mut self, params: &mut [Tensor<T>], grads: &[Tensor<T>]) -> Result<(), Error> {
        const OP: &str = "GradientDescent::step";
        let lr: T = hyper(OP, "lr", self.lr, NON_NEGATIVE)?;
        check(OP, params, grads, &[])?;
        for (p, g) in params.iter_mut().zip(grads) {
            let (ps, gs) = (p.as_slice(), g.as_slice());
            *p = build(p, |i| ps[i] - lr * gs[i]);
        }
        Ok(())
    }

    fn lr(&self) -> f64 {
        self.lr
    }

    fn set_lr(&mut self, lr: f64) {
        self.lr = lr;
    }
}

/// Stochastic gradient descent with (optionally Nesterov) momentum, PyTorch's form:
/// `v <- momentum v + g`, then `W <- W - lr v`, or `W <- W - lr (g + momentum v)` with
/// Nesterov. Momentum 0 is plain gradient descent.
///
/// ```
/// use perturb::tensor::Tensor;
/// use perturb_nn::optim::{Optimizer, Sgd};
/// let mut p = vec![Tensor::vector(&[0.0_f64])];
/// let g = [Tensor::vector(&[1.0])];
/// let mut opt = Sgd::new(1.0, 0.5, false);
/// opt.step(&mut p, &g).unwrap(); // v = 1, w = -1
/// opt.step(&mut p, &g).unwrap(); // v = 0.5 + 1 = 1.5, w = -2.5
/// assert_eq!(p[0].to_vec(), vec![-2.5]);
/// ```
#[derive(Debug, Clone)]
pub struct Sgd<T: Element> {
    /// The learning rate.
    pub lr: f64,
    /// The momentum coefficient (0 for none).
    pub momentum: f64,
    /// Whether to use Nesterov momentum.
    pub nesterov: bool,
    velocity: Vec<Tensor<T>>,
}

impl<T: Element> Sgd<T> {
    /// SGD with learning rate `lr`, momentum `momentum` and Nesterov's variant if `nesterov`.
    ///
    /// ```
    /// let opt = perturb_nn::optim::Sgd::<f64>::new(0.1, 0.9, true);
    /// assert!(opt.nesterov);
    /// ```
    pub fn new(lr: f64, momentum: f64, nesterov: bool) -> Self {
        Sgd {
            lr,
            momentum,
            nesterov,
            velocity: Vec::new(),
        }
    }
}

impl<T: Element> Optimizer<T> for Sgd<T> {
    fn step(&mut self, params: &mut [Tensor<T>], grads: &[Tensor<T>]) -> Result<(), Error> {
        const OP: &str = "Sgd::step";
        let lr: T = hyper(OP, "lr", self.lr, NON_NEGATIVE)?;
        let mu: T = hyper(OP, "momentum", self.momentum, DECAY)?;
        check(OP, params, grads, &self.velocity)?;
        if self.velocity.is_empty() {
            self.velocity = params.iter().map(|p| Tensor::zeros(p.shape())).collect();
        }
        for ((p, g), v) in params.iter_mut().zip(grads).zip(&mut self.velocity) {
            let (gs, vs) = (g.as_slice(), v.as_slice());
            let new_v = build(g, |i| mu * vs[i] + gs[i]);
            let nv = new_v.as_slice();
            let ps = p.as_slice();
            let updated = if self.nesterov {
                build(p, |i| ps[i] - lr * (gs[i] + mu * nv[i]))
            } else {
                build(p, |i| ps[i] - lr * nv[i])
            };
            *p = updated;
            *v = new_v;
        }
        Ok(())
    }

    fn lr(&self) -> f64 {
        self.lr
    }

    fn set_lr(&mut self, lr: f64) {
        self.lr = lr;
    }
}

/// Adam, with L2 weight decay added to the gradient, or decoupled weight decay (AdamW) if
/// `decoupled`. Per step `t` (from 1): `m <- b1 m + (1 - b1) g`, `v <- b2 v + (1 - b2) g^2`,
/// `W <- W - lr (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)`; AdamW first does
/// `W <- W - lr wd W`.
///
/// ```
/// use perturb::tensor::Tensor;
/// use perturb_nn::optim::{Adam, Optimizer};
/// let mut p = vec![Tensor::vector(&[1.0_f64])];
/// let mut opt = Adam::new(0.1);
/// opt.step(&mut p, &[Tensor::vector(&[5.0])]).unwrap();
/// // the first step moves by about lr whatever the gradient's size: m^ = g, v^ = g^2
/// assert!((p[0].to_vec()[0] - 0.9).abs() < 1e-8);
/// ```
#[derive(Debug, Clone)]
pub struct Adam<T: Element> {
    /// The learning rate.
    pub lr: f64,
    /// The decay of the first-moment average.
    pub beta1: f64,
    /// The decay of the second-moment average.
    pub beta2: f64,
    /// Added to the denominator.
    pub eps: f64,
    /// The weight-decay coefficient (0 for none).
    pub weight_decay: f64,
    /// Decoupled weight decay (AdamW) instead of L2 in the gradient.
    pub decoupled: bool,
    t: u64,
    m: Vec<Tensor<T>>,
    v: Vec<Tensor<T>>,
}

impl<T: Element> Adam<T> {
    /// Adam with learning rate `lr` and the usual defaults: `beta1 = 0.9`, `beta2 = 0.999`,
    /// `eps = 1e-8`, no weight decay. Set the public fields, or use the `with_` methods, to
    /// change them.
    ///
    /// ```
    /// use perturb_nn::optim::Adam;
    /// let mut opt = Adam::<f32>::new(1e-3);
    /// opt.eps = 1e-6;
    /// assert_eq!((opt.beta1, opt.beta2, opt.weight_decay), (0.9, 0.999, 0.0));
    /// ```
    pub fn new(lr: f64) -> Self {
        Adam {
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            decoupled: false,
            t: 0,
            m: Vec::new(),
            v: Vec::new(),
        }
    }

    /// The same optimiser with moment decays `beta1` and `beta2`.
    ///
    /// ```
    /// use perturb_nn::optim::Adam;
    /// let opt = Adam::<f64>::new(1e-3).with_betas(0.8, 0.99);
    /// assert_eq!((opt.beta1, opt.beta2), (0.8, 0.99));
    /// ```
    pub fn with_betas(mut self, beta1: f64, beta2: f64) -> Self {
        self.beta1 = beta1;
        self.beta2 = beta2;
        self
    }

    /// The same optimiser with weight decay `weight_decay`, decoupled (AdamW) if `decoupled`,
    /// else added to the gradient as L2 regularisation.
    ///
    /// ```
    /// use perturb_nn::optim::Adam;
    /// let opt = Adam::<f64>::new(1e-3).with_weight_decay(0.01, true);
    /// assert_eq!((opt.weight_decay, opt.decoupled), (0.01, true));
    /// ```
    pub fn with_weight_decay(mut self, weight_decay: f64, decoupled: bool) -> Self {
        self.weight_decay = weight_decay;
        self.decoupled = decoupled;
        self
    }

    /// How many steps have been taken.
    ///
    /// ```
    /// use perturb::tensor::Tensor;
    /// use perturb_nn::optim::{Adam, Optimizer};
    /// let mut opt = Adam::new(0.1);
    /// opt.step(&mut [Tensor::vector(&[1.0_f64])], &[Tensor::vector(&[1.0])]).unwrap();
    /// assert_eq!(opt.steps(), 1);
    /// ```
    pub fn steps(&self) -> u64 {
        self.t
    }
}

impl<T: Element> Optimizer<T> for Adam<T> {
    fn step(&mut self, params: &mut [Tensor<T>], grads: &[Tensor<T>]) -> Result<(), Error> {
        const OP: &str = "Adam::step";
        let lr: T = hyper(OP, "lr", self.lr, NON_NEGATIVE)?;
        let b1: T = hyper(OP, "beta1", self.beta1, DECAY)?;
        let b2: T = hyper(OP, "beta2", self.beta2, DECAY)?;
        let wd: T = hyper(OP, "weight_decay", self.weight_decay, NON_NEGATIVE)?;
        if !(self.eps.is_finite() && self.eps > 0.0) {
            return Err(Error::InvalidArgument {
                op: OP,
                reason: format!("eps must be finite and > 0, got {}", self.eps),
            });
        }
        let eps: T = hyper(OP, "eps", self.eps, NON_NEGATIVE)?;
        check(OP, params, grads, &self.m)?;
        if self.m.is_empty() {
            self.m = params.iter().map(|p| Tensor::zeros(p.shape())).collect();
            self.v = self.m.clone();
        }
        self.t += 1;
        let t = i32::try_from(self.t).unwrap_or(i32::MAX);
        let one = T::one();
        let (bc1, bc2) = (one - b1.powi(t), one - b2.powi(t));
        let items = params
            .iter_mut()
            .zip(grads)
            .zip(self.m.iter_mut().zip(&mut self.v));
        for ((p, g), (m, v)) in items {
            let ps = p.as_slice();
            let gs = g.as_slice();
            let grad = |i: usize| {
                if self.decoupled {
                    gs[i]
                } else {
                    gs[i] + wd * ps[i]
                }
            };
            let (ms, vs) = (m.as_slice(), v.as_slice());
            let new_m = build(g, |i| b1 * ms[i] + (one - b1) * grad(i));
            let new_v = build(g, |i| b2 * vs[i] + (one - b2) * grad(i) * grad(i));
            let (nm, nv) = (new_m.as_slice(), new_v.as_slice());
            let updated = build(p, |i| {
                let w = if self.decoupled {
                    ps[i] - lr * wd * ps[i]
                } else {
                    ps[i]
                };
                w - lr * (nm[i] / bc1) / ((nv[i] / bc2).sqrt() + eps)
            });
            *p = updated;
            *m = new_m;
            *v = new_v;
        }
        Ok(())
    }

    fn lr(&self) -> f64 {
        self.lr
    }

    fn set_lr(&mut self, lr: f64) {
        self.lr = lr;
    }
}

/// A learning-rate schedule: the rate at each step from a base rate.
///
/// ```
/// use perturb_nn::optim::Schedule;
/// let s = Schedule::Step { every: 10, gamma: 0.5 };
/// assert_eq!(s.lr_at(1.0, 25), 0.25); // halved at steps 10 and 20
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Schedule {
    /// The base rate at every step.
    Constant,
    /// The base rate times `gamma^(step / every)` (integer division); constant if `every` is 0.
    Step {
        /// How many steps between decays.
        every: usize,
        /// The factor at each decay.
        gamma: f64,
    },
    /// Cosine annealing from the base rate at step 0 to `min_lr` at step `total`, then
    /// `min_lr`: `min_lr + (base - min_lr) (1 + cos(pi step / total)) / 2`.
    Cosine {
        /// The step at which the rate reaches `min_lr`.
        total: usize,
        /// The final rate.
        min_lr: f64,
    },
}

impl Schedule {
    /// The learning rate at `step` (from 0) for base rate `base_lr`.
    ///
    /// ```
    /// use perturb_nn::optim::Schedule;
    /// let s = Schedule::Cosine { total: 100, min_lr: 0.0 };
    /// assert_eq!(s.lr_at(1.0, 0), 1.0);
    /// assert!((s.lr_at(1.0, 50) - 0.5).abs() < 1e-15);
    /// assert_eq!(s.lr_at(1.0, 200), 0.0);
    /// assert_eq!(Schedule::Constant.lr_at(0.3, 7), 0.3);
    /// ```
    pub fn lr_at(&self, base_lr: f64, step: usize) -> f64 {
        match *self {
            Schedule::Constant => base_lr,
            Schedule::Step { every: 0, .. } => base_lr,
            Schedule::Step { every, gamma } => {
                let k = i32::try_from(step / every).unwrap_or(i32::MAX);
                base_lr * gamma.powi(k)
            }
            Schedule::Cosine { total, min_lr } => {
                if step >= total {
                    min_lr
                } else {
                    let frac = step as f64 / total as f64;
                    min_lr + 0.5 * (base_lr - min_lr) * (1.0 + (std::f64::consts::PI * frac).cos())
                }
            }
        }
    }
}

/// Scales `grads` together so that their global L2 norm (over all elements of all tensors) is
/// at most `max_norm`, and returns the norm before clipping. Gradients already within the
/// bound, or with a non-finite norm (a NaN or infinite element), are left as they are; the norm
/// itself is formed on scaled values, so gradients of size `1e200` do not overflow it. An error
/// if `max_norm` is negative or NaN.
///
/// ```
/// use perturb::tensor::Tensor;
/// use perturb_nn::optim::clip_grad_norm;
/// let mut g = vec![Tensor::vector(&[3.0_f64]), Tensor::vector(&[4.0])];
/// assert_eq!(clip_grad_norm(&mut g, 1.0).unwrap(), 5.0);
/// assert_eq!((g[0].to_vec()[0], g[1].to_vec()[0]), (0.6, 0.8));
/// assert!(clip_grad_norm(&mut g, f64::NAN).is_err());
/// ```
pub fn clip_grad_norm<T: Element>(grads: &mut [Tensor<T>], max_norm: f64) -> Result<f64, Error> {
    if max_norm.is_nan() || max_norm < 0.0 {
        return Err(Error::InvalidArgument {
            op: "clip_grad_norm",
            reason: format!("max_norm must be >= 0, got {max_norm}"),
        });
    }
    let values = || {
        grads
            .iter()
            .flat_map(|g| g.as_slice())
            .map(|&x| x.to_f64().unwrap_or(f64::NAN))
    };
    let largest = values().fold(0.0_f64, |m, x| {
        if x.abs() > m || x.is_nan() {
            x.abs()
        } else {
            m
        }
    });
    let norm = if largest > 0.0 && largest.is_finite() {
        largest
            * values()
                .map(|x| (x / largest) * (x / largest))
                .sum::<f64>()
                .sqrt()
    } else {
        largest
    };
    if norm.is_finite() && norm > max_norm {
        // In f64: the norm of f32 gradients may exceed f32's range.
        for g in grads.iter_mut() {
            let gs = g.as_slice();
            *g = build(g, |i| {
                elem::<T>(gs[i].to_f64().unwrap_or(f64::NAN) * max_norm / norm)
            });
        }
    }
    Ok(norm)
}
