//! Random expression graphs for the property tests in `random_graphs.rs`: the graph type, a
//! proptest strategy that generates them, one generic evaluator, and a driver per way of
//! differentiating them (forward, reverse and their nestings).
//!
//! A graph is a DAG in execution order: values `0..inputs` are the inputs, value `inputs + k` is
//! node `k`, and every node reads one or two values with smaller indices, chosen at random, so a
//! value is often read by several nodes (the lecture's reused value, whose total derivative sums
//! the contributions of every path).

use std::f64::consts::{E, FRAC_PI_2, LN_2};
use std::fmt;
use std::ops::RangeInclusive;

use perturb::{Dual, DualN, Scalar, Tape, Var, VectorFunction};
use proptest::prelude::*;
use proptest::sample::Index;

/// Inputs are drawn from `[-INPUT_BOUND, INPUT_BOUND]`.
pub const INPUT_BOUND: f64 = 2.0;

/// A node whose value could exceed this in magnitude (by interval arithmetic on the bounds of its
/// arguments) is wrapped in `tanh`, so that no chain of `mul`, `powi(3)`, ... can overflow and the
/// derivatives stay in a range where finite differences are meaningful.
pub const SQUASH_ABOVE: f64 = 4.0;

/// The operations a node may apply: all smooth and finite on the whole real line.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Op {
    Add,
    Sub,
    Mul,
    /// Multiplication by a constant on the right, `x * c` (the constant is recorded nowhere).
    Scale(f64),
    /// Multiplication by a constant on the left, `c * x` (the other argument order a
    /// binary rule sees with one constant operand).
    ScaleLeft(f64),
    Sin,
    Cos,
    Tanh,
    Atan,
    Sigmoid,
    Softplus,
    /// `exp(tanh(x))`.
    ExpTanh,
    /// `ln(1 + x^2)`.
    LnOnePlusSq,
    /// `sqrt(1 + x^2)`.
    SqrtOnePlusSq,
    /// `x / (1 + x^2)`.
    XOverOnePlusSq,
    /// `x.powi(2)`.
    Square,
    /// `x.powi(3)`.
    Cube,
}

/// How many distinct operations [`Op::from_code`] knows.
pub const OP_KINDS: usize = 17;

impl Op {
    /// The `code`-th operation (`code < OP_KINDS`); `c` is the constant of the two scalings.
    pub fn from_code(code: usize, c: f64) -> Op {
        match code {
            0 => Op::Add,
            1 => Op::Sub,
            2 => Op::Mul,
            3 => Op::Scale(c),
            4 => Op::Sin,
            5 => Op::Cos,
            6 => Op::Tanh,
            7 => Op::Atan,
            8 => Op::Sigmoid,
            9 => Op::Softplus,
            10 => Op::ExpTanh,
            11 => Op::LnOnePlusSq,
            12 => Op::SqrtOnePlusSq,
            13 => Op::XOverOnePlusSq,
            14 => Op::Square,
            15 => Op::Cube,
            16 => Op::ScaleLeft(c),
            _ => panic!("no operation with code {code}"),
        }
    }

    /// The inverse of [`Op::from_code`].
    pub fn code(self) -> usize {
        (0..OP_KINDS)
            .find(|&k| {
                std::mem::discriminant(&Op::from_code(k, 0.0)) == std::mem::discriminant(&self)
            })
            .expect("every operation has a code")
    }

    pub fn arity(self) -> usize {
        match self {
            Op::Add | Op::Sub | Op::Mul => 2,
            _ => 1,
        }
    }

    /// A bound on `|op(a, b)|` given `|a| <= ba` and `|b| <= bb`.
    fn bound(self, ba: f64, bb: f64) -> f64 {
        match self {
            Op::Add | Op::Sub => ba + bb,
            Op::Mul => ba * bb,
            Op::Scale(c) | Op::ScaleLeft(c) => c.abs() * ba,
            Op::Sin | Op::Cos | Op::Tanh | Op::Sigmoid => 1.0,
            Op::Atan => FRAC_PI_2,
            // softplus(x) <= max(x, 0) + ln 2
            Op::Softplus => ba + LN_2,
            Op::ExpTanh => E,
            Op::LnOnePlusSq => (1.0 + ba * ba).ln(),
            Op::SqrtOnePlusSq => (1.0 + ba * ba).sqrt(),
            // |x| / (1 + x^2) <= 1/2, at |x| = 1
            Op::XOverOnePlusSq => 0.5,
            Op::Square => ba * ba,
            Op::Cube => ba * ba * ba,
        }
    }

    /// Tape nodes one application records when its arguments are tape variables: constants
    /// (`1`, the scale factor) are recorded nowhere.
    fn tape_nodes(self) -> usize {
        match self {
            Op::ExpTanh => 2,                                              // tanh, exp
            Op::LnOnePlusSq | Op::SqrtOnePlusSq | Op::XOverOnePlusSq => 3, // x*x, 1+_, ln/sqrt/div
            _ => 1,
        }
    }

    fn name(self) -> String {
        match self {
            Op::Add => "add".into(),
            Op::Sub => "sub".into(),
            Op::Mul => "mul".into(),
            Op::Scale(c) => format!("scale[{c:?}]"),
            Op::ScaleLeft(c) => format!("scale_left[{c:?}]"),
            Op::Sin => "sin".into(),
            Op::Cos => "cos".into(),
            Op::Tanh => "tanh".into(),
            Op::Atan => "atan".into(),
            Op::Sigmoid => "sigmoid".into(),
            Op::Softplus => "softplus".into(),
            Op::ExpTanh => "exp_tanh".into(),
            Op::LnOnePlusSq => "ln_1_plus_sq".into(),
            Op::SqrtOnePlusSq => "sqrt_1_plus_sq".into(),
            Op::XOverOnePlusSq => "x_over_1_plus_sq".into(),
            Op::Square => "powi2".into(),
            Op::Cube => "powi3".into(),
        }
    }
}

/// A value computed at a point where its local partial is infinite or NaN, from a live value
/// `a` of the graph: the output never reads it (S1, dead branches).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Singular {
    /// `sqrt(a - a)`: value 0, partial +inf.
    Sqrt0,
    /// `ln(a - a)`: value -inf, partial +inf.
    Ln0,
    /// `asin(0 a + 2)`: value and partial NaN.
    Asin2,
    /// `1 / (a - a)`: value inf, partial -inf.
    Recip0,
    /// `atanh(a - a + 1)`: value and partial inf.
    Atanh1,
    /// `(a - a)^0.5` by `powf`: value 0, partials inf and NaN.
    PowfHalf0,
}

/// How many kinds [`Singular::from_code`] knows.
pub const SINGULAR_KINDS: usize = 6;

impl Singular {
    pub fn from_code(code: usize) -> Singular {
        [
            Singular::Sqrt0,
            Singular::Ln0,
            Singular::Asin2,
            Singular::Recip0,
            Singular::Atanh1,
            Singular::PowfHalf0,
        ][code]
    }

    /// The singular value, then its product with `a` (a dead node reading a dead node).
    fn eval<T: Scalar>(self, a: T) -> T {
        #[allow(clippy::eq_op)] // a zero recorded from `a`, on purpose
        let zero = a - a;
        let s = match self {
            Singular::Sqrt0 => zero.sqrt(),
            Singular::Ln0 => zero.ln(),
            Singular::Asin2 => (a * T::zero() + T::from_f64(2.0).unwrap()).asin(),
            Singular::Recip0 => T::one() / zero,
            Singular::Atanh1 => (zero + T::one()).atanh(),
            Singular::PowfHalf0 => zero.powf(T::from_f64(0.5).unwrap()),
        };
        s * a
    }
}

/// A dead branch: `kind` applied to value `arg`, recorded just before node `before` (so before
/// the output, the last node) and never read.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Dead {
    pub before: usize,
    pub arg: usize,
    pub kind: Singular,
}

/// Where a node's argument comes from: `(recent, index)`, see [`Graph::build`].
pub type ArgDraw = (bool, Index);

/// The raw draws for one node: operation code, two argument draws, the scaling constant.
pub type NodeDraw = (usize, ArgDraw, ArgDraw, f64);

/// One node: `op(args[0], args[1])` (a unary op reads `args[0]` only), then `tanh` if `squash`.
#[derive(Clone, Copy, PartialEq)]
pub struct Node {
    pub op: Op,
    pub args: [usize; 2],
    pub squash: bool,
}

/// A random expression DAG. The scalar output is the last node; the vector output is the last
/// node, then the values listed in `outputs`, then their sum.
#[derive(Clone, PartialEq)]
pub struct Graph {
    pub inputs: usize,
    pub nodes: Vec<Node>,
    pub outputs: Vec<usize>,
    /// Values computed and never read (none in [`graphs`], some in [`graphs_with_dead`]).
    pub dead: Vec<Dead>,
}

/// Prints the graph as the program it stands for, e.g. `v3 = tanh(mul(v0, v0))`, so that a
/// failing case proptest reports can be read (and turned into a test) directly.
impl fmt::Debug for Graph {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "Graph {{ inputs: v0..v{}", self.inputs)?;
        for (k, node) in self.nodes.iter().enumerate() {
            let [a, b] = node.args;
            let call = match node.op.arity() {
                2 => format!("{}(v{a}, v{b})", node.op.name()),
                _ => format!("{}(v{a})", node.op.name()),
            };
            let call = if node.squash {
                format!("tanh({call})")
            } else {
                call
            };
            writeln!(f, "  v{} = {call}", self.inputs + k)?;
        }
        for d in &self.dead {
            writeln!(
                f,
                "  before v{}: unused {:?}(v{})",
                self.inputs + d.before,
                d.kind,
                d.arg
            )?;
        }
        let outs: Vec<String> = self.outputs.iter().map(|o| format!("v{o}")).collect();
        write!(f, "  outputs: last, {}, sum }}", outs.join(", "))
    }
}

impl Graph {
    /// Builds a graph from raw draws: per node an operation code, two argument choices and a
    /// constant; per extra output a choice of value. Each argument is "recent" (one of the last
    /// three values, which makes deep chains) or any earlier value (which makes sharing).
    pub fn build(inputs: usize, raw: &[NodeDraw], outputs: &[Index]) -> Graph {
        let pick = |available: usize, (recent, index): ArgDraw| {
            if recent {
                let window = available.min(3);
                available - window + index.index(window)
            } else {
                index.index(available)
            }
        };
        let mut bounds = vec![INPUT_BOUND; inputs];
        let mut nodes = Vec::with_capacity(raw.len());
        for &(code, a, b, c) in raw {
            let available = bounds.len();
            let op = Op::from_code(code, c);
            let a = pick(available, a);
            let b = if op.arity() == 2 {
                pick(available, b)
            } else {
                a
            };
            let bound = op.bound(bounds[a], bounds[b]);
            let squash = bound > SQUASH_ABOVE;
            bounds.push(if squash { 1.0 } else { bound });
            nodes.push(Node {
                op,
                args: [a, b],
                squash,
            });
        }
        let total = bounds.len();
        let outputs = outputs.iter().map(|i| i.index(total)).collect();
        Graph {
            inputs,
            nodes,
            outputs,
            dead: Vec::new(),
        }
    }

    /// The same graph without its dead branches.
    pub fn without_dead(&self) -> Graph {
        Graph {
            dead: Vec::new(),
            ..self.clone()
        }
    }

    /// How many tape nodes a recording of the scalar output makes: one per input, plus each
    /// node's operations (every node depends on an input, so each is recorded).
    pub fn tape_len(&self) -> usize {
        self.inputs
            + self
                .nodes
                .iter()
                .map(|n| n.op.tape_nodes() + usize::from(n.squash))
                .sum::<usize>()
    }

    /// How many times each value is read by a node (a binary node reading `v` twice counts 2).
    pub fn fan_out(&self) -> Vec<usize> {
        let mut uses = vec![0; self.inputs + self.nodes.len()];
        for node in &self.nodes {
            for &arg in &node.args[..node.op.arity()] {
                uses[arg] += 1;
            }
        }
        uses
    }

    /// The number of outputs of [`eval_vector`].
    pub fn vector_len(&self) -> usize {
        self.outputs.len() + 2
    }
}

/// The raw draws for one node (see [`Graph::build`]).
fn raw_node() -> impl Strategy<Value = NodeDraw> {
    let arg = || (proptest::bool::weighted(0.4), any::<Index>());
    (0..OP_KINDS, arg(), arg(), -2.0..2.0_f64)
}

/// Graphs with an input count in `inputs` and a node count in `nodes`, with 1 to 3 extra outputs.
pub fn graphs(
    inputs: RangeInclusive<usize>,
    nodes: RangeInclusive<usize>,
) -> impl Strategy<Value = Graph> {
    (inputs, nodes)
        .prop_flat_map(|(n, k)| {
            (
                Just(n),
                proptest::collection::vec(raw_node(), k),
                proptest::collection::vec(any::<Index>(), 1..=3),
            )
        })
        .prop_map(|(n, raw, outputs)| Graph::build(n, &raw, &outputs))
}

/// Graphs as [`graphs`] gives, plus 1 to 4 dead branches recorded before the output.
pub fn graphs_with_dead(
    inputs: RangeInclusive<usize>,
    nodes: RangeInclusive<usize>,
) -> impl Strategy<Value = Graph> {
    graphs(inputs, nodes)
        .prop_flat_map(|g| {
            let draw = (0..SINGULAR_KINDS, any::<Index>(), any::<Index>());
            (Just(g), proptest::collection::vec(draw, 1..=4))
        })
        .prop_map(|(mut g, draws)| {
            g.dead = draws
                .into_iter()
                .map(|(code, before, arg)| {
                    let before = before.index(g.nodes.len());
                    Dead {
                        before,
                        arg: arg.index(g.inputs + before),
                        kind: Singular::from_code(code),
                    }
                })
                .collect();
            g
        })
}

/// [`cases`] with dead branches ([`graphs_with_dead`]).
pub fn cases_with_dead(
    inputs: RangeInclusive<usize>,
    nodes: RangeInclusive<usize>,
) -> impl Strategy<Value = (Graph, Vec<f64>, Vec<f64>)> {
    graphs_with_dead(inputs, nodes).prop_flat_map(|g| {
        let n = g.inputs;
        (
            Just(g),
            proptest::collection::vec(-INPUT_BOUND..INPUT_BOUND, n),
            proptest::collection::vec(-1.0..1.0_f64, n),
        )
    })
}

/// A graph, a point `x` in `[-2, 2]^n` and a direction `v` in `[-1, 1]^n`.
pub fn cases(
    inputs: RangeInclusive<usize>,
    nodes: RangeInclusive<usize>,
) -> impl Strategy<Value = (Graph, Vec<f64>, Vec<f64>)> {
    graphs(inputs, nodes).prop_flat_map(|g| {
        let n = g.inputs;
        (
            Just(g),
            proptest::collection::vec(-INPUT_BOUND..INPUT_BOUND, n),
            proptest::collection::vec(-1.0..1.0_f64, n),
        )
    })
}

/// The evaluator, written once for every scalar type: the value of every input and node, in
/// order.
pub fn eval_values<T: Scalar>(g: &Graph, x: &[T]) -> Vec<T> {
    assert_eq!(x.len(), g.inputs, "one value per input");
    let mut v = Vec::with_capacity(g.inputs + g.nodes.len());
    v.extend_from_slice(x);
    for (k, node) in g.nodes.iter().enumerate() {
        for dead in g.dead.iter().filter(|d| d.before == k) {
            // Recorded (on a tape) and computed, never read.
            let _ = dead.kind.eval(v[dead.arg]);
        }
        let (a, b) = (v[node.args[0]], v[node.args[1]]);
        let one = T::one();
        let y = match node.op {
            Op::Add => a + b,
            Op::Sub => a - b,
            Op::Mul => a * b,
            Op::Scale(c) => a * T::from_f64(c).expect("a finite constant"),
            Op::ScaleLeft(c) => T::from_f64(c).expect("a finite constant") * a,
            Op::Sin => a.sin(),
            Op::Cos => a.cos(),
            Op::Tanh => a.tanh(),
            Op::Atan => a.atan(),
            Op::Sigmoid => a.sigmoid(),
            Op::Softplus => a.softplus(),
            Op::ExpTanh => a.tanh().exp(),
            Op::LnOnePlusSq => (one + a * a).ln(),
            Op::SqrtOnePlusSq => (one + a * a).sqrt(),
            Op::XOverOnePlusSq => a / (one + a * a),
            Op::Square => a.powi(2),
            Op::Cube => a.powi(3),
        };
        v.push(if node.squash { y.tanh() } else { y });
    }
    v
}

/// The scalar output: the last node.
pub fn eval<T: Scalar>(g: &Graph, x: &[T]) -> T {
    *eval_values(g, x).last().expect("a graph has nodes")
}

/// The vector output: the last node, each value in `g.outputs`, and their sum.
pub fn eval_vector<T: Scalar>(g: &Graph, x: &[T]) -> Vec<T> {
    let v = eval_values(g, x);
    let mut out = Vec::with_capacity(g.vector_len());
    out.push(*v.last().expect("a graph has nodes"));
    out.extend(g.outputs.iter().map(|&i| v[i]));
    // A fold from +0, not `Iterator::sum`: since Rust 1.81-ish `f64`'s `Sum` starts from -0.0
    // while perturb's number types start from +0.0, so a sum of -0.0 terms would be -0.0 in
    // plain `f64` and +0.0 in every AD type (a sign-of-zero difference reported separately;
    // it would make the bitwise value checks fail for a reason unrelated to derivatives).
    out.push(g.outputs.iter().fold(T::zero(), |acc, &i| acc + v[i]));
    out
}

/// The graph's vector output as a [`VectorFunction`], for `perturb::jacobian`.
pub struct VectorGraph<'g>(pub &'g Graph);

impl VectorFunction for VectorGraph<'_> {
    fn eval<S: Scalar>(&self, x: &[S]) -> Vec<S> {
        eval_vector(self.0, x)
    }
}

/// The graph's scalar output as a one-output [`VectorFunction`].
pub struct ScalarGraph<'g>(pub &'g Graph);

impl VectorFunction for ScalarGraph<'_> {
    fn eval<S: Scalar>(&self, x: &[S]) -> Vec<S> {
        vec![eval(self.0, x)]
    }
}

/// `x + t v`.
pub fn along(x: &[f64], v: &[f64], t: f64) -> Vec<f64> {
    x.iter().zip(v).map(|(xi, vi)| xi + t * vi).collect()
}

/// Step of [`five_point`].
pub const FD_STEP: f64 = 5e-4;

/// `phi'(0)` by the fourth-order central difference
/// `(phi(-2h) - 8 phi(-h) + 8 phi(h) - phi(2h)) / 12h`, `h = FD_STEP`: truncation error
/// `h^4/30 |phi^(5)|` (about `2e-15 |phi^(5)|`), rounding about `1.5 eps |phi| / h`
/// (`7e-13 |phi|`). Tried on 4000 cases per property: `h = 1e-3` left truncation errors up to
/// 11% of the tolerance, `5e-4` at most 0.3% (rounding-dominated); `2.5e-4` gained nothing.
pub fn five_point(phi: impl Fn(f64) -> f64) -> f64 {
    let h = FD_STEP;
    (phi(-2.0 * h) - 8.0 * phi(-h) + 8.0 * phi(h) - phi(2.0 * h)) / (12.0 * h)
}

/// Derivatives of one graph by every driver, plus the values each evaluation reported (as the
/// plain `f64` at the bottom of its number type), for the value checks.
#[derive(Default)]
pub struct Values {
    pub by: Vec<(&'static str, Vec<f64>)>,
}

impl Values {
    pub fn new() -> Self {
        Values { by: Vec::new() }
    }
    fn push<T: Scalar>(&mut self, who: &'static str, values: &[T]) {
        self.by
            .push((who, values.iter().map(|v| v.to_f64_value()).collect()));
    }
}

/// The gradient by one forward pass per input, with `Dual<f64>` seeded with a unit tangent.
pub fn gradient_dual_passes(g: &Graph, x: &[f64], values: &mut Values) -> Vec<f64> {
    (0..x.len())
        .map(|j| {
            let xs: Vec<Dual<f64>> = x
                .iter()
                .enumerate()
                .map(|(k, &xk)| {
                    if k == j {
                        Dual::variable(xk)
                    } else {
                        Dual::constant(xk)
                    }
                })
                .collect();
            let all = eval_values(g, &xs);
            values.push("Dual<f64>", &all);
            all.last().expect("a graph has nodes").tangent()
        })
        .collect()
}

/// The gradient by `DualN<f64, N>` passes, `N` inputs per pass (the last chunk partly used).
pub fn gradient_dual_n<const N: usize>(g: &Graph, x: &[f64], values: &mut Values) -> Vec<f64> {
    let mut grad = vec![f64::NAN; x.len()];
    for start in (0..x.len()).step_by(N) {
        let xs: Vec<DualN<f64, N>> = x
            .iter()
            .enumerate()
            .map(|(j, &xj)| {
                let mut t = [0.0; N];
                if (start..start + N).contains(&j) {
                    t[j - start] = 1.0;
                }
                DualN::new(xj, t)
            })
            .collect();
        let all = eval_values(g, &xs);
        values.push("DualN<f64, N>", &all);
        let y = all.last().expect("a graph has nodes");
        let width = N.min(x.len() - start);
        grad[start..start + width].copy_from_slice(&y.tangents()[..width]);
    }
    grad
}

/// The directional derivative `grad f(x) . v` by one `Dual<f64>` pass seeded with `v`.
pub fn directional(g: &Graph, x: &[f64], v: &[f64]) -> f64 {
    let xs: Vec<Dual<f64>> = x
        .iter()
        .zip(v)
        .map(|(&xi, &vi)| Dual::new(xi, vi))
        .collect();
    eval(g, &xs).tangent()
}

/// The Hessian by forward over forward: `H[i][j]` from one `Dual<Dual<f64>>` pass seeded with
/// `e_i` inside and `e_j` outside, all `n^2` pairs (so symmetry is a check, not a construction).
pub fn hessian_forward_over_forward(g: &Graph, x: &[f64], values: &mut Values) -> Vec<Vec<f64>> {
    let n = x.len();
    let unit = |i: usize, k: usize| if i == k { 1.0 } else { 0.0 };
    (0..n)
        .map(|i| {
            (0..n)
                .map(|j| {
                    let xs: Vec<Dual<Dual<f64>>> = x
                        .iter()
                        .enumerate()
                        .map(|(k, &xk)| {
                            Dual::new(Dual::new(xk, unit(i, k)), Dual::constant(unit(j, k)))
                        })
                        .collect();
                    let all = eval_values(g, &xs);
                    values.push("Dual<Dual<f64>>", &all);
                    all.last().expect("a graph has nodes").tangent().tangent()
                })
                .collect()
        })
        .collect()
}

/// The Hessian by reverse over forward: for each `j`, record `f` on `Dual<Var<f64>>` numbers
/// whose values are tape variables and whose tangents are the constant `e_j`; the output's
/// tangent is the tape variable `grad f . e_j`, whose gradient is row `j`. One tape, cleared
/// between rows.
pub fn hessian_reverse_over_forward(g: &Graph, x: &[f64], values: &mut Values) -> Vec<Vec<f64>> {
    let mut tape = Tape::<f64>::new();
    let mut rows = Vec::with_capacity(x.len());
    for j in 0..x.len() {
        let row = {
            let vars = tape.vars(x);
            let xs: Vec<Dual<Var<f64>>> = vars
                .iter()
                .enumerate()
                .map(|(k, &xk)| Dual::new(xk, Var::constant(if k == j { 1.0 } else { 0.0 })))
                .collect();
            let all = eval_values(g, &xs);
            values.push("Dual<Var<f64>>", &all);
            let slope = all.last().expect("a graph has nodes").tangent();
            tape.gradient(slope)
                .and_then(|grad| grad.wrt(&vars))
                .expect("same tape")
        };
        rows.push(row);
        tape.clear();
    }
    rows
}

/// The gradient and Hessian by reverse over reverse: record `f` on `Var<Var<f64>>`; the outer
/// backward sweep runs on tape variables of the inner tape, so the gradient it returns is itself
/// recorded, and one inner sweep per component gives a Hessian row.
pub fn hessian_reverse_over_reverse(
    g: &Graph,
    x: &[f64],
    values: &mut Values,
) -> (Vec<f64>, Vec<Vec<f64>>) {
    let inner = Tape::<f64>::new();
    let xi = inner.vars(x);
    let outer = Tape::<Var<f64>>::new();
    let xo = outer.vars(&xi);
    let all = eval_values(g, &xo);
    values.push("Var<Var<f64>>", &all);
    let y = *all.last().expect("a graph has nodes");
    let grad = outer
        .gradient(y)
        .and_then(|gr| gr.wrt(&xo))
        .expect("same tape");
    let rows = grad
        .iter()
        .map(|&gi| {
            inner
                .gradient(gi)
                .and_then(|gr| gr.wrt(&xi))
                .expect("same tape")
        })
        .collect();
    (grad.iter().map(|gi| gi.value()).collect(), rows)
}

/// The values a `Var<Dual<f64>>` recording (what `perturb::hessian` and `perturb::hvp` record)
/// and a `DualVec` pass compute, for the value checks; those entry points report no value.
pub fn record_other_types(g: &Graph, x: &[f64], v: &[f64], values: &mut Values) {
    let tape = Tape::<Dual<f64>>::new();
    let xs: Vec<_> = x
        .iter()
        .zip(v)
        .map(|(&xi, &vi)| tape.var(Dual::new(xi, vi)))
        .collect();
    values.push("Var<Dual<f64>>", &eval_values(g, &xs));
    let arena = perturb::TangentArena::<f64>::new(x.len());
    let xs = arena.variables(x).expect("one value per tangent");
    values.push("DualVec<f64>", &eval_values(g, &xs));
    let tape = Tape::<f64>::new();
    values.push("Var<f64>", &eval_values(g, &tape.vars(x)));
}
