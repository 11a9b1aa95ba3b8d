//! The computational graph as a picture (`perturb explain --graph out.svg|out.png|out.dot`).
//!
//! A [`Figure`] says what the picture shows: one card per node with its definition, value and
//! local partials, and its tangent (forward mode) or adjoint (reverse mode); one arrow per edge
//! with the term it carries (reverse mode: the contribution passed back to the value used;
//! forward mode: the term it adds to the tangent). [`layout`] places it, and the picture is
//! written as DOT ([`dot`]) or drawn as SVG or PNG ([`draw`]). Another view of the graph (a
//! web page) gets the same places, in pixels of the embedded font, from
//! `draw::Placed::new(&Figure::new(ev, sweeps))?.layout`: each node's column and box, and
//! each edge's route and label box.

mod dot;
pub mod draw;
pub mod layout;

use std::path::Path;

use super::eval::{printable, Evaluation, ExplainError};
use super::report::{self, listed, significant, Sweeps};

/// Significant digits of the numbers in a picture (the JSON has them all).
const DIGITS: usize = 6;
/// Names and definitions longer than this many characters are shortened in a picture.
const MAX_TEXT: usize = 40;

/// What a node is, which sets its colour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Input,
    Operation,
    /// The program's result.
    Output,
    /// A node the output does not depend on.
    Unused,
}

/// One node's card: a title (`b = w*a`), lines (the value and local partials) and the sweep's
/// lines (tangent or adjoint, shown highlighted).
#[derive(Clone, Debug, PartialEq)]
pub struct Card {
    pub title: String,
    pub lines: Vec<String>,
    pub sweep: Vec<String>,
    pub kind: Kind,
    /// How many edges leave the node: a value used more than once is marked.
    pub uses: usize,
}

/// One edge, from the value used to the node using it, with what it carries: `amount` (the
/// term, or the local partial when no sweep is shown) and how it is made (`detail`).
#[derive(Clone, Debug, PartialEq)]
pub struct Arrow {
    pub from: usize,
    pub to: usize,
    pub amount: String,
    pub detail: Option<String>,
}

/// What a picture of the graph shows.
#[derive(Clone, Debug, PartialEq)]
pub struct Figure {
    /// Lines above the graph saying what is shown.
    pub caption: Vec<String>,
    pub cards: Vec<Card>,
    pub arrows: Vec<Arrow>,
}

/// A number as a picture shows it.
fn num(v: f64) -> String {
    significant(v, DIGITS)
}

/// A number inside a product: negative ones in parentheses.
fn factor(v: f64) -> String {
    report::factor(v, DIGITS)
}

/// Source text as safe to show, at most [`MAX_TEXT`] characters (its middle cut to `…`), a
/// character the embedded font has no glyph for written as `\u{..}`.
fn clip(s: &str) -> String {
    let s = crate::plot::drawable(&printable(s));
    let n = s.chars().count();
    if n <= MAX_TEXT {
        return s;
    }
    let keep = MAX_TEXT / 2 - 1;
    let head: String = s.chars().take(keep).collect();
    let tail: String = s.chars().skip(n - keep).collect();
    format!("{head}…{tail}")
}

impl Figure {
    /// The figure of an evaluated program: adjoints and contributions after a reverse sweep,
    /// and the tangents for the first variable perturbed when forward mode is shown (forward
    /// mode alone puts its terms on the edges).
    pub fn new(ev: &Evaluation, sweeps: &Sweeps) -> Figure {
        let names: Vec<String> = ev.nodes.iter().map(|n| clip(&n.name)).collect();
        let trace = &ev.trace.nodes;
        let output = ev.output.node;
        let mut uses = vec![0; trace.len()];
        for node in trace {
            for &p in &node.parents {
                uses[p] += 1;
            }
        }
        let mut cards: Vec<Card> = (0..trace.len())
            .map(|i| card(ev, i, &names, uses[i]))
            .collect();
        let mut arrows: Vec<Arrow> = trace
            .iter()
            .enumerate()
            .flat_map(|(i, node)| {
                let names = &names;
                // Without a sweep, an edge shows its local partial.
                node.parents
                    .iter()
                    .zip(&node.partials)
                    .map(move |(&p, &d)| Arrow {
                        from: p,
                        to: i,
                        amount: format!("∂{}/∂{} = {}", names[i], names[p], num(d)),
                        detail: None,
                    })
            })
            .collect();
        let mut caption = Vec::new();
        let point = listed(
            ev.variables
                .iter()
                .map(|v| format!("{} = {}", clip(&v.name), num(v.value)))
                .collect(),
        );
        let forward_var = sweeps.forward_shown.first().copied();
        if let Some(v) = forward_var {
            let x = &names[ev.variables[v].node];
            forward(
                ev,
                v,
                &names,
                &mut cards,
                &mut arrows,
                sweeps.reverse.is_none(),
            );
            caption.push(format!("Forward mode, perturbing {x}, at {point}"));
            if sweeps.reverse.is_none() {
                caption.push(format!(
                    "Each edge carries its term forward: (local partial) × (the tangent of the \
                     value it starts from); a node's tangent d(node)/d{x} is the sum of its terms"
                ));
            }
        }
        if let (Some(sweep), Some(o)) = (&sweeps.reverse, output) {
            let y = &names[o];
            reverse(ev, sweep, y, &names, &mut cards, &mut arrows);
            caption.push(format!("Reverse mode, from {y}, at {point}"));
            caption.push(format!(
                "Each edge carries a contribution back: (the adjoint d{y}/d(node) of the node it \
                 ends at) × (local partial); a value used more than once adds its contributions"
            ));
        }
        if caption.is_empty() {
            caption.push(format!("The graph at {point}: edges carry local partials"));
        }
        Figure {
            caption,
            cards,
            arrows,
        }
    }
}

/// Node `i`'s card before the sweeps: its title, value and local partials.
fn card(ev: &Evaluation, i: usize, names: &[String], uses: usize) -> Card {
    let node = &ev.trace.nodes[i];
    let n = &names[i];
    let output = ev.output.node;
    let kind = if Some(i) == output {
        Kind::Output
    } else if output.is_some() && !ev.reached.get(i).copied().unwrap_or(true) {
        Kind::Unused
    } else if node.parents.is_empty() {
        Kind::Input
    } else {
        Kind::Operation
    };
    let title = if node.parents.is_empty() {
        format!("{n} (input)")
    } else {
        format!("{n} = {}", clip(&ev.nodes[i].definition))
    };
    let mut lines = vec![format!("value {}", num(node.value))];
    lines.extend(
        node.parents
            .iter()
            .zip(&node.partials)
            .map(|(&p, &d)| format!("∂{n}/∂{} = {}", names[p], num(d))),
    );
    Card {
        title,
        lines,
        sweep: Vec::new(),
        kind,
        uses,
    }
}

/// Adds forward mode's tangents for variable `v` to the cards (and, with `on_edges`, the term
/// each edge adds to them).
fn forward(
    ev: &Evaluation,
    v: usize,
    names: &[String],
    cards: &mut [Card],
    arrows: &mut [Arrow],
    on_edges: bool,
) {
    let seed = ev.variables[v].node;
    let x = &names[seed];
    let tangents = ev.trace.forward(seed);
    let depends = ev.trace.depends_on(seed);
    let mut edge = 0;
    for (i, node) in ev.trace.nodes.iter().enumerate() {
        let n = &names[i];
        // As in the text report: a parent that does not depend on the seed adds exactly 0
        // (`inf * 0` would say NaN).
        let terms: Vec<f64> = node
            .parents
            .iter()
            .zip(&node.partials)
            .map(|(&p, &d)| if depends[p] { d * tangents[p] } else { 0.0 })
            .collect();
        let line = match (node.parents.is_empty(), i == seed, terms.len()) {
            (true, true, _) => format!("d{n}/d{x} = 1 (the seed)"),
            (true, false, _) | (false, _, 0 | 1) => format!("d{n}/d{x} = {}", num(tangents[i])),
            (false, _, _) => {
                let terms = report::sum(&terms, DIGITS);
                format!("d{n}/d{x} = {terms} = {}", num(tangents[i]))
            }
        };
        cards[i].sweep.push(line);
        if on_edges {
            for ((&p, &d), &term) in node.parents.iter().zip(&node.partials).zip(&terms) {
                arrows[edge].amount = format!("→ {}", num(term));
                // Written as its product where that is 0 in floats too, as in the report.
                arrows[edge].detail = Some(if depends[p] || d.is_finite() {
                    format!("{} × {}", factor(d), factor(tangents[p]))
                } else {
                    format!("{} does not depend on {x}", names[p])
                });
                edge += 1;
            }
        }
    }
}

/// Adds the reverse sweep from the output (named `y`) to the cards, and each contribution to
/// its edge.
fn reverse(
    ev: &Evaluation,
    sweep: &perturb::explain::ReverseSweep<f64>,
    y: &str,
    names: &[String],
    cards: &mut [Card],
    arrows: &mut [Arrow],
) {
    // Edge k is parent slot k of the nodes in order; a node's contributions come in the order
    // of its parents, so the edge of each is found by counting.
    let mut first_edge = Vec::with_capacity(cards.len());
    let mut k = 0;
    for node in &ev.trace.nodes {
        first_edge.push(k);
        k += node.parents.len();
    }
    let mut slot = vec![0; cards.len()];
    let mut into: Vec<Vec<f64>> = vec![Vec::new(); cards.len()];
    for c in &sweep.contributions {
        let edge = first_edge[c.from] + slot[c.from];
        slot[c.from] += 1;
        arrows[edge].amount = format!("← {}", num(c.amount));
        arrows[edge].detail = Some(format!(
            "{} × {}",
            factor(sweep.adjoints[c.from]),
            factor(c.local)
        ));
        into[c.to].push(c.amount);
    }
    for (p, card) in cards.iter_mut().enumerate() {
        let n = &names[p];
        let adjoint = num(sweep.adjoints[p]);
        card.sweep.push(match into[p].len() {
            _ if Some(p) == ev.output.node => format!("d{y}/d{n} = 1 (the seed)"),
            0 => format!("d{y}/d{n} = 0 (not used for {y})"),
            1 => format!("d{y}/d{n} = {adjoint}"),
            _ => {
                format!("d{y}/d{n} = {} = {adjoint}", report::sum(&into[p], DIGITS))
            }
        });
    }
}

/// The largest [`layout_size`] drawn as SVG or PNG: past it a picture is too large to read;
/// DOT has no limit. The limit was set for layout-rs's time; this layout is faster, and the
/// limit is kept for the size of the picture. Measured with the release build on a shared
/// 2-core machine: a fan-out of 26 statements (size 776) takes 0.03 to 0.11 s as SVG and 0.9 s
/// as PNG, which is 18583 × 1831 pixels.
const MAX_LAYOUT: usize = 800;

/// The largest PNG drawn, in pixels (its buffer takes three bytes a pixel).
const MAX_PIXELS: f64 = 40e6;

/// What the layered layout places: the nodes, the edges (each has a label), and one bend for
/// every column an edge skips. Columns are longest paths from the inputs.
fn layout_size(trace: &perturb::explain::Trace<f64>) -> usize {
    let mut rank = vec![0usize; trace.nodes.len()];
    let mut size = trace.nodes.len();
    for (i, node) in trace.nodes.iter().enumerate() {
        rank[i] = node.parents.iter().map(|&p| rank[p] + 1).max().unwrap_or(0);
        size += node
            .parents
            .iter()
            .map(|&p| rank[i] - rank[p])
            .sum::<usize>();
    }
    size
}

/// Writes the graph to `path`: DOT for `.dot` or `.gv`, else a picture for `.svg` or `.png`.
pub fn write(path: &Path, ev: &Evaluation, sweeps: &Sweeps) -> Result<(), ExplainError> {
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    let format = match extension.as_deref() {
        Some("dot" | "gv") => None,
        Some("svg") => Some(draw::Format::Svg),
        Some("png") => Some(draw::Format::Png),
        _ => {
            return Err(ExplainError::new(format!(
                "--graph: {} should end in .svg or .png (a picture) or .dot (Graphviz)",
                path.display()
            )))
        }
    };
    let figure = Figure::new(ev, sweeps);
    let Some(format) = format else {
        return std::fs::write(path, dot::dot(&figure)).map_err(|e| {
            ExplainError::new(format!("--graph: cannot write {}: {e}", path.display()))
        });
    };
    let kind = format.name();
    if ev.trace.nodes.is_empty() {
        return Err(ExplainError::new(
            "--graph: the expression uses no variable, so its graph has no node to draw",
        ));
    }
    let size = layout_size(&ev.trace);
    if size > MAX_LAYOUT {
        return Err(ExplainError::new(format!(
            "--graph: the graph is too large to lay out as {kind}: its layout size (nodes + \
             edges + the columns its edges skip) is {size}, over the limit of {MAX_LAYOUT} \
             (past it a picture is too large to read); write {} instead (no limit) and draw \
             it with Graphviz (`dot -Tsvg`)",
            path.with_extension("dot").display()
        )));
    }
    let placed =
        draw::Placed::new(&figure).map_err(|e| ExplainError::new(format!("--graph: {e}")))?;
    if format == draw::Format::Png && placed.width * placed.height > MAX_PIXELS {
        return Err(ExplainError::new(format!(
            "--graph: the picture would be {:.0} × {:.0} pixels, more than the {} million a \
             PNG may have; write {} instead",
            placed.width,
            placed.height,
            MAX_PIXELS / 1e6,
            path.with_extension("svg").display()
        )));
    }
    let bytes = placed
        .render(format)
        .map_err(|e| ExplainError::new(format!("--graph: {e}")))?;
    crate::out_dir::write_atomic(path, |tmp| {
        std::fs::write(tmp, &bytes).map_err(|e| format!("cannot write {}: {e}", path.display()))
    })
    .map_err(|e| ExplainError::new(format!("--graph: {e}")))
}

#[cfg(test)]
mod tests {
    #[test]
    fn text_is_clipped_and_what_the_font_cannot_draw_escaped() {
        assert_eq!(super::clip("größe_θ_ж"), "größe_θ_ж");
        assert_eq!(super::clip("x_数"), "x_\\u{6570}");
        let long = super::clip(&"a".repeat(100));
        assert_eq!(long.chars().count(), super::MAX_TEXT - 1);
        assert!(long.contains('…'));
    }
}
