//! A [`Figure`] in Graphviz's DOT language, for graphs too large to draw here or to draw with
//! Graphviz's own layouts (`dot -Tsvg`).

use std::fmt::Write as _;

use super::{Figure, Kind};

/// A DOT string's contents: quotes and backslashes escaped, lines joined by `\n`.
fn quoted(lines: &[String]) -> String {
    lines
        .iter()
        .map(|l| l.replace('\\', "\\\\").replace('"', "\\\""))
        .collect::<Vec<_>>()
        .join("\\n")
}

/// The figure as DOT: one box per card (its title, lines and sweep), one edge per arrow with
/// what it carries; a value used more than once has a thick orange border.
pub fn dot(figure: &Figure) -> String {
    let mut out = String::from(
        "digraph perturb {\n  rankdir=LR;\n  node [shape=box, fontname=\"sans-serif\"];\n",
    );
    let _ = writeln!(
        out,
        "  label=\"{}\";\n  labelloc=t;",
        quoted(&figure.caption)
    );
    for (i, card) in figure.cards.iter().enumerate() {
        let mut lines = vec![card.title.clone()];
        if card.uses > 1 {
            lines.push(format!("used {} times", card.uses));
        }
        lines.extend(card.lines.iter().cloned());
        lines.extend(card.sweep.iter().cloned());
        let fill = match card.kind {
            Kind::Input => "#deebff",
            Kind::Operation => "white",
            Kind::Output => "#def4de",
            Kind::Unused => "#f4f4f4",
        };
        let border = if card.uses > 1 {
            ", color=\"#d66e00\", penwidth=3"
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "  n{i} [label=\"{}\", style=filled, fillcolor=\"{fill}\"{border}];",
            quoted(&lines)
        );
    }
    for arrow in &figure.arrows {
        let mut lines = vec![arrow.amount.clone()];
        lines.extend(arrow.detail.iter().cloned());
        let _ = writeln!(
            out,
            "  n{} -> n{} [label=\"{}\"];",
            arrow.from,
            arrow.to,
            quoted(&lines)
        );
    }
    out.push_str("}\n");
    out
}
