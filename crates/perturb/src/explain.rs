//! The chain rule made visible: a recorded computation as data, its forward and reverse sweeps
//! node by node, and its graph as DOT (and SVG with the `svg` feature).
//!
//! ```
//! use perturb::{Float, Scalar, Tape};
//!
//! // The lecture's L = -log sigmoid(w x^2) at x = 0.7, w = 3.
//! let tape = Tape::traced();
//! let x = tape.var(0.7_f64);
//! let w = tape.var(3.0);
//! let loss = -(w * x * x).sigmoid().ln();
//! let trace = tape.trace().unwrap();
//!
//! // Forward mode: the tangent of every node when x is perturbed by 1.
//! let tangents = trace.forward(x.node().unwrap());
//! // Reverse mode: the adjoint of every node, and what each edge contributed.
//! let reverse = trace.reverse(loss.node().unwrap());
//! assert!((tangents[loss.node().unwrap()] - reverse.adjoints[0]).abs() < 1e-15);
//! let dot = trace.to_dot(&trace.default_names(), None);
//! assert!(dot.starts_with("digraph"));
//! ```

use std::fmt::Write as _;

/// One node of a [`Trace`]: an input (no parents) or an operation with its local partial
/// derivative with respect to each parent.
///
/// ```
/// let tape = perturb::Tape::traced();
/// let x = tape.var(3.0_f64);
/// let _ = x * 2.0;
/// let node = &tape.trace().unwrap().nodes[1];
/// assert_eq!((node.op, node.parents.clone(), node.partials.clone(), node.value), ("mul", vec![0], vec![2.0], 6.0));
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct TraceNode<T> {
    /// The operation's name (`"input"` for an input).
    pub op: &'static str,
    /// The node index of each (non-constant) input of the operation.
    pub parents: Vec<usize>,
    /// The local partial derivative with respect to each parent (the lecture's `grads`).
    pub partials: Vec<T>,
    /// The value computed.
    pub value: T,
}

/// A recorded computation in execution order (a topological order): what
/// [`Tape::trace`](crate::Tape::trace) returns.
///
/// ```
/// let tape = perturb::Tape::traced();
/// let x = tape.var(2.0_f64);
/// let _y = x * x;
/// let trace = tape.trace().unwrap();
/// assert_eq!(trace.nodes.len(), 2);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Trace<T> {
    /// The nodes, in the order they were recorded.
    pub nodes: Vec<TraceNode<T>>,
}

/// One term of the reverse sweep: node `from` passes `adjoint(from) * local` to its parent `to`.
/// Where a value is used several times, its adjoint is the sum of the terms flowing into it
/// (the lecture's total derivative).
///
/// ```
/// let tape = perturb::Tape::traced();
/// let x = tape.var(3.0_f64);
/// let y = x * 2.0;
/// let c = &tape.trace().unwrap().reverse(y.node().unwrap()).contributions[0];
/// assert_eq!((c.from, c.to, c.local, c.amount), (1, 0, 2.0, 2.0));
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Contribution<T> {
    /// The node whose adjoint is passed back.
    pub from: usize,
    /// The parent receiving it.
    pub to: usize,
    /// The local partial derivative `d from / d to`.
    pub local: T,
    /// `adjoint(from) * local`.
    pub amount: T,
}

/// The result of [`Trace::reverse`].
///
/// ```
/// let tape = perturb::Tape::traced();
/// let x = tape.var(3.0_f64);
/// let y = x * x;
/// assert_eq!(tape.trace().unwrap().reverse(y.node().unwrap()).adjoints, vec![6.0, 1.0]);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct ReverseSweep<T> {
    /// The adjoint (derivative of the output) of every node.
    pub adjoints: Vec<T>,
    /// Every term passed along an edge, in the order the sweep computed them.
    pub contributions: Vec<Contribution<T>>,
}

/// What [`Trace::to_dot`] writes on the nodes besides their values.
///
/// ```
/// use perturb::explain::Annotation;
/// let tape = perturb::Tape::traced();
/// let x = tape.var(3.0_f64);
/// let _ = x * x;
/// let trace = tape.trace().unwrap();
/// let tangents = trace.forward(0);
/// let dot = trace.to_dot(&trace.default_names(), Some(Annotation::Tangents(&tangents)));
/// assert!(dot.contains("tangent 6"));
/// ```
#[derive(Clone, Copy, Debug)]
pub enum Annotation<'a, T> {
    /// The tangents of a forward sweep.
    Tangents(&'a [T]),
    /// The adjoints of a reverse sweep.
    Adjoints(&'a [T]),
}

impl<T: crate::Scalar> Trace<T> {
    /// Forward mode: the tangent of every node when node `seed` is perturbed by 1 (and every
    /// other input by 0). Each node's tangent is the sum over its parents of the local partial
    /// times the parent's tangent; only the parents that depend on `seed` (see
    /// [`depends_on`](Trace::depends_on)) take part, so a node that does not depend on `seed`
    /// has tangent exactly 0 even where a local partial is infinite (`sqrt(y)` at `y = 0`
    /// gives `inf * 0 = NaN` otherwise).
    ///
    /// ```
    /// let tape = perturb::Tape::traced();
    /// let x = tape.var(3.0_f64);
    /// let y = x * x * 2.0;
    /// let t = tape.trace().unwrap().forward(x.node().unwrap());
    /// assert_eq!(t[y.node().unwrap()], 12.0);
    ///
    /// // a = sqrt(y) at 0 (local partial inf) does not depend on x: its tangent is 0, not NaN.
    /// use perturb::Float;
    /// let tape = perturb::Tape::traced();
    /// let (x, y) = (tape.var(1.0_f64), tape.var(0.0));
    /// let a = y.sqrt();
    /// let t = tape.trace().unwrap().forward(x.node().unwrap());
    /// assert_eq!(t[a.node().unwrap()], 0.0);
    /// ```
    pub fn forward(&self, seed: usize) -> Vec<T> {
        let mut tangents = vec![T::zero(); self.nodes.len()];
        let depends = self.depends_on(seed);
        for (i, node) in self.nodes.iter().enumerate() {
            if i == seed {
                tangents[i] = T::one();
            } else if depends[i] {
                tangents[i] = node
                    .parents
                    .iter()
                    .zip(&node.partials)
                    .filter(|(&p, _)| depends[p])
                    .fold(T::zero(), |acc, (&p, &d)| acc + d * tangents[p]);
            }
        }
        tangents
    }

    /// Which nodes depend on node `seed` (itself included): `depends[i]` is true when a path
    /// of parent links leads from node `i` back to `seed`. Every other node's tangent for
    /// `seed` is exactly 0, whatever its local partials are. The forward counterpart of
    /// [`reaches`](Trace::reaches).
    ///
    /// ```
    /// let tape = perturb::Tape::traced();
    /// let (x, y) = (tape.var(1.0_f64), tape.var(2.0));
    /// let _a = y * 3.0;
    /// let _b = x * y;
    /// assert_eq!(tape.trace().unwrap().depends_on(x.node().unwrap()), vec![true, false, false, true]);
    /// ```
    pub fn depends_on(&self, seed: usize) -> Vec<bool> {
        let mut depends = vec![false; self.nodes.len()];
        if seed >= self.nodes.len() {
            return depends;
        }
        depends[seed] = true;
        for i in seed + 1..self.nodes.len() {
            depends[i] = self.nodes[i].parents.iter().any(|&p| depends[p]);
        }
        depends
    }

    /// Which nodes `output` depends on (itself included): `reaches[i]` is true when a path of
    /// parent links leads from `output` back to node `i`. Every other node is dead code for
    /// `output`: its derivative of `output` is exactly 0, whatever its local partials are.
    ///
    /// ```
    /// use perturb::Float;
    ///
    /// // a = sqrt(x) is recorded but not used by y = 2x.
    /// let tape = perturb::Tape::traced();
    /// let x = tape.var(0.0_f64);
    /// let _a = x.sqrt();
    /// let y = x * 2.0;
    /// assert_eq!(tape.trace().unwrap().reaches(y.node().unwrap()), vec![true, false, true]);
    /// ```
    pub fn reaches(&self, output: usize) -> Vec<bool> {
        let mut reached = vec![false; self.nodes.len()];
        if output >= self.nodes.len() {
            return reached;
        }
        reached[output] = true;
        for i in (0..=output).rev() {
            if reached[i] {
                for &p in &self.nodes[i].parents {
                    reached[p] = true;
                }
            }
        }
        reached
    }

    /// Reverse mode from node `output`: every node's adjoint and every edge's contribution.
    /// Only the nodes `output` depends on (see [`reaches`](Trace::reaches)) pass anything back:
    /// the others, and the nodes recorded after `output`, get adjoint 0 and no contribution, so
    /// an unused node with an infinite or NaN local partial (`sqrt` at 0) cannot turn the
    /// adjoints of its parents into NaN through `0 * inf`.
    ///
    /// ```
    /// // c = a b with b = 5a: dc/da = 5a (through c directly) + a * 5 (through b) = 10a.
    /// let tape = perturb::Tape::traced();
    /// let a = tape.var(1.5_f64);
    /// let b = a * 5.0;
    /// let c = a * b;
    /// let sweep = tape.trace().unwrap().reverse(c.node().unwrap());
    /// assert_eq!(sweep.adjoints[0], 15.0);
    /// let into_a: Vec<f64> = sweep.contributions.iter().filter(|c| c.to == 0).map(|c| c.amount).collect();
    /// assert_eq!(into_a, vec![7.5, 7.5]);
    ///
    /// // An unused sqrt at 0 (local partial inf) leaves dy/dx = 2.
    /// use perturb::Float;
    /// let tape = perturb::Tape::traced();
    /// let x = tape.var(0.0_f64);
    /// let _unused = x.sqrt();
    /// let y = x * 2.0;
    /// assert_eq!(tape.trace().unwrap().reverse(y.node().unwrap()).adjoints[0], 2.0);
    /// ```
    pub fn reverse(&self, output: usize) -> ReverseSweep<T> {
        let mut adjoints = vec![T::zero(); self.nodes.len()];
        let mut contributions = Vec::new();
        let reached = self.reaches(output);
        if output >= self.nodes.len() {
            return ReverseSweep {
                adjoints,
                contributions,
            };
        }
        adjoints[output] = T::one();
        for i in (0..=output).rev() {
            if !reached[i] {
                continue;
            }
            let node = &self.nodes[i];
            for (&p, &local) in node.parents.iter().zip(&node.partials) {
                let amount = adjoints[i] * local;
                adjoints[p] += amount;
                contributions.push(Contribution {
                    from: i,
                    to: p,
                    local,
                    amount,
                });
            }
        }
        ReverseSweep {
            adjoints,
            contributions,
        }
    }

    /// Names `v0, v1, ...` for the nodes, to pass to [`to_dot`](Trace::to_dot).
    ///
    /// ```
    /// let tape = perturb::Tape::traced();
    /// let _ = tape.var(1.0_f64);
    /// assert_eq!(tape.trace().unwrap().default_names(), vec!["v0".to_string()]);
    /// ```
    pub fn default_names(&self) -> Vec<String> {
        (0..self.nodes.len()).map(|i| format!("v{i}")).collect()
    }

    /// The graph in Graphviz's DOT language: one box per node with its name, operation and
    /// value (and tangent or adjoint when given), one edge per parent labelled with the local
    /// partial derivative. `names` gives each node's name (see
    /// [`default_names`](Trace::default_names)).
    ///
    /// ```
    /// let tape = perturb::Tape::traced();
    /// let x = tape.var(2.0_f64);
    /// let y = x * x;
    /// let trace = tape.trace().unwrap();
    /// let adjoints = trace.reverse(y.node().unwrap()).adjoints;
    /// let dot = trace.to_dot(&["x".into(), "y".into()], Some(perturb::explain::Annotation::Adjoints(&adjoints)));
    /// assert!(dot.contains("n0 -> n1 [label=\"4\"]"));
    /// assert!(dot.contains("adjoint 4"));
    /// ```
    pub fn to_dot(&self, names: &[String], annotation: Option<Annotation<'_, T>>) -> String {
        let mut out = String::from(
            "digraph perturb {\n  rankdir=LR;\n  node [shape=box, fontname=\"monospace\"];\n",
        );
        for (i, node) in self.nodes.iter().enumerate() {
            let name = names.get(i).cloned().unwrap_or_else(|| format!("v{i}"));
            let mut label = format!("{name} = {}\\nvalue {}", node.op, number(node.value));
            match annotation {
                Some(Annotation::Tangents(t)) => {
                    let _ = write!(
                        label,
                        "\\ntangent {}",
                        number(t.get(i).copied().unwrap_or_else(T::zero))
                    );
                }
                Some(Annotation::Adjoints(a)) => {
                    let _ = write!(
                        label,
                        "\\nadjoint {}",
                        number(a.get(i).copied().unwrap_or_else(T::zero))
                    );
                }
                None => {}
            }
            let _ = writeln!(out, "  n{i} [label=\"{}\"];", escape(&label));
        }
        for (i, node) in self.nodes.iter().enumerate() {
            for (&p, &d) in node.parents.iter().zip(&node.partials) {
                let _ = writeln!(out, "  n{p} -> n{i} [label=\"{}\"];", number(d));
            }
        }
        out.push_str("}\n");
        out
    }
}

/// A number as shown in graphs: 6 significant digits, no trailing zeros; exponent notation
/// for very small or very large magnitudes.
fn number<T: crate::Scalar>(x: T) -> String {
    let v = x.to_f64_value();
    if v == v.trunc() && v.abs() < 1e15 {
        return format!("{v}");
    }
    if v != 0.0 && (v.abs() < 1e-4 || v.abs() >= 1e15) {
        return format!("{v:.5e}");
    }
    // Digits after the point for 6 significant digits.
    let decimals = (5 - v.abs().log10().floor() as i32).clamp(0, 20) as usize;
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// Escapes a label for a DOT string, keeping `\n` line breaks.
pub(crate) fn escape(label: &str) -> String {
    label.replace('"', "\\\"")
}

/// Renders DOT (as [`Trace::to_dot`] and [`TensorTape::to_dot`](crate::tensor::TensorTape::to_dot)
/// write it) to SVG, laid out by the `layout-rs` crate: nothing else needs to be installed.
///
/// ```
/// let tape = perturb::Tape::traced();
/// let x = tape.var(2.0_f64);
/// let _ = x * x;
/// let trace = tape.trace().unwrap();
/// let svg = perturb::explain::dot_to_svg(&trace.to_dot(&trace.default_names(), None)).unwrap();
/// assert!(svg.contains("<svg"));
/// assert!(perturb::explain::dot_to_svg("digraph {").is_err());
/// // A graph without nodes is an error too (nothing to lay out).
/// assert!(perturb::explain::dot_to_svg("digraph { }").is_err());
/// ```
#[cfg(feature = "svg")]
pub fn dot_to_svg(dot: &str) -> Result<String, crate::Error> {
    use layout::backends::svg::SVGWriter;
    use layout::gv::{DotParser, GraphBuilder};

    let graph = DotParser::new(dot)
        .process()
        .map_err(|e| crate::Error::InvalidArgument {
            op: "dot_to_svg",
            reason: format!("malformed DOT: {e}"),
        })?;
    let mut builder = GraphBuilder::new();
    builder.visit_graph(&graph);
    let mut visual = builder.get();
    if visual.num_nodes() == 0 {
        // layout-rs panics on a graph without nodes.
        return Err(crate::Error::InvalidArgument {
            op: "dot_to_svg",
            reason: "the graph has no nodes to draw".into(),
        });
    }
    let mut svg = SVGWriter::new();
    visual.do_it(false, false, false, &mut svg);
    Ok(svg.finalize())
}

#[cfg(test)]
mod tests {
    /// S1: nodes the output does not reach pass nothing back (before, `0 * inf` made the
    /// adjoint of x NaN and the sweep listed a contribution from the unused node).
    #[test]
    fn reverse_skips_nodes_the_output_does_not_reach() {
        use crate::Float as _;
        let tape = crate::Tape::traced();
        let x = tape.var(0.0_f64);
        let w = tape.var(1.0_f64);
        let _root = x.sqrt();
        let _log = (x * w).ln();
        let y = x * w + w;
        let trace = tape.trace().unwrap();
        let sweep = trace.reverse(y.node().unwrap());
        assert_eq!((sweep.adjoints[0], sweep.adjoints[1]), (1.0, 1.0));
        let from: Vec<usize> = sweep.contributions.iter().map(|c| c.from).collect();
        let y = y.node().unwrap();
        assert!(from.iter().all(|&f| f == y || f == y - 1), "{from:?}");
    }

    #[test]
    fn numbers_keep_six_significant_digits() {
        assert_eq!(super::number(0.7_f64), "0.7");
        assert_eq!(super::number(-2.0065507849_f64), "-2.00655");
        assert_eq!(super::number(1234.56789_f64), "1234.57");
        assert_eq!(super::number(1.25e-7_f64), "1.25000e-7");
        assert_eq!(super::number(3.0_f64), "3");
    }
}
