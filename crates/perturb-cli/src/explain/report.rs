//! What `perturb explain` prints: the value view, the sweeps and the derivatives, as text or
//! as JSON.

use perturb::explain::ReverseSweep;
use serde::Serialize;

use super::eval::{Evaluation, ExplainError, Row};
use super::parse::line_col;

/// The sweeps that were run.
pub struct Sweeps {
    /// For each variable perturbed in forward mode (an index into `Evaluation::variables`),
    /// the tangent of every node.
    pub forward: Vec<(usize, Vec<f64>)>,
    /// The reverse sweep from the output, when it ran and the output is a node.
    pub reverse: Option<ReverseSweep<f64>>,
    /// Whether the reverse sweep was asked for (it is skipped when the output is a constant).
    pub reverse_asked: bool,
    /// The variables whose derivatives are reported (indices into `Evaluation::variables`).
    pub report: Vec<usize>,
}

/// A number as the text output shows it: at most 10 significant digits, no trailing zeros.
pub fn number(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "inf" } else { "-inf" }.into();
    }
    let magnitude = v.abs().log10().floor() as i32;
    if (-4..15).contains(&magnitude) {
        let decimals = (9 - magnitude).max(0) as usize;
        trim_zeros(&format!("{v:.decimals$}"))
    } else {
        let s = format!("{v:.9e}");
        match s.split_once('e') {
            Some((mantissa, exponent)) => format!("{}e{exponent}", trim_zeros(mantissa)),
            None => s,
        }
    }
}

fn trim_zeros(s: &str) -> String {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s.to_string()
    }
}

/// A number inside a product: negative ones in parentheses.
fn factor(v: f64) -> String {
    let s = number(v);
    if s.starts_with('-') {
        format!("({s})")
    } else {
        s
    }
}

/// `a + b + c`, with negative terms in parentheses.
fn sum(terms: &[f64]) -> String {
    let parts: Vec<String> = terms
        .iter()
        .enumerate()
        .map(|(i, &t)| if i == 0 { number(t) } else { factor(t) })
        .collect();
    parts.join(" + ")
}

/// `x = 0.7, w = 3`.
fn point(ev: &Evaluation) -> String {
    let parts: Vec<String> = ev
        .variables
        .iter()
        .map(|v| format!("{} = {}", v.name, number(v.value)))
        .collect();
    parts.join(", ")
}

/// The whole text report.
pub fn text(ev: &Evaluation, sweeps: &Sweeps) -> String {
    let mut out = String::new();
    let names: Vec<&str> = ev.nodes.iter().map(|n| n.name.as_str()).collect();
    let output = &ev.output.name;
    let at = if ev.variables.is_empty() {
        "(no variables)".to_string()
    } else {
        format!("at {}", point(ev))
    };
    out.push_str(&format!("{output} = {} {at}\n\n", number(ev.output.value)));

    // The value view.
    out.push_str(
        "Value view: each intermediate value (a node of the graph), how it is computed,\n\
         its value and its local partial derivatives\n",
    );
    let mut table: Vec<[String; 4]> = vec![[
        "node".into(),
        "definition".into(),
        "value".into(),
        "local partial derivatives".into(),
    ]];
    for row in &ev.rows {
        table.push(match row {
            Row::Node(i) => {
                let node = &ev.trace.nodes[*i];
                let info = &ev.nodes[*i];
                let partials: Vec<String> = node
                    .parents
                    .iter()
                    .zip(&node.partials)
                    .map(|(&p, &d)| format!("∂{}/∂{} = {}", info.name, names[p], number(d)))
                    .collect();
                let mut partials = partials.join(", ");
                if let Some(note) = &info.note {
                    partials.push_str(&format!("  ({note})"));
                }
                [
                    info.name.clone(),
                    info.definition.clone(),
                    number(node.value),
                    partials,
                ]
            }
            Row::Alias { name, node } => [
                name.clone(),
                names[*node].to_string(),
                number(ev.trace.nodes[*node].value),
                format!("(another name for {}: no new node)", names[*node]),
            ],
            Row::Constant {
                name,
                definition,
                value,
            } => [
                name.clone(),
                definition.clone(),
                number(*value),
                "(a constant: not a node, derivative 0)".into(),
            ],
        });
    }
    let width = |c: usize| {
        table
            .iter()
            .map(|r| r[c].chars().count())
            .max()
            .unwrap_or(0)
    };
    let (w0, w1, w2) = (width(0), width(1), width(2));
    if table.len() == 1 {
        table[0] = [
            "(no nodes: the expression uses no variable)".into(),
            String::new(),
            String::new(),
            String::new(),
        ];
    }
    for r in &table {
        let line = format!("  {:<w0$}  {:<w1$}  {:>w2$}  {}", r[0], r[1], r[2], r[3]);
        out.push_str(line.trim_end());
        out.push('\n');
    }

    // Forward sweeps.
    for (v, tangents) in &sweeps.forward {
        let x = &ev.variables[*v].name;
        out.push_str(&format!(
            "\nForward mode, perturbing {x}: seed d{x}/d{x} = 1 (every other input 0), then from the\n\
             inputs on, each node's tangent d(node)/d{x} is the sum over its parents of\n\
             (local partial) * (the parent's tangent)\n"
        ));
        for (i, node) in ev.trace.nodes.iter().enumerate() {
            let n = names[i];
            let t = tangents[i];
            if node.parents.is_empty() {
                let why = if i == ev.variables[*v].node {
                    "the seed"
                } else {
                    "another input"
                };
                out.push_str(&format!("  d{n}/d{x} = {}  ({why})\n", number(t)));
                continue;
            }
            let symbols: Vec<String> = node
                .parents
                .iter()
                .map(|&p| format!("∂{n}/∂{} * d{}/d{x}", names[p], names[p]))
                .collect();
            let products: Vec<String> = node
                .parents
                .iter()
                .zip(&node.partials)
                .map(|(&p, &d)| format!("{} * {}", factor(d), factor(tangents[p])))
                .collect();
            let mut line = format!(
                "  d{n}/d{x} = {} = {}",
                symbols.join(" + "),
                products.join(" + ")
            );
            if node.parents.len() > 1 {
                let terms: Vec<f64> = node
                    .parents
                    .iter()
                    .zip(&node.partials)
                    .map(|(&p, &d)| d * tangents[p])
                    .collect();
                line.push_str(&format!(" = {}", sum(&terms)));
            }
            line.push_str(&format!(" = {}\n", number(t)));
            out.push_str(&line);
        }
    }
    if !sweeps.forward.is_empty() && ev.output.node.is_none() {
        out.push_str(&format!(
            "  ({output} is a constant: it does not depend on any variable)\n"
        ));
    }

    // The reverse sweep.
    if let (Some(sweep), Some(o)) = (&sweeps.reverse, ev.output.node) {
        out.push_str(&format!(
            "\nReverse mode, from {output}: seed d{output}/d{output} = 1, then from the output back, each\n\
             node's adjoint d{output}/d(node) is the sum over the nodes that use it of\n\
             (their adjoint) * (local partial): one contribution per use\n"
        ));
        for p in (0..=o).rev() {
            let n = names[p];
            let adjoint = sweep.adjoints[p];
            if p == o {
                out.push_str(&format!(
                    "  d{output}/d{n} = {}  (the seed)\n",
                    number(adjoint)
                ));
                continue;
            }
            let into: Vec<_> = sweep.contributions.iter().filter(|c| c.to == p).collect();
            if into.is_empty() {
                out.push_str(&format!(
                    "  d{output}/d{n} = 0  ({n} is not used on the way to {output})\n"
                ));
                continue;
            }
            let symbols: Vec<String> = into
                .iter()
                .map(|c| format!("d{output}/d{} * ∂{}/∂{n}", names[c.from], names[c.from]))
                .collect();
            let products: Vec<String> = into
                .iter()
                .map(|c| format!("{} * {}", factor(sweep.adjoints[c.from]), factor(c.local)))
                .collect();
            let mut line = format!(
                "  d{output}/d{n} = {} = {}",
                symbols.join(" + "),
                products.join(" + ")
            );
            if into.len() > 1 {
                let terms: Vec<f64> = into.iter().map(|c| c.amount).collect();
                line.push_str(&format!(" = {}", sum(&terms)));
            }
            line.push_str(&format!(" = {}", number(adjoint)));
            if into.len() > 1 {
                line.push_str(&format!(
                    "\n      ({n} is used {} times: the {} contributions add up to the total derivative)",
                    into.len(),
                    into.len()
                ));
            }
            line.push('\n');
            out.push_str(&line);
        }
    } else if sweeps.reverse_asked && ev.output.node.is_none() {
        out.push_str(&format!(
            "\nReverse mode: {output} is a constant, so there is nothing to sweep\n"
        ));
    }

    // The derivatives.
    if !sweeps.report.is_empty() {
        out.push_str(&format!("\nDerivatives of {output} {at}\n"));
        for d in derivatives(ev, sweeps) {
            let mut line = format!("  d{output}/d{} = {}", d.wrt, number(d.value));
            match (d.forward, d.reverse) {
                (Some(f), Some(r)) => {
                    line.push_str(&format!("  (forward {}, reverse {})", number(f), number(r)))
                }
                (Some(_), None) => line.push_str("  (forward mode)"),
                (None, Some(_)) => line.push_str("  (reverse mode)"),
                (None, None) => line.push_str(&format!("  ({output} is a constant)")),
            }
            line.push('\n');
            out.push_str(&line);
        }
    }
    out
}

/// One derivative of the output, from each sweep that computed it.
#[derive(Serialize)]
struct Derivative {
    of: String,
    wrt: String,
    /// The reverse sweep's value if it ran, else the forward sweep's.
    value: f64,
    forward: Option<f64>,
    reverse: Option<f64>,
}

fn derivatives(ev: &Evaluation, sweeps: &Sweeps) -> Vec<Derivative> {
    sweeps
        .report
        .iter()
        .map(|&v| {
            let var = &ev.variables[v];
            let forward = sweeps.forward.iter().find(|(w, _)| *w == v).map(|(_, t)| {
                ev.output
                    .node
                    .map_or(0.0, |o| t.get(o).copied().unwrap_or(0.0))
            });
            let reverse = sweeps
                .reverse
                .as_ref()
                .map(|s| s.adjoints.get(var.node).copied().unwrap_or(0.0))
                .or(if sweeps.reverse_asked && ev.output.node.is_none() {
                    Some(0.0)
                } else {
                    None
                });
            Derivative {
                of: ev.output.name.clone(),
                wrt: var.name.clone(),
                value: reverse.or(forward).unwrap_or(0.0),
                forward,
                reverse,
            }
        })
        .collect()
}

#[derive(Serialize)]
struct JsonReport<'a> {
    expression: &'a str,
    /// The variables: name, value, node.
    variables: Vec<JsonVariable<'a>>,
    output: JsonOutput<'a>,
    /// Every node of the graph, in evaluation order (a topological order).
    nodes: Vec<JsonNode<'a>>,
    /// Names that are not nodes of their own: aliases and constants.
    bindings: Vec<JsonBinding<'a>>,
    /// One forward sweep per variable perturbed: the tangent of every node, by node index.
    forward: Vec<JsonForward<'a>>,
    /// The reverse sweep: the adjoint of every node (by node index) and every contribution.
    reverse: Option<JsonReverse<'a>>,
    derivatives: Vec<Derivative>,
    warnings: &'a [String],
}

#[derive(Serialize)]
struct JsonVariable<'a> {
    name: &'a str,
    value: f64,
    node: usize,
}

#[derive(Serialize)]
struct JsonOutput<'a> {
    name: &'a str,
    value: f64,
    node: Option<usize>,
}

#[derive(Serialize)]
struct JsonNode<'a> {
    index: usize,
    name: &'a str,
    definition: &'a str,
    op: &'a str,
    value: f64,
    /// The local partial derivative with respect to each parent.
    partials: Vec<JsonPartial<'a>>,
    line: Option<usize>,
    column: Option<usize>,
}

#[derive(Serialize)]
struct JsonPartial<'a> {
    parent: usize,
    name: &'a str,
    value: f64,
}

#[derive(Serialize)]
struct JsonBinding<'a> {
    name: &'a str,
    /// The node it names, for an alias.
    node: Option<usize>,
    /// Its definition, for a constant.
    definition: Option<&'a str>,
    value: f64,
}

#[derive(Serialize)]
struct JsonForward<'a> {
    wrt: &'a str,
    tangents: &'a [f64],
}

#[derive(Serialize)]
struct JsonReverse<'a> {
    output: &'a str,
    adjoints: &'a [f64],
    contributions: Vec<JsonContribution<'a>>,
}

#[derive(Serialize)]
struct JsonContribution<'a> {
    from: usize,
    from_name: &'a str,
    to: usize,
    to_name: &'a str,
    local: f64,
    amount: f64,
}

/// The whole report as JSON.
pub fn json(ev: &Evaluation, sweeps: &Sweeps, src: &str) -> String {
    let name = |i: usize| ev.nodes.get(i).map_or("?", |n| n.name.as_str());
    let report = JsonReport {
        expression: src,
        variables: ev
            .variables
            .iter()
            .map(|v| JsonVariable {
                name: &v.name,
                value: v.value,
                node: v.node,
            })
            .collect(),
        output: JsonOutput {
            name: &ev.output.name,
            value: ev.output.value,
            node: ev.output.node,
        },
        nodes: ev
            .trace
            .nodes
            .iter()
            .zip(&ev.nodes)
            .enumerate()
            .map(|(index, (node, info))| {
                let position = info.span.map(|s| line_col(src, s.start));
                JsonNode {
                    index,
                    name: &info.name,
                    definition: &info.definition,
                    op: node.op,
                    value: node.value,
                    partials: node
                        .parents
                        .iter()
                        .zip(&node.partials)
                        .map(|(&p, &d)| JsonPartial {
                            parent: p,
                            name: name(p),
                            value: d,
                        })
                        .collect(),
                    line: position.map(|p| p.0),
                    column: position.map(|p| p.1),
                }
            })
            .collect(),
        bindings: ev
            .rows
            .iter()
            .filter_map(|row| match row {
                Row::Node(_) => None,
                Row::Alias { name, node } => Some(JsonBinding {
                    name,
                    node: Some(*node),
                    definition: None,
                    value: ev.trace.nodes[*node].value,
                }),
                Row::Constant {
                    name,
                    definition,
                    value,
                } => Some(JsonBinding {
                    name,
                    node: None,
                    definition: Some(definition),
                    value: *value,
                }),
            })
            .collect(),
        forward: sweeps
            .forward
            .iter()
            .map(|(v, t)| JsonForward {
                wrt: &ev.variables[*v].name,
                tangents: t,
            })
            .collect(),
        reverse: sweeps.reverse.as_ref().map(|s| JsonReverse {
            output: &ev.output.name,
            adjoints: &s.adjoints,
            contributions: s
                .contributions
                .iter()
                .map(|c| JsonContribution {
                    from: c.from,
                    from_name: name(c.from),
                    to: c.to,
                    to_name: name(c.to),
                    local: c.local,
                    amount: c.amount,
                })
                .collect(),
        }),
        derivatives: derivatives(ev, sweeps),
        warnings: &ev.warnings,
    };
    serde_json::to_string_pretty(&report).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

#[derive(Serialize)]
struct JsonError<'a> {
    error: JsonErrorBody<'a>,
}

#[derive(Serialize)]
struct JsonErrorBody<'a> {
    message: &'a str,
    line: Option<usize>,
    column: Option<usize>,
    notes: &'a [String],
}

/// An error as JSON, for `--json`.
pub fn json_error(e: &ExplainError, src: &str) -> String {
    let position = e.position(src);
    let body = JsonError {
        error: JsonErrorBody {
            message: &e.message,
            line: position.map(|p| p.0),
            column: position.map(|p| p.1),
            notes: &e.notes,
        },
    };
    serde_json::to_string_pretty(&body).unwrap_or_else(|_| "{\"error\": {}}".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_have_ten_significant_digits_and_no_trailing_zeros() {
        assert_eq!(number(0.7 * 0.7), "0.49");
        assert_eq!(number(2.0 / 0.7), "2.857142857");
        assert_eq!(number(-0.0), "0");
        assert_eq!(number(3.0), "3");
        assert_eq!(number(-1.5), "-1.5");
        assert_eq!(number(1.25e-7), "1.25e-7");
        assert_eq!(number(123456.789), "123456.789");
        assert_eq!(number(6.02e23), "6.02e23");
        assert_eq!(number(f64::INFINITY), "inf");
        assert_eq!(number(f64::NAN), "NaN");
    }

    #[test]
    fn sums_and_products_put_negative_numbers_in_parentheses() {
        assert_eq!(factor(-2.0), "(-2)");
        assert_eq!(sum(&[-1.0, -2.0, 3.0]), "-1 + (-2) + 3");
    }
}
