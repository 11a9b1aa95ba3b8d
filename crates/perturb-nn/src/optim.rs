//! Optimisers ([`GradientDescent`], [`Sgd`], [`Adam`]), learning-rate [`Schedule`]s and
//! [`clip_grad_norm`].
//!
//! An optimiser updates any parameter tree ([`Optimizer::update`]: a model struct, a `Vec`, a
//! map, nested) from a tree of gradients of the same structure, or a slice of tensors with
//! [`Optimizer::step`] (the leaves of a `Vec`, at paths `0`, `1`, ...). What it keeps between
//! updates (SGD's velocity, Adam's moments and step count) is keyed by the leaves' paths and
//! can be taken out and put back ([`Optimizer::state`], [`Optimizer::load_state`]) for a
//! checkpoint.
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

use std::collections::BTreeMap;

use perturb::tensor::{Element, Tensor};
use perturb::tree::{same_structure, Path, Tree};
use perturb::Error;

/// Updates parameters from their gradients.
///
/// Implement [`update_leaves`](Optimizer::update_leaves), [`state`](Optimizer::state),
/// [`load_state`](Optimizer::load_state), [`lr`](Optimizer::lr) and
/// [`set_lr`](Optimizer::set_lr); [`step`](Optimizer::step) and
/// [`update`](Optimizer::update) are built on them. The trait is object safe:
/// `Box<dyn Optimizer<T>>` is itself an optimiser, trees included.
///
/// ```
/// use perturb::tensor::Tensor;
/// use perturb_nn::optim::{Optimizer, Sgd};
/// let mut opt: Box<dyn Optimizer<f64>> = Box::new(Sgd::new(0.5, 0.0, false));
/// let mut p = vec![Tensor::vector(&[1.0])];
/// opt.step(&mut p, &[Tensor::vector(&[1.0])]).unwrap();
/// assert_eq!(p[0].to_vec(), vec![0.5]);
/// opt.update(&mut p, &vec![Tensor::vector(&[1.0])]).unwrap();
/// assert_eq!(p[0].to_vec(), vec![0.0]);
/// opt.set_lr(0.1);
/// assert_eq!(opt.lr(), 0.1);
/// ```
pub trait Optimizer<T: Element> {
    /// One update of the leaves `params`, named by `paths`, from `grads` (the same count, the
    /// same shapes, each path once). The optimiser's state is kept by path: an error, with
    /// nothing updated, if the paths or shapes differ from those of the previous updates, as
    /// well as on a hyperparameter out of range (see [`step`](Optimizer::step)).
    ///
    /// ```
    /// use perturb::tensor::Tensor;
    /// use perturb_nn::optim::{Adam, Optimizer};
    /// let mut opt = Adam::new(0.1);
    /// let names = ["w".to_string()];
    /// let mut p = [Tensor::vector(&[1.0_f64])];
    /// opt.update_leaves(&names, &mut p, &[Tensor::vector(&[2.0])]).unwrap();
    /// let other = ["b".to_string()];
    /// assert!(opt.update_leaves(&other, &mut p, &[Tensor::vector(&[2.0])]).is_err());
    /// ```
    fn update_leaves(
        &mut self,
        paths: &[String],
        params: &mut [Tensor<T>],
        grads: &[Tensor<T>],
    ) -> Result<(), Error>;

    /// One update of `params` from `grads` (same count, same shapes; an error, with nothing
    /// updated, otherwise, if the parameters' shapes changed since the last step, or if a
    /// hyperparameter is out of range: a learning rate that is negative or not finite, a
    /// momentum or beta outside `[0, 1)`, a negative weight decay, an `eps` that is not > 0).
    /// The tensors are the leaves `0`, `1`, ... of a `Vec`: a slice step and a tree update of
    /// a `Vec` share the optimiser's state.
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
    fn step(&mut self, params: &mut [Tensor<T>], grads: &[Tensor<T>]) -> Result<(), Error> {
        let paths: Vec<String> = (0..params.len()).map(|i| i.to_string()).collect();
        self.update_leaves(&paths, params, grads)
    }

    /// One update of the parameter tree `params` from the tree of gradients `grads`, which
    /// must have the same structure (checked: an error names the first path where they
    /// differ) and shapes; nothing is updated on an error.
    ///
    /// ```
    /// use std::collections::BTreeMap;
    /// use perturb::tensor::Tensor;
    /// use perturb_nn::optim::{GradientDescent, Optimizer};
    ///
    /// let mut model = BTreeMap::new();
    /// model.insert("w".to_string(), Tensor::vector(&[1.0_f64, 2.0]));
    /// model.insert("b".to_string(), Tensor::scalar(0.5));
    /// let mut grads = model.clone();
    /// grads.insert("b".to_string(), Tensor::scalar(1.0));
    /// GradientDescent::new(0.5).update(&mut model, &grads).unwrap();
    /// assert_eq!(model["w"].to_vec(), [0.5, 1.0]); // w - 0.5 w
    /// assert_eq!(model["b"].to_vec(), [0.0]); // 0.5 - 0.5 * 1
    ///
    /// grads.remove("b");
    /// assert!(GradientDescent::new(0.5).update(&mut model, &grads).is_err());
    /// ```
    fn update<X: Tree<Tensor<T>>>(&mut self, params: &mut X, grads: &X) -> Result<(), Error>
    where
        Self: Sized,
    {
        same_structure("Optimizer::update", params, grads)?;
        let paths = params.paths();
        let mut leaves = params.flatten();
        self.update_leaves(&paths, &mut leaves, &grads.flatten())?;
        let mut updated = leaves.into_iter();
        params.visit_mut(&mut Path::root(), &mut |_, leaf| {
            if let Some(new) = updated.next() {
                *leaf = new;
            }
        });
        Ok(())
    }

    /// What the optimiser keeps between updates, by leaf path, for a checkpoint.
    ///
    /// ```
    /// use perturb::tensor::Tensor;
    /// use perturb_nn::optim::{Optimizer, Sgd};
    /// let mut opt = Sgd::new(0.1, 0.9, false);
    /// opt.step(&mut [Tensor::vector(&[1.0_f64])], &[Tensor::vector(&[2.0])]).unwrap();
    /// let state = opt.state();
    /// assert_eq!((state.kind.as_str(), state.steps), ("Sgd", 1));
    /// assert_eq!(state.slots["velocity"]["0"].to_vec(), [2.0]);
    /// ```
    fn state(&self) -> OptimizerState<T>;

    /// Puts back a state taken with [`state`](Optimizer::state) (perhaps read from a
    /// checkpoint): the next update continues exactly where that optimiser stopped. An error,
    /// with the optimiser unchanged, if the state is of another kind of optimiser, lacks a
    /// slot or has one this optimiser does not keep, or its slots disagree on the paths or
    /// shapes. The paths and shapes are compared with the parameters' at the next update.
    ///
    /// ```
    /// use perturb::tensor::Tensor;
    /// use perturb_nn::optim::{Adam, Optimizer, Sgd};
    /// let mut a = Adam::new(0.1);
    /// let mut p = vec![Tensor::vector(&[1.0_f64])];
    /// let g = vec![Tensor::vector(&[3.0])];
    /// a.step(&mut p, &g).unwrap();
    /// let mut b = Adam::new(0.1);
    /// b.load_state(a.state()).unwrap();
    /// let mut q = p.clone();
    /// a.step(&mut p, &g).unwrap();
    /// b.step(&mut q, &g).unwrap();
    /// assert_eq!(p[0].to_vec(), q[0].to_vec());
    /// assert!(Sgd::new(0.1, 0.9, false).load_state(a.state()).is_err());
    /// ```
    fn load_state(&mut self, state: OptimizerState<T>) -> Result<(), Error>;

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

/// A boxed optimiser (`Box<dyn Optimizer<T>>`) is an optimiser, so that it updates trees too.
impl<T: Element, O: Optimizer<T> + ?Sized> Optimizer<T> for Box<O> {
    fn update_leaves(
        &mut self,
        paths: &[String],
        params: &mut [Tensor<T>],
        grads: &[Tensor<T>],
    ) -> Result<(), Error> {
        (**self).update_leaves(paths, params, grads)
    }

    fn step(&mut self, params: &mut [Tensor<T>], grads: &[Tensor<T>]) -> Result<(), Error> {
        (**self).step(params, grads)
    }

    fn state(&self) -> OptimizerState<T> {
        (**self).state()
    }

    fn load_state(&mut self, state: OptimizerState<T>) -> Result<(), Error> {
        (**self).load_state(state)
    }

    fn lr(&self) -> f64 {
        (**self).lr()
    }

    fn set_lr(&mut self, lr: f64) {
        (**self).set_lr(lr)
    }
}

/// An optimiser's state between updates, by leaf path: what a checkpoint saves.
///
/// `slots` maps each buffer the optimiser keeps per leaf (`"velocity"` for [`Sgd`], `"m"` and
/// `"v"` for [`Adam`]) to the leaves' paths and their buffers: itself a parameter tree, whose
/// leaves sit at paths `SLOT.LEAF_PATH`. It is empty before the first update and for
/// [`GradientDescent`], which keeps nothing.
///
/// ```
/// use perturb::tensor::Tensor;
/// use perturb::tree::Tree;
/// use perturb_nn::optim::{Adam, Optimizer};
/// let mut opt = Adam::new(0.1);
/// let mut p = vec![Tensor::vector(&[1.0_f64]), Tensor::vector(&[2.0])];
/// let g = p.clone();
/// opt.step(&mut p, &g).unwrap();
/// let state = opt.state();
/// assert_eq!(state.slots.paths(), ["m.0", "m.1", "v.0", "v.1"]);
/// ```
#[derive(Debug, Clone)]
pub struct OptimizerState<T: Element> {
    /// The optimiser's name: `"GradientDescent"`, `"Sgd"` or `"Adam"`.
    pub kind: String,
    /// How many updates the optimiser has made (Adam's bias correction depends on it; always
    /// 0 for [`GradientDescent`]).
    pub steps: u64,
    /// Slot name, then leaf path, to the buffer of that leaf.
    pub slots: BTreeMap<String, BTreeMap<String, Tensor<T>>>,
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

/// Checks that `paths`, `params` and `grads` agree: as many of each, each path once, each
/// gradient of its parameter's shape. Errors name a leaf `params[PATH]` (`params[1]` for the
/// slice [`Optimizer::step`]).
fn check<T: Element>(
    op: &'static str,
    paths: &[String],
    params: &[Tensor<T>],
    grads: &[Tensor<T>],
) -> Result<(), Error> {
    if grads.len() != params.len() {
        return Err(Error::LengthMismatch {
            op,
            what: "grads",
            expected: params.len(),
            found: grads.len(),
        });
    }
    if paths.len() != params.len() {
        return Err(Error::LengthMismatch {
            op,
            what: "paths (one per parameter)",
            expected: params.len(),
            found: paths.len(),
        });
    }
    let mut seen = std::collections::BTreeSet::new();
    for ((path, p), g) in paths.iter().zip(params).zip(grads) {
        if !seen.insert(path) {
            return Err(Error::InvalidArgument {
                op,
                reason: format!("two leaves have the path '{path}'; each needs its own"),
            });
        }
        if p.shape() != g.shape() {
            return Err(Error::InvalidArgument {
                op,
                reason: format!(
                    "grads[{path}] has shape {:?}, but params[{path}] has shape {:?}",
                    g.shape(),
                    p.shape()
                ),
            });
        }
    }
    Ok(())
}

/// What an optimiser (named `kind`) keeps between updates: its step count and a buffer per
/// leaf and slot name, keyed by the leaf's path (none until the first update).
#[derive(Debug, Clone)]
struct Memory<T: Element, const N: usize> {
    kind: &'static str,
    steps: u64,
    slots: [&'static str; N],
    by_path: BTreeMap<String, [Tensor<T>; N]>,
}

impl<T: Element, const N: usize> Memory<T, N> {
    fn new(kind: &'static str, slots: [&'static str; N]) -> Self {
        Memory {
            kind,
            steps: 0,
            slots,
            by_path: BTreeMap::new(),
        }
    }

    /// The memory as an [`OptimizerState`].
    fn state(&self) -> OptimizerState<T> {
        OptimizerState {
            kind: self.kind.to_string(),
            steps: self.steps,
            slots: self.export(),
        }
    }

    /// Replaces the memory with `state`, after checking that it is of this kind of optimiser
    /// and that its slots fit (see [`import`](Self::import)).
    fn load(&mut self, op: &'static str, state: OptimizerState<T>) -> Result<(), Error> {
        if state.kind != self.kind {
            return Err(Error::InvalidArgument {
                op,
                reason: format!(
                    "the state is of the optimiser '{}', not '{}'",
                    state.kind, self.kind
                ),
            });
        }
        self.import(op, state.slots)?;
        self.steps = state.steps;
        Ok(())
    }

    /// Checks that the buffers, once made, were made for exactly these leaves and shapes, and
    /// that a state which has counted steps has them.
    fn check(&self, op: &'static str, paths: &[String], params: &[Tensor<T>]) -> Result<(), Error> {
        if self.by_path.is_empty() {
            // The first update makes a buffer per leaf: a count without them (a state put
            // back from a checkpoint that lost its buffers) would restart the moments at a
            // later step, silently.
            if N > 0 && self.steps > 0 && !paths.is_empty() {
                return Err(Error::InvalidArgument {
                    op,
                    reason: format!(
                        "the optimiser's state has counted {} steps but holds no buffers \
                         ({}) for the leaves (a corrupt state?)",
                        self.steps,
                        listed(self.slots)
                    ),
                });
            }
            return Ok(());
        }
        let another = "(use a new optimiser for a new model)";
        for (path, p) in paths.iter().zip(params) {
            let Some(held) = self.by_path.get(path) else {
                return Err(Error::InvalidArgument {
                    op,
                    reason: format!(
                        "params[{path}] is not among the leaves the optimiser's state was \
                         made for ({}) {another}",
                        listed(self.by_path.keys())
                    ),
                });
            };
            if let Some(s) = held.first().filter(|s| s.shape() != p.shape()) {
                return Err(Error::InvalidArgument {
                    op,
                    reason: format!(
                        "params[{path}] has shape {:?}, but the optimiser's state was made for \
                         {:?} {another}",
                        p.shape(),
                        s.shape()
                    ),
                });
            }
        }
        // Every path given is held, each once: a difference in count is a held path missing.
        if let Some(missing) = self.by_path.keys().find(|k| !paths.contains(k)) {
            return Err(Error::InvalidArgument {
                op,
                reason: format!(
                    "the optimiser's state has the leaf '{missing}', which the parameters lack \
                     {another}"
                ),
            });
        }
        Ok(())
    }

    /// Counts one more update: an error if the count is already `u64::MAX` (a state put back
    /// with such a count, perhaps from a hostile checkpoint), rather than an overflow.
    fn count_step(&mut self, op: &'static str) -> Result<(), Error> {
        self.steps = self
            .steps
            .checked_add(1)
            .ok_or_else(|| Error::InvalidArgument {
                op,
                reason: format!(
                    "the optimiser has counted {} steps and cannot count more (a corrupt state?)",
                    self.steps
                ),
            })?;
        Ok(())
    }

    /// The buffers of the leaf at `path`, zeros of `shape` when new.
    fn of(&mut self, path: &str, shape: &[usize]) -> &mut [Tensor<T>; N] {
        self.by_path
            .entry(path.to_string())
            .or_insert_with(|| std::array::from_fn(|_| Tensor::zeros(shape)))
    }

    /// The buffers as [`OptimizerState::slots`].
    fn export(&self) -> BTreeMap<String, BTreeMap<String, Tensor<T>>> {
        if self.by_path.is_empty() {
            return BTreeMap::new();
        }
        let slot = |k: usize| {
            self.by_path
                .iter()
                .map(|(path, held)| (path.clone(), held[k].clone()))
                .collect()
        };
        let names = self.slots.iter().enumerate();
        names.map(|(k, name)| (name.to_string(), slot(k))).collect()
    }

    /// Replaces the buffers with `slots` (from [`export`](Self::export)), after checking that
    /// they name this optimiser's slots and agree on the paths and shapes.
    fn import(
        &mut self,
        op: &'static str,
        mut slots: BTreeMap<String, BTreeMap<String, Tensor<T>>>,
    ) -> Result<(), Error> {
        let invalid = |reason: String| Err(Error::InvalidArgument { op, reason });
        if slots.is_empty() {
            self.by_path.clear();
            return Ok(());
        }
        if let Some(name) = slots.keys().find(|k| !self.slots.contains(&k.as_str())) {
            return invalid(format!(
                "the state has a slot '{name}' this optimiser does not keep (it keeps {})",
                listed(self.slots)
            ));
        }
        let mut columns = Vec::with_capacity(N);
        for name in self.slots {
            match slots.remove(name) {
                Some(column) => columns.push(column),
                None => return invalid(format!("the state lacks the slot '{name}'")),
            }
        }
        let Some(first) = columns.first() else {
            // No slots (gradient descent): nothing is held.
            self.by_path.clear();
            return Ok(());
        };
        for (name, column) in self.slots.iter().zip(&columns) {
            let other = column.keys().find(|k| !first.contains_key(*k));
            let missing = first.keys().find(|k| !column.contains_key(*k));
            if let Some(path) = other.or(missing) {
                return invalid(format!(
                    "the slots '{}' and '{name}' disagree on the leaf '{path}'",
                    self.slots[0]
                ));
            }
            for (path, t) in column {
                let shape = first[path].shape();
                if t.shape() != shape {
                    return invalid(format!(
                        "'{name}' of the leaf '{path}' has shape {:?}, '{}' has {shape:?}",
                        t.shape(),
                        self.slots[0]
                    ));
                }
            }
        }
        let paths: Vec<String> = first.keys().cloned().collect();
        let mut columns: Vec<_> = columns.into_iter().map(|c| c.into_values()).collect();
        // Every column has a tensor at every path (checked above), in key order.
        let by_path = paths.into_iter().map(|path| {
            let held =
                std::array::from_fn(|k| columns[k].next().expect("every slot holds every path"));
            (path, held)
        });
        self.by_path = by_path.collect();
        Ok(())
    }
}

/// Up to eight names, quoted and comma-separated, with a count of the rest.
fn listed<S: AsRef<str>>(names: impl IntoIterator<Item = S>) -> String {
    let names: Vec<String> = names
        .into_iter()
        .map(|n| format!("'{}'", n.as_ref()))
        .collect();
    match names.len() {
        0..=8 => names.join(", "),
        n => format!("{}, and {} more", names[..8].join(", "), n - 8),
    }
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
    fn update_leaves(
        &mut self,
        paths: &[String],
        params: &mut [Tensor<T>],
        grads: &[Tensor<T>],
    ) -> Result<(), Error> {
        const OP: &str = "GradientDescent::step";
        let lr: T = hyper(OP, "lr", self.lr, NON_NEGATIVE)?;
        check(OP, paths, params, grads)?;
        for (p, g) in params.iter_mut().zip(grads) {
            let (ps, gs) = (p.as_slice(), g.as_slice());
            *p = build(p, |i| ps[i] - lr * gs[i]);
        }
        Ok(())
    }

    fn state(&self) -> OptimizerState<T> {
        Memory::<T, 0>::new("GradientDescent", []).state()
    }

    /// Gradient descent keeps nothing: the state must be of gradient descent, with no slots.
    fn load_state(&mut self, state: OptimizerState<T>) -> Result<(), Error> {
        Memory::<T, 0>::new("GradientDescent", []).load("GradientDescent::load_state", state)
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
    /// The step count and the velocity of each leaf.
    velocity: Memory<T, 1>,
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
            velocity: Memory::new("Sgd", ["velocity"]),
        }
    }

    /// How many steps have been taken.
    ///
    /// ```
    /// use perturb::tensor::Tensor;
    /// use perturb_nn::optim::{Optimizer, Sgd};
    /// let mut opt = Sgd::new(0.1, 0.9, false);
    /// opt.step(&mut [Tensor::vector(&[1.0_f64])], &[Tensor::vector(&[1.0])]).unwrap();
    /// assert_eq!(opt.steps(), 1);
    /// ```
    pub fn steps(&self) -> u64 {
        self.velocity.steps
    }
}

impl<T: Element> Optimizer<T> for Sgd<T> {
    fn update_leaves(
        &mut self,
        paths: &[String],
        params: &mut [Tensor<T>],
        grads: &[Tensor<T>],
    ) -> Result<(), Error> {
        const OP: &str = "Sgd::step";
        let lr: T = hyper(OP, "lr", self.lr, NON_NEGATIVE)?;
        let mu: T = hyper(OP, "momentum", self.momentum, DECAY)?;
        check(OP, paths, params, grads)?;
        self.velocity.check(OP, paths, params)?;
        self.velocity.count_step(OP)?;
        for ((path, p), g) in paths.iter().zip(params.iter_mut()).zip(grads) {
            let [v] = self.velocity.of(path, p.shape());
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

    fn state(&self) -> OptimizerState<T> {
        self.velocity.state()
    }

    fn load_state(&mut self, state: OptimizerState<T>) -> Result<(), Error> {
        self.velocity.load("Sgd::load_state", state)
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
/// `W <- W - lr (m / (1 - b1^t)) / (sqrt(v) / sqrt(1 - b2^t) + eps)`; AdamW first does
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
    /// The step count and the moments `m` and `v` of each leaf.
    moments: Memory<T, 2>,
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
            moments: Memory::new("Adam", ["m", "v"]),
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
        self.moments.steps
    }
}

/// Adam's hyperparameters for one step, bias corrections included.
struct AdamRates<T> {
    lr: T,
    b1: T,
    b2: T,
    wd: T,
    eps: T,
    bc1: T,
    /// `sqrt(1 - b2^t)`.
    sqrt_bc2: T,
}

/// One Adam step over a leaf in one pass: both moments and the weight, element by element, in
/// place. `DECOUPLED` (AdamW) is a constant so that each form is a loop without a branch,
/// which the compiler vectorises.
fn adam_pass<T: Element, const DECOUPLED: bool>(
    r: &AdamRates<T>,
    ps: &mut [T],
    ms: &mut [T],
    vs: &mut [T],
    gs: &[T],
) {
    let one = T::one();
    let (c1, c2) = (one - r.b1, one - r.b2);
    let leaf = ps.iter_mut().zip(ms.iter_mut()).zip(vs.iter_mut()).zip(gs);
    for (((p, m), v), &g) in leaf {
        let gi = if DECOUPLED { g } else { g + r.wd * *p };
        let mi = r.b1 * *m + c1 * gi;
        let vi = r.b2 * *v + c2 * gi * gi;
        let w = if DECOUPLED { *p - r.lr * r.wd * *p } else { *p };
        *m = mi;
        *v = vi;
        // sqrt(v) / sqrt(1 - b2^t), not sqrt(v / (1 - b2^t)): at the first step that
        // quotient is g^2, which overflows (f32 |g| > 1.8e19) where v does not.
        *p = w - r.lr * (mi / r.bc1) / (vi.sqrt() / r.sqrt_bc2 + r.eps);
    }
}

impl<T: Element> Optimizer<T> for Adam<T> {
    fn update_leaves(
        &mut self,
        paths: &[String],
        params: &mut [Tensor<T>],
        grads: &[Tensor<T>],
    ) -> Result<(), Error> {
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
        check(OP, paths, params, grads)?;
        self.moments.check(OP, paths, params)?;
        self.moments.count_step(OP)?;
        let t = i32::try_from(self.moments.steps).unwrap_or(i32::MAX);
        let one = T::one();
        let (bc1, bc2) = (one - b1.powi(t), one - b2.powi(t));
        let rates = AdamRates {
            lr,
            b1,
            b2,
            wd,
            eps,
            bc1,
            sqrt_bc2: bc2.sqrt(),
        };
        for ((path, p), g) in paths.iter().zip(params.iter_mut()).zip(grads) {
            let [m, v] = self.moments.of(path, p.shape());
            let shape = p.shape().to_vec();
            // The leaf's three buffers, updated in place (no copy where nothing else holds them).
            let take =
                |t: &mut Tensor<T>| std::mem::replace(t, Tensor::scalar(T::zero())).into_vec();
            let (mut ms, mut vs, mut ps) = (take(m), take(v), take(p));
            if self.decoupled {
                adam_pass::<T, true>(&rates, &mut ps, &mut ms, &mut vs, g.as_slice());
            } else {
                adam_pass::<T, false>(&rates, &mut ps, &mut ms, &mut vs, g.as_slice());
            }
            let rebuild = |data: Vec<T>| Tensor::from_vec(data, &shape);
            *m = rebuild(ms)?;
            *v = rebuild(vs)?;
            *p = rebuild(ps)?;
        }
        Ok(())
    }

    fn state(&self) -> OptimizerState<T> {
        self.moments.state()
    }

    /// Also an error if a second moment `v` holds a number that is negative or NaN: `v` is an
    /// average of squares, and `sqrt(v)` would make the weights NaN.
    fn load_state(&mut self, state: OptimizerState<T>) -> Result<(), Error> {
        const OP: &str = "Adam::load_state";
        let second = state.slots.get("v").into_iter().flatten();
        for (path, v) in second {
            if let Some(x) = v.as_slice().iter().find(|x| x.is_nan() || **x < T::zero()) {
                return Err(Error::InvalidArgument {
                    op: OP,
                    reason: format!(
                        "the second moment 'v' of the leaf '{path}' holds {x}, but it is an \
                         average of squares (>= 0)"
                    ),
                });
            }
        }
        self.moments.load(OP, state)
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
