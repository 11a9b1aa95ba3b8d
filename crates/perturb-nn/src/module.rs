//! The [`Module`] trait: a model whose parameters live in it, as a parameter [`Tree`], with a
//! forward pass on any [`Array`] and a [`Context`] that says whether it is training.
//!
//! A module is generic over its leaf: `Sequential<Tensor<f64>>` holds the weights and
//! `Sequential<TensorVar<'t, Tensor<f64>>>` the same weights recorded on a tape, made with
//! [`Tree::map`]. One training step maps the model onto a tape, runs it, takes the gradient
//! of every leaf, and returns the updated model: there are no weights outside the model to
//! forget to load.
//!
//! ```
//! use perturb::tensor::{Array, Tensor, TensorTape};
//! use perturb::tree::Tree;
//! use perturb_nn::layers::{Linear, Relu, Sequential};
//! use perturb_nn::module::{Context, Module};
//! use perturb_nn::nn::Init;
//!
//! let mut model = Sequential::new()
//!     .push(Linear::new(2, 8, Init::HeNormal, 1).unwrap())
//!     .push(Relu)
//!     .push(Linear::new(8, 1, Init::XavierUniform, 2).unwrap());
//! let x = Tensor::from_vec(vec![0.0, 1.0, 1.0, 0.0, 1.0, 1.0], &[3, 2]).unwrap();
//! let y = Tensor::from_vec(vec![1.0, 1.0, 0.0], &[3, 1]).unwrap();
//! let mut ctx = Context::training(0);
//! let loss_of = |m: &Sequential<Tensor<f64>>| {
//!     m.forward_eval(&x).unwrap().sub(&y).square().mean_all().to_vec()[0]
//! };
//! let before = loss_of(&model);
//! for _ in 0..20 {
//!     let tape = TensorTape::new();
//!     let vars = model.map(|t| tape.var(t.clone()));
//!     let out = vars.forward(&tape.constant(x.clone()), &mut ctx).unwrap();
//!     let loss = out.sub(&tape.constant(y.clone())).square().mean_all();
//!     let grads = model.unflatten(tape.gradient(&loss, &vars.leaves()).unwrap()).unwrap();
//!     model = model.zip_map(&grads, |p, g| p.sub(&g.scale(0.05))).unwrap();
//! }
//! assert!(loss_of(&model) < before);
//! ```

use std::sync::{Arc, Mutex, MutexGuard};

use perturb::tensor::{Array, Tensor};
use perturb::tree::{Path, Tree};
use perturb::Error;

/// Whether a module is training (dropout draws masks, batch normalisation uses and updates
/// the batch's statistics) or evaluating (dropout is the identity, batch normalisation uses
/// its running statistics).
///
/// ```
/// use perturb_nn::module::{Context, Mode};
/// assert_eq!(Context::evaluation().mode(), Mode::Evaluation);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mode {
    /// Training: random layers draw, statistics are those of the batch.
    Training,
    /// Evaluation (inference): every layer is deterministic.
    Evaluation,
}

/// What a forward pass needs besides its input: the [`Mode`] and a seeded stream of random
/// numbers for dropout.
///
/// The stream is a seed and a counter: each random draw (one dropout layer in one forward
/// pass) takes the seed mixed with the counter, then increments the counter. So the masks
/// depend only on the seed and on how many draws came before: a run resumed from a
/// checkpoint that saved [`state`](Context::state) replays exactly the masks of an
/// uninterrupted run.
///
/// ```
/// use perturb_nn::module::Context;
/// let mut a = Context::training(7);
/// let first = a.next_seed();
/// let saved = a.state();
/// let second = a.next_seed();
/// let mut resumed = Context::from_state(saved);
/// assert_eq!(resumed.next_seed(), second);
/// assert_ne!(first, second);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Context {
    mode: Mode,
    rng: RngState,
}

/// The state of a [`Context`]'s random stream and its mode, for checkpoints: a seed and the
/// number of draws taken so far.
///
/// ```
/// use perturb_nn::module::{Context, RngState};
/// let mut ctx = Context::training(3);
/// ctx.next_seed();
/// assert_eq!(ctx.state().rng, RngState { seed: 3, draws: 1 });
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RngState {
    /// The seed the stream started from.
    pub seed: u64,
    /// How many draws were taken.
    pub draws: u64,
}

/// Everything a [`Context`] holds: its mode and its random stream's state.
///
/// ```
/// use perturb_nn::module::{Context, Mode};
/// let state = Context::training(1).state();
/// assert_eq!(state.mode, Mode::Training);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ContextState {
    /// Training or evaluation.
    pub mode: Mode,
    /// The random stream.
    pub rng: RngState,
}

impl Context {
    /// A training context whose random stream starts at `seed`.
    ///
    /// ```
    /// assert!(perturb_nn::module::Context::training(0).is_training());
    /// ```
    pub fn training(seed: u64) -> Self {
        Context {
            mode: Mode::Training,
            rng: RngState { seed, draws: 0 },
        }
    }

    /// An evaluation context (no random draws are made in evaluation; its stream has seed 0).
    ///
    /// ```
    /// assert!(!perturb_nn::module::Context::evaluation().is_training());
    /// ```
    pub fn evaluation() -> Self {
        Context {
            mode: Mode::Evaluation,
            rng: RngState { seed: 0, draws: 0 },
        }
    }

    /// The context saved as `state`.
    ///
    /// ```
    /// use perturb_nn::module::Context;
    /// let ctx = Context::training(5);
    /// assert_eq!(Context::from_state(ctx.state()), ctx);
    /// ```
    pub fn from_state(state: ContextState) -> Self {
        Context {
            mode: state.mode,
            rng: state.rng,
        }
    }

    /// The mode and the random stream's state, to save in a checkpoint.
    ///
    /// ```
    /// use perturb_nn::module::Context;
    /// assert_eq!(Context::training(9).state().rng.seed, 9);
    /// ```
    pub fn state(&self) -> ContextState {
        ContextState {
            mode: self.mode,
            rng: self.rng,
        }
    }

    /// Training or evaluation.
    ///
    /// ```
    /// use perturb_nn::module::{Context, Mode};
    /// assert_eq!(Context::training(0).mode(), Mode::Training);
    /// ```
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Whether the mode is [`Mode::Training`].
    ///
    /// ```
    /// assert!(perturb_nn::module::Context::training(0).is_training());
    /// ```
    pub fn is_training(&self) -> bool {
        self.mode == Mode::Training
    }

    /// Switches the mode, keeping the random stream where it is.
    ///
    /// ```
    /// use perturb_nn::module::{Context, Mode};
    /// let mut ctx = Context::training(0);
    /// ctx.set_mode(Mode::Evaluation);
    /// assert!(!ctx.is_training());
    /// ```
    pub fn set_mode(&mut self, mode: Mode) {
        self.mode = mode;
    }

    /// A fresh seed from the stream (for one random draw, e.g. one dropout mask): the stream's
    /// seed and the number of draws so far mixed by SplitMix64's finaliser; the count then
    /// goes up by one.
    ///
    /// ```
    /// use perturb_nn::module::Context;
    /// let (mut a, mut b) = (Context::training(1), Context::training(1));
    /// assert_eq!(a.next_seed(), b.next_seed()); // the same seed, the same stream
    /// assert_ne!(a.next_seed(), Context::training(2).next_seed());
    /// ```
    pub fn next_seed(&mut self) -> u64 {
        let mut z = self.rng.seed.wrapping_add(
            self.rng
                .draws
                .wrapping_add(1)
                .wrapping_mul(0x9E37_79B9_7F4A_7C15),
        );
        self.rng.draws = self.rng.draws.wrapping_add(1);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// A tensor of state that belongs to a module but is not a parameter: batch normalisation's
/// running mean and variance. Optimisers never see it (it is not a leaf of the module's
/// [`Tree`]); model files save and load it through [`Module::buffers`] and
/// [`Module::load_buffers`].
///
/// A buffer is shared: cloning it (or the module that holds it, or mapping that module to tape
/// variables with [`Tree::map`]) gives another handle on the same tensor, so that a training
/// forward pass on the mapped model updates the model's statistics. Stored as `f64` whatever
/// the model's element type. [`Module::deep_clone`] gives a module with buffers of its own.
///
/// ```
/// use perturb::tensor::Tensor;
/// use perturb_nn::module::Buffer;
/// let a = Buffer::new(Tensor::vector(&[1.0, 2.0]));
/// let shared = a.clone();
/// shared.set(Tensor::vector(&[3.0, 4.0])).unwrap();
/// assert_eq!(a.get().to_vec(), [3.0, 4.0]);
/// assert!(a.set(Tensor::vector(&[1.0])).is_err()); // the shape is fixed
/// ```
#[derive(Clone, Debug)]
pub struct Buffer(Arc<Mutex<Tensor<f64>>>);

impl Buffer {
    /// A buffer holding `value`.
    ///
    /// ```
    /// let b = perturb_nn::module::Buffer::new(perturb::tensor::Tensor::vector(&[0.0]));
    /// assert_eq!(b.shape(), [1]);
    /// ```
    pub fn new(value: Tensor<f64>) -> Self {
        Buffer(Arc::new(Mutex::new(value)))
    }

    fn lock(&self) -> MutexGuard<'_, Tensor<f64>> {
        // A panic while the lock was held left a whole tensor in it (every write replaces the
        // tensor at once), so a poisoned lock still holds a consistent value.
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A copy of the current value.
    ///
    /// ```
    /// let b = perturb_nn::module::Buffer::new(perturb::tensor::Tensor::vector(&[2.0]));
    /// assert_eq!(b.get().to_vec(), [2.0]);
    /// ```
    pub fn get(&self) -> Tensor<f64> {
        self.lock().clone()
    }

    /// The shape (fixed when the buffer is made).
    ///
    /// ```
    /// let b = perturb_nn::module::Buffer::new(perturb::tensor::Tensor::zeros(&[2, 3]));
    /// assert_eq!(b.shape(), [2, 3]);
    /// ```
    pub fn shape(&self) -> Vec<usize> {
        self.lock().shape().to_vec()
    }

    /// Replaces the value, seen by every handle; an error if `value` has another shape.
    ///
    /// ```
    /// use perturb::tensor::Tensor;
    /// let b = perturb_nn::module::Buffer::new(Tensor::zeros(&[2]));
    /// b.set(Tensor::vector(&[1.0, 2.0])).unwrap();
    /// assert!(b.set(Tensor::zeros(&[3])).is_err());
    /// ```
    pub fn set(&self, value: Tensor<f64>) -> Result<(), Error> {
        let mut current = self.lock();
        if current.shape() != value.shape() {
            return Err(Error::ShapeMismatch {
                op: "Buffer::set",
                lhs: current.shape().to_vec(),
                rhs: value.shape().to_vec(),
            });
        }
        *current = value;
        Ok(())
    }

    /// Whether `self` and `other` are handles on the same tensor.
    ///
    /// ```
    /// use perturb::tensor::Tensor;
    /// use perturb_nn::module::Buffer;
    /// let a = Buffer::new(Tensor::zeros(&[1]));
    /// assert!(a.shares_with(&a.clone()));
    /// assert!(!a.shares_with(&Buffer::new(Tensor::zeros(&[1]))));
    /// ```
    pub fn shares_with(&self, other: &Buffer) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// Makes this handle hold a copy of its own, no longer shared with the others.
    ///
    /// ```
    /// use perturb::tensor::Tensor;
    /// let a = perturb_nn::module::Buffer::new(Tensor::vector(&[1.0]));
    /// let mut b = a.clone();
    /// b.unshare();
    /// b.set(Tensor::vector(&[5.0])).unwrap();
    /// assert_eq!(a.get().to_vec(), [1.0]);
    /// ```
    pub fn unshare(&mut self) {
        *self = Buffer::new(self.get());
    }
}

/// A neural-network module: its parameters are the leaves of its [`Tree`] (so it maps onto a
/// tape, and optimisers and model files see them by path), its forward pass runs on any
/// [`Array`] leaf type, and its non-parameter state (running statistics) is in [`Buffer`]s.
///
/// Implemented by every layer in [`layers`](crate::layers) and by
/// [`Sequential`](crate::layers::Sequential). The forward pass's errors name the layer
/// (`Linear::forward: the input has 3 features ...`).
///
/// ```
/// use perturb::tensor::Tensor;
/// use perturb_nn::layers::Linear;
/// use perturb_nn::module::Module;
/// use perturb_nn::nn::Init;
/// let layer = Linear::<Tensor<f64>>::new(3, 2, Init::XavierUniform, 0).unwrap();
/// assert_eq!(layer.architecture(), "Linear(3,2)");
/// assert_eq!(layer.forward_eval(&Tensor::zeros(&[4, 3])).unwrap().shape(), &[4, 2]);
/// assert!(layer.forward_eval(&Tensor::zeros(&[4, 5])).is_err());
/// ```
pub trait Module<A: Array>: Tree<A> {
    /// The module applied to `x`, in `ctx`'s mode (random layers draw from `ctx`).
    ///
    /// ```
    /// use perturb::tensor::Tensor;
    /// use perturb_nn::layers::Dropout;
    /// use perturb_nn::module::{Context, Module};
    /// let drop = Dropout::new(0.5).unwrap();
    /// let x = Tensor::<f64>::ones(&[100]);
    /// let y = drop.forward(&x, &mut Context::training(0)).unwrap();
    /// assert!(y.to_vec().iter().all(|&v| v == 0.0 || v == 2.0));
    /// ```
    fn forward(&self, x: &A, ctx: &mut Context) -> Result<A, Error>;

    /// A one-line description of the module's structure (not its weights), e.g.
    /// `Sequential[Conv2d(1,16,3x3,pad=1),ReLU,MaxPool2d(2)]`: model files store it and
    /// refuse to load weights into a module whose description differs.
    ///
    /// ```
    /// use perturb::tensor::Tensor;
    /// use perturb_nn::layers::Relu;
    /// use perturb_nn::module::Module;
    /// assert_eq!(Module::<Tensor<f64>>::architecture(&Relu), "ReLU");
    /// ```
    fn architecture(&self) -> String;

    /// The module in evaluation mode (dropout off, running statistics): for predictions.
    ///
    /// ```
    /// use perturb::tensor::Tensor;
    /// use perturb_nn::layers::Dropout;
    /// use perturb_nn::module::Module;
    /// let x = Tensor::<f64>::ones(&[3]);
    /// assert_eq!(Dropout::new(0.9).unwrap().forward_eval(&x).unwrap().to_vec(), x.to_vec());
    /// ```
    fn forward_eval(&self, x: &A) -> Result<A, Error> {
        self.forward(x, &mut Context::evaluation())
    }

    /// Calls `f` on each [`Buffer`] with its path below `path` (as a parameter's: `3.running_mean`
    /// for the running mean of a batch normalisation at index 3 of a `Sequential`'s layers is
    /// `layers.3.running_mean`). Modules without buffers keep this default, which calls nothing;
    /// a module made of others calls theirs with its field's name pushed on `path`
    /// (`path.with("norm", |p| self.norm.visit_buffers(p, f))`), as its derived [`Tree`] does
    /// for the parameters.
    ///
    /// ```
    /// use perturb::tensor::Tensor;
    /// use perturb::tree::Path;
    /// use perturb_nn::layers::BatchNorm;
    /// use perturb_nn::module::Module;
    /// let bn = BatchNorm::<Tensor<f64>>::new(4).unwrap();
    /// let mut names = Vec::new();
    /// bn.visit_buffers(&mut Path::root(), &mut |p, _| names.push(p.to_string()));
    /// assert_eq!(names, ["running_mean", "running_var"]);
    /// ```
    fn visit_buffers(&self, path: &mut Path, f: &mut dyn FnMut(&Path, &Buffer)) {
        let _ = (path, f);
    }

    /// [`visit_buffers`](Module::visit_buffers), mutably (to replace or unshare them).
    ///
    /// ```
    /// use perturb::tensor::Tensor;
    /// use perturb::tree::Path;
    /// use perturb_nn::layers::BatchNorm;
    /// use perturb_nn::module::Module;
    /// let mut bn = BatchNorm::<Tensor<f64>>::new(2).unwrap();
    /// let mut n = 0;
    /// bn.visit_buffers_mut(&mut Path::root(), &mut |_, _| n += 1);
    /// assert_eq!(n, 2);
    /// ```
    fn visit_buffers_mut(&mut self, path: &mut Path, f: &mut dyn FnMut(&Path, &mut Buffer)) {
        let _ = (path, f);
    }

    /// Every buffer's path and current value, in order: what a model file saves besides the
    /// parameters ([`Tree::named_leaves`]).
    ///
    /// ```
    /// use perturb::tensor::Tensor;
    /// use perturb_nn::layers::{BatchNorm, Linear, Sequential};
    /// use perturb_nn::module::Module;
    /// use perturb_nn::nn::Init;
    /// let model = Sequential::<Tensor<f64>>::new()
    ///     .push(Linear::new(2, 3, Init::HeNormal, 0).unwrap())
    ///     .push(BatchNorm::new(3).unwrap());
    /// let names: Vec<String> = model.buffers().into_iter().map(|(p, _)| p).collect();
    /// assert_eq!(names, ["layers.1.running_mean", "layers.1.running_var"]);
    /// ```
    fn buffers(&self) -> Vec<(String, Tensor<f64>)> {
        let mut out = Vec::new();
        self.visit_buffers(&mut Path::root(), &mut |p, b| {
            out.push((p.to_string(), b.get()))
        });
        out
    }

    /// Sets every buffer from `values` (path and value, as [`buffers`](Module::buffers) gives
    /// them, in any order). Checked before anything is written: an error names a buffer that
    /// is missing from `values`, a value for no buffer, a path given twice, or a wrong shape.
    /// Takes `&self`: buffers are shared handles.
    ///
    /// ```
    /// use perturb::tensor::Tensor;
    /// use perturb_nn::layers::BatchNorm;
    /// use perturb_nn::module::Module;
    /// let bn = BatchNorm::<Tensor<f64>>::new(2).unwrap();
    /// let mut saved = bn.buffers();
    /// saved[0].1 = Tensor::vector(&[1.0, -1.0]);
    /// bn.load_buffers(&saved).unwrap();
    /// assert_eq!(bn.buffers()[0].1.to_vec(), [1.0, -1.0]);
    /// assert!(bn.load_buffers(&saved[..1]).is_err()); // running_var missing
    /// ```
    fn load_buffers(&self, values: &[(String, Tensor<f64>)]) -> Result<(), Error> {
        let op = "Module::load_buffers";
        let invalid = |reason: String| Error::InvalidArgument { op, reason };
        let mut targets = Vec::new();
        self.visit_buffers(&mut Path::root(), &mut |p, b| {
            targets.push((p.to_string(), b.clone()))
        });
        for (i, (name, _)) in values.iter().enumerate() {
            if values[..i].iter().any(|(n, _)| n == name) {
                return Err(invalid(format!("the buffer '{name}' is given twice")));
            }
            if !targets.iter().any(|(n, _)| n == name) {
                return Err(invalid(format!(
                    "'{name}' is not a buffer of this module (its buffers: {:?})",
                    targets.iter().map(|(n, _)| n).collect::<Vec<_>>()
                )));
            }
        }
        let mut matched = Vec::with_capacity(targets.len());
        for (name, buffer) in &targets {
            let Some((_, value)) = values.iter().find(|(n, _)| n == name) else {
                return Err(invalid(format!("no value for the buffer '{name}'")));
            };
            if buffer.shape() != value.shape() {
                return Err(invalid(format!(
                    "the buffer '{name}' has shape {:?}, the value {:?}",
                    buffer.shape(),
                    value.shape()
                )));
            }
            matched.push((buffer, value));
        }
        for (buffer, value) in matched {
            buffer.set(value.clone())?;
        }
        Ok(())
    }

    /// A clone whose buffers are its own: a plain `clone()` shares them with `self` (see
    /// [`Buffer`]).
    ///
    /// ```
    /// use perturb::tensor::Tensor;
    /// use perturb_nn::layers::BatchNorm;
    /// use perturb_nn::module::Module;
    /// let bn = BatchNorm::<Tensor<f64>>::new(1).unwrap();
    /// let copy = bn.deep_clone();
    /// copy.load_buffers(&[("running_mean".into(), Tensor::vector(&[5.0])),
    ///                     ("running_var".into(), Tensor::vector(&[2.0]))]).unwrap();
    /// assert_eq!(bn.buffers()[0].1.to_vec(), [0.0]);
    /// ```
    fn deep_clone(&self) -> Self
    where
        Self: Clone,
    {
        let mut copy = self.clone();
        copy.visit_buffers_mut(&mut Path::root(), &mut |_, b| b.unshare());
        copy
    }
}
