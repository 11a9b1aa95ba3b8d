//! What `perturb explain` prints: the value view, the sweeps and the derivatives, as text or
//! as JSON. Both are written as they are made, and both are linear in the size of the graph
//! (times the number of forward sweeps shown, which is capped).

use std::io::{self, Write};

use perturb::explain::{Contribution, ReverseSweep};
use serde::ser::{SerializeSeq, Serializer};
use serde::Serialize;

use super::eval::{Evaluation, ExplainError, Row};
use super::parse::line_cols;

/// At most this many forward sweeps (one per variable perturbed) are shown in full; the
/// derivatives of the others are still computed and listed.
pub const MAX_FORWARD_SWEEPS: usize = 200;

/// The forward sweeps shown in full have at most about this many lines in all (one per node
/// per sweep), so a large graph shows fewer of them (at least one).
pub const MAX_FORWARD_LINES: usize = 1_000_000;

/// How many of `variables` forward sweeps over a graph of `nodes` nodes are shown in full.
pub fn forward_sweeps_shown(variables: usize, nodes: usize) -> usize {
    variables
        .min(MAX_FORWARD_SWEEPS)
        .min((MAX_FORWARD_LINES / nodes.max(1)).max(1))
}

/// The sweeps that were run.
pub struct Sweeps {
    /// The variables (indices into `Evaluation::variables`) whose forward sweep is shown node by
    /// node (see [`forward_sweeps_shown`]). Each sweep is computed when it is written.
    pub forward_shown: Vec<usize>,
    /// How many variables were perturbed in forward mode without their sweep being shown.
    pub forward_hidden: usize,
    /// Forward mode's derivative of the output with respect to each reported variable (in the
    /// order of `report`), when forward mode ran.
    pub forward: Option<Vec<f64>>,
    /// The reverse sweep from the output, when it ran and the output is a node.
    pub reverse: Option<ReverseSweep<f64>>,
    /// Whether the reverse sweep was asked for (it is skipped when the output is a constant).
    pub reverse_asked: bool,
    /// The variables whose derivatives are reported (indices into `Evaluation::variables`).
    pub report: Vec<usize>,
}

/// A number as the text output shows it: at most 10 significant digits, no trailing zeros.
pub fn number(v: f64) -> String {
    significant(v, 10)
}

/// A number with at most `digits` significant digits (1 to 17), no trailing zeros; exponent
/// notation below 1e-4 and from 1e15 on.
pub fn significant(v: f64, digits: usize) -> String {
    let digits = digits.clamp(1, 17);
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
        let decimals = (digits as i32 - 1 - magnitude).max(0) as usize;
        trim_zeros(&format!("{v:.decimals$}"))
    } else {
        let s = format!("{v:.prec$e}", prec = digits - 1);
        match s.split_once('e') {
            Some((mantissa, exponent)) => format!("{}e{exponent}", trim_zeros(mantissa)),
            None => s,
        }
    }
}

/// At most this many items of a list are written out in a line (then a count of the others).
pub const MAX_LISTED: usize = 10;

/// `a, b, c`, or the first [`MAX_LISTED`] items and `and N more`.
pub fn listed(mut items: Vec<String>) -> String {
    if items.len() > MAX_LISTED {
        let more = items.len() - MAX_LISTED;
        items.truncate(MAX_LISTED);
        items.push(format!("and {more} more"));
    }
    items.join(", ")
}

/// A value given with `--at`, as [`number`] shows it but keeping the sign of `-0`.
pub fn given(v: f64) -> String {
    if v == 0.0 && v.is_sign_negative() {
        "-0".into()
    } else {
        number(v)
    }
}

fn trim_zeros(s: &str) -> String {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s.to_string()
    }
}

/// A number inside a product, with `digits` significant digits: negative ones in parentheses.
pub fn factor(v: f64, digits: usize) -> String {
    let s = significant(v, digits);
    if s.starts_with('-') {
        format!("({s})")
    } else {
        s
    }
}

/// `a + b + c` with `digits` significant digits, negative terms in parentheses.
pub fn sum(terms: &[f64], digits: usize) -> String {
    let parts: Vec<String> = terms
        .iter()
        .enumerate()
        .map(|(i, &t)| {
            if i == 0 {
                significant(t, digits)
            } else {
                factor(t, digits)
            }
        })
        .collect();
    parts.join(" + ")
}

/// `x = 0.7, w = 3`.
fn point(ev: &Evaluation) -> String {
    let parts: Vec<String> = ev
        .variables
        .iter()
        .map(|v| format!("{} = {}", v.name, given(v.value)))
        .collect();
    listed(parts)
}

/// The whole text report, written to `out` as it is made.
pub fn text(ev: &Evaluation, sweeps: &Sweeps, out: &mut dyn Write) -> io::Result<()> {
    let output = &ev.output.name;
    let at = if ev.variables.is_empty() {
        "(no variables)".to_string()
    } else {
        format!("at {}", point(ev))
    };
    writeln!(out, "{output} = {} {at}\n", number(ev.output.value))?;
    value_view(ev, out)?;
    for &v in &sweeps.forward_shown {
        forward_sweep(ev, v, out)?;
    }
    if sweeps.forward_hidden > 0 {
        writeln!(out, "\n{}", hidden_forward_note(sweeps))?;
    }
    if sweeps.forward.is_some() && ev.output.node.is_none() {
        writeln!(
            out,
            "  ({output} is a constant: it does not depend on any variable)"
        )?;
    }
    if let (Some(sweep), Some(o)) = (&sweeps.reverse, ev.output.node) {
        reverse_sweep(ev, sweep, o, out)?;
    } else if sweeps.reverse_asked && ev.output.node.is_none() {
        writeln!(
            out,
            "\nReverse mode: {output} is a constant, so there is nothing to sweep"
        )?;
    }
    if !sweeps.report.is_empty() {
        writeln!(out, "\nDerivatives of {output} {at}")?;
        for d in derivatives(ev, sweeps) {
            let mut line = format!("  d{output}/d{} = {}", d.wrt, number(d.value.0));
            match (d.forward, d.reverse) {
                (Some(f), Some(r)) => line.push_str(&format!(
                    "  (forward {}, reverse {})",
                    number(f.0),
                    number(r.0)
                )),
                (Some(_), None) => line.push_str("  (forward mode)"),
                (None, Some(_)) => line.push_str("  (reverse mode)"),
                (None, None) => line.push_str(&format!("  ({output} is a constant)")),
            }
            writeln!(out, "{line}")?;
        }
    }
    Ok(())
}

/// What to say when `hidden` forward sweeps are not shown.
pub fn hidden_forward_note(sweeps: &Sweeps) -> String {
    format!(
        "(the forward sweeps of {} more variables are not shown: {} are shown node by node \
         (at most {MAX_FORWARD_SWEEPS}, and at most {MAX_FORWARD_LINES} lines in all); their \
         derivatives are listed below; to see one, name it with --wrt NAME)",
        sweeps.forward_hidden,
        sweeps.forward_shown.len()
    )
}

/// Whether the output depends on node `i` (every node, when the output is a constant).
fn reached(ev: &Evaluation, i: usize) -> bool {
    ev.reached.get(i).copied().unwrap_or(true)
}

/// The value view: one row per node, alias and constant, in program order.
fn value_view(ev: &Evaluation, out: &mut dyn Write) -> io::Result<()> {
    let names: Vec<&str> = ev.nodes.iter().map(|n| n.name.as_str()).collect();
    writeln!(
        out,
        "Value view: each intermediate value (a node of the graph), how it is computed,\n\
         its value and its local partial derivatives"
    )?;
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
                if ev.output.node.is_some() && !reached(ev, *i) {
                    partials.push_str(&format!("  ({} does not depend on it)", ev.output.name));
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
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}

/// Forward mode perturbing variable `v`, node by node (the sweep is computed here).
fn forward_sweep(ev: &Evaluation, v: usize, out: &mut dyn Write) -> io::Result<()> {
    let names: Vec<&str> = ev.nodes.iter().map(|n| n.name.as_str()).collect();
    let output = &ev.output.name;
    let seed = ev.variables[v].node;
    let tangents = ev.trace.forward(seed);
    let depends = ev.trace.depends_on(seed);
    let x = &ev.variables[v].name;
    writeln!(
        out,
        "\nForward mode, perturbing {x}: seed d{x}/d{x} = 1 (every other input 0), then from the\n\
         inputs on, each node's tangent d(node)/d{x} is the sum over its parents of\n\
         (local partial) * (the parent's tangent)"
    )?;
    for (i, node) in ev.trace.nodes.iter().enumerate() {
        let n = names[i];
        let t = tangents[i];
        if node.parents.is_empty() {
            let why = if i == seed {
                "the seed"
            } else {
                "another input"
            };
            writeln!(out, "  d{n}/d{x} = {}  ({why})", number(t))?;
            continue;
        }
        // A parent with no path back to the seed adds exactly 0; written as its product
        // (`0.49 * 0`) where that is 0 in floats too, else as 0 (`inf * 0` would say NaN).
        let adds = |p: usize, d: f64| depends[p] || d.is_finite();
        if !depends[i] && !node.partials.iter().all(|d| d.is_finite()) {
            let mut line = format!("  d{n}/d{x} = 0  ({n} does not depend on {x})");
            if !reached(ev, i) {
                line.push_str(&format!("  ({output} does not depend on {n})"));
            }
            writeln!(out, "{line}")?;
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
            .map(|(&p, &d)| {
                if adds(p, d) {
                    format!("{} * {}", factor(d, 10), factor(tangents[p], 10))
                } else {
                    "0".to_string()
                }
            })
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
                .map(|(&p, &d)| if adds(p, d) { d * tangents[p] } else { 0.0 })
                .collect();
            line.push_str(&format!(" = {}", sum(&terms, 10)));
        }
        line.push_str(&format!(" = {}", number(t)));
        if !reached(ev, i) {
            line.push_str(&format!("  ({output} does not depend on {n})"));
        }
        writeln!(out, "{line}")?;
    }
    Ok(())
}

/// The indices of `contributions` grouped by the node they flow into (`to`), each group in
/// sweep order: `(starts, order)` with node `p`'s group `order[starts[p]..starts[p + 1]]`.
/// One counting pass, so the reverse view stays linear however many nodes there are.
fn by_target(contributions: &[Contribution<f64>], nodes: usize) -> (Vec<usize>, Vec<usize>) {
    let mut starts = vec![0; nodes + 1];
    for c in contributions {
        starts[c.to + 1] += 1;
    }
    for p in 0..nodes {
        starts[p + 1] += starts[p];
    }
    let mut next = starts.clone();
    let mut order = vec![0; contributions.len()];
    for (k, c) in contributions.iter().enumerate() {
        order[next[c.to]] = k;
        next[c.to] += 1;
    }
    (starts, order)
}

/// The reverse sweep from node `o`, node by node.
fn reverse_sweep(
    ev: &Evaluation,
    sweep: &ReverseSweep<f64>,
    o: usize,
    out: &mut dyn Write,
) -> io::Result<()> {
    let names: Vec<&str> = ev.nodes.iter().map(|n| n.name.as_str()).collect();
    let output = &ev.output.name;
    writeln!(
        out,
        "\nReverse mode, from {output}: seed d{output}/d{output} = 1, then from the output back, each\n\
         node's adjoint d{output}/d(node) is the sum over the nodes that use it of\n\
         (their adjoint) * (local partial): one contribution per use"
    )?;
    let (starts, order) = by_target(&sweep.contributions, ev.trace.nodes.len());
    for p in (0..=o).rev() {
        let n = names[p];
        let adjoint = sweep.adjoints[p];
        if p == o {
            writeln!(out, "  d{output}/d{n} = {}  (the seed)", number(adjoint))?;
            continue;
        }
        let into: Vec<&Contribution<f64>> = order[starts[p]..starts[p + 1]]
            .iter()
            .map(|&k| &sweep.contributions[k])
            .collect();
        if into.is_empty() {
            writeln!(
                out,
                "  d{output}/d{n} = 0  ({n} is not used on the way to {output})"
            )?;
            continue;
        }
        let symbols: Vec<String> = into
            .iter()
            .map(|c| format!("d{output}/d{} * ∂{}/∂{n}", names[c.from], names[c.from]))
            .collect();
        let products: Vec<String> = into
            .iter()
            .map(|c| {
                format!(
                    "{} * {}",
                    factor(sweep.adjoints[c.from], 10),
                    factor(c.local, 10)
                )
            })
            .collect();
        let mut line = format!(
            "  d{output}/d{n} = {} = {}",
            symbols.join(" + "),
            products.join(" + ")
        );
        if into.len() > 1 {
            let terms: Vec<f64> = into.iter().map(|c| c.amount).collect();
            line.push_str(&format!(" = {}", sum(&terms, 10)));
        }
        line.push_str(&format!(" = {}", number(adjoint)));
        if into.len() > 1 {
            line.push_str(&format!(
                "\n      ({n} is used {} times: the {} contributions add up to the total derivative)",
                into.len(),
                into.len()
            ));
        }
        writeln!(out, "{line}")?;
    }
    Ok(())
}

/// A number in the JSON output: a JSON number when it is finite, else the string `"inf"`,
/// `"-inf"` or `"NaN"` (JSON has no infinity or NaN, and `null` would lose which it was).
#[derive(Clone, Copy, Debug, PartialEq)]
struct Num(f64);

impl Serialize for Num {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.0.is_finite() {
            s.serialize_f64(self.0)
        } else if self.0.is_nan() {
            s.serialize_str("NaN")
        } else if self.0 > 0.0 {
            s.serialize_str("inf")
        } else {
            s.serialize_str("-inf")
        }
    }
}

/// A slice of numbers written as [`Num`]s, without copying it.
struct Nums<'a>(&'a [f64]);

impl Serialize for Nums<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(|&v| Num(v)))
    }
}

/// One derivative of the output, from each sweep that computed it.
#[derive(Serialize)]
struct Derivative {
    of: String,
    wrt: String,
    /// The reverse sweep's value if it ran, else the forward sweep's.
    value: Num,
    forward: Option<Num>,
    reverse: Option<Num>,
}

fn derivatives(ev: &Evaluation, sweeps: &Sweeps) -> Vec<Derivative> {
    sweeps
        .report
        .iter()
        .enumerate()
        .map(|(k, &v)| {
            let var = &ev.variables[v];
            let forward = sweeps
                .forward
                .as_ref()
                .map(|f| f.get(k).copied().unwrap_or(0.0));
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
                value: Num(reverse.or(forward).unwrap_or(0.0)),
                forward: forward.map(Num),
                reverse: reverse.map(Num),
            }
        })
        .collect()
}

/// A warning for each reported derivative that is not finite although every value and local
/// partial is (the products of the chain rule overflowed).
pub fn non_finite_derivatives(ev: &Evaluation, sweeps: &Sweeps) -> Vec<String> {
    let lines = derivatives(ev, sweeps)
        .into_iter()
        .filter(|d| !d.value.0.is_finite())
        .map(|d| {
            format!(
                "d{}/d{} is {}: the chain rule's products overflow a 64-bit float, although \
                 every value and local partial derivative is finite",
                d.of,
                d.wrt,
                number(d.value.0)
            )
        })
        .collect();
    super::eval::capped(lines, super::eval::MAX_WARNINGS)
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
    /// One forward sweep per variable perturbed (see [`forward_sweeps_shown`]): the tangent
    /// of every node, by node index.
    forward: ForwardSweeps<'a>,
    /// How many variables were perturbed without their forward sweep being listed.
    forward_not_shown: usize,
    /// The reverse sweep: the adjoint of every node (by node index) and every contribution.
    reverse: Option<JsonReverse<'a>>,
    derivatives: Vec<Derivative>,
    warnings: &'a [String],
}

/// The shown forward sweeps, each computed while it is written.
struct ForwardSweeps<'a> {
    ev: &'a Evaluation,
    shown: &'a [usize],
}

impl Serialize for ForwardSweeps<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.shown.len()))?;
        for &v in self.shown {
            let var = &self.ev.variables[v];
            let tangents = self.ev.trace.forward(var.node);
            seq.serialize_element(&JsonForward {
                wrt: &var.name,
                tangents: Nums(&tangents),
            })?;
        }
        seq.end()
    }
}

#[derive(Serialize)]
struct JsonVariable<'a> {
    name: &'a str,
    value: Num,
    node: usize,
}

#[derive(Serialize)]
struct JsonOutput<'a> {
    name: &'a str,
    value: Num,
    node: Option<usize>,
}

#[derive(Serialize)]
struct JsonNode<'a> {
    index: usize,
    name: &'a str,
    definition: &'a str,
    op: &'a str,
    value: Num,
    /// The local partial derivative with respect to each parent.
    partials: Vec<JsonPartial<'a>>,
    /// Whether the output depends on this node.
    used: bool,
    line: Option<usize>,
    column: Option<usize>,
}

#[derive(Serialize)]
struct JsonPartial<'a> {
    parent: usize,
    name: &'a str,
    value: Num,
}

#[derive(Serialize)]
struct JsonBinding<'a> {
    name: &'a str,
    /// The node it names, for an alias.
    node: Option<usize>,
    /// Its definition, for a constant.
    definition: Option<&'a str>,
    value: Num,
}

#[derive(Serialize)]
struct JsonForward<'a> {
    wrt: &'a str,
    tangents: Nums<'a>,
}

#[derive(Serialize)]
struct JsonReverse<'a> {
    output: &'a str,
    adjoints: Nums<'a>,
    contributions: Vec<JsonContribution<'a>>,
}

#[derive(Serialize)]
struct JsonContribution<'a> {
    from: usize,
    from_name: &'a str,
    to: usize,
    to_name: &'a str,
    local: Num,
    amount: Num,
}

/// The whole report as JSON, written to `out` as it is made. Numbers that are not finite are
/// the strings `"inf"`, `"-inf"` and `"NaN"`.
pub fn json(ev: &Evaluation, sweeps: &Sweeps, src: &str, out: &mut dyn Write) -> io::Result<()> {
    let name = |i: usize| ev.nodes.get(i).map_or("?", |n| n.name.as_str());
    let offsets: Vec<usize> = ev
        .nodes
        .iter()
        .map(|n| n.span.map_or(0, |s| s.start))
        .collect();
    let positions = line_cols(src, &offsets);
    let report = JsonReport {
        expression: src,
        variables: ev
            .variables
            .iter()
            .map(|v| JsonVariable {
                name: &v.name,
                value: Num(v.value),
                node: v.node,
            })
            .collect(),
        output: JsonOutput {
            name: &ev.output.name,
            value: Num(ev.output.value),
            node: ev.output.node,
        },
        nodes: ev
            .trace
            .nodes
            .iter()
            .zip(&ev.nodes)
            .enumerate()
            .map(|(index, (node, info))| {
                let position = info.span.map(|_| positions[index]);
                JsonNode {
                    index,
                    name: &info.name,
                    definition: &info.definition,
                    op: node.op,
                    value: Num(node.value),
                    partials: node
                        .parents
                        .iter()
                        .zip(&node.partials)
                        .map(|(&p, &d)| JsonPartial {
                            parent: p,
                            name: name(p),
                            value: Num(d),
                        })
                        .collect(),
                    used: ev.output.node.is_some() && reached(ev, index),
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
                    value: Num(ev.trace.nodes[*node].value),
                }),
                Row::Constant {
                    name,
                    definition,
                    value,
                } => Some(JsonBinding {
                    name,
                    node: None,
                    definition: Some(definition),
                    value: Num(*value),
                }),
            })
            .collect(),
        forward: ForwardSweeps {
            ev,
            shown: &sweeps.forward_shown,
        },
        forward_not_shown: sweeps.forward_hidden,
        reverse: sweeps.reverse.as_ref().map(|s| JsonReverse {
            output: &ev.output.name,
            adjoints: Nums(&s.adjoints),
            contributions: s
                .contributions
                .iter()
                .map(|c| JsonContribution {
                    from: c.from,
                    from_name: name(c.from),
                    to: c.to,
                    to_name: name(c.to),
                    local: Num(c.local),
                    amount: Num(c.amount),
                })
                .collect(),
        }),
        derivatives: derivatives(ev, sweeps),
        warnings: &ev.warnings,
    };
    serde_json::to_writer_pretty(&mut *out, &report)?;
    writeln!(out)
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
        assert_eq!(significant(-2.0065507849, 6), "-2.00655");
        assert_eq!(significant(1.25e-7, 6), "1.25e-7");
        assert_eq!(significant(999999.7, 6), "1000000");
    }

    /// H3: the sweeps shown in full are bounded in number and in lines.
    #[test]
    fn forward_sweeps_shown_are_bounded() {
        assert_eq!(forward_sweeps_shown(3, 10), 3);
        assert_eq!(forward_sweeps_shown(5000, 10_000), 100);
        assert_eq!(forward_sweeps_shown(300, 600), 200);
        assert_eq!(forward_sweeps_shown(2, 10_000_000), 1);
        assert_eq!(forward_sweeps_shown(0, 10), 0);
    }

    #[test]
    fn sums_and_products_put_negative_numbers_in_parentheses() {
        assert_eq!(factor(-2.0, 10), "(-2)");
        assert_eq!(sum(&[-1.0, -2.0, 3.0], 10), "-1 + (-2) + 3");
    }
}
