//! Evaluates a parsed program by recording it on a traced perturb tape, so that the values, the
//! local partial derivatives and the sweeps all come from perturb itself; then maps each tape
//! node back to a name and a definition from the source.

use std::collections::{HashMap, HashSet};

use perturb::explain::Trace;
use perturb::{Float, Scalar, Tape, Var};

use super::parse::{line_col, BinOp, Expr, ExprKind, Func, ParseError, Program, Span};
use super::report::{given, listed, number};

/// An error of `perturb explain`, with the place in the source it is about (if any).
#[derive(Clone, Debug, PartialEq)]
pub struct ExplainError {
    pub message: String,
    pub span: Option<Span>,
    /// Further lines (the point of evaluation, hints).
    pub notes: Vec<String>,
}

impl ExplainError {
    pub fn new(message: impl Into<String>) -> Self {
        ExplainError {
            message: message.into(),
            span: None,
            notes: Vec::new(),
        }
    }

    fn at(span: Span, message: impl Into<String>) -> Self {
        ExplainError {
            message: message.into(),
            span: Some(span),
            notes: Vec::new(),
        }
    }

    /// `line:column: message`, the source line with a caret under the place, then the notes.
    /// Long lines are cut to a window of [`EXCERPT_WIDTH`] characters around the place, and
    /// control and bidirectional-formatting characters are shown escaped (`\u{1}`, `\u{202e}`)
    /// so that they can neither hide nor reorder the text.
    pub fn render(&self, src: &str) -> String {
        let mut out = String::new();
        match self.span {
            Some(span) => {
                let (line, col) = line_col(src, span.start);
                out.push_str(&format!("{line}:{col}: {}", printable(&self.message)));
                if let Some(text) = src.split('\n').nth(line - 1) {
                    let text = text.strip_suffix('\r').unwrap_or(text);
                    let width = src
                        .get(span.start..span.end.max(span.start))
                        .map_or(1, |s| s.split('\n').next().unwrap_or("").chars().count())
                        .max(1);
                    let (shown, caret, carets) = excerpt(text, col - 1, width);
                    let gutter = line.to_string().len();
                    out.push_str(&format!(
                        "\n{:gutter$} |\n{line} | {shown}\n{:gutter$} | {}{}",
                        "",
                        "",
                        " ".repeat(caret),
                        "^".repeat(carets)
                    ));
                }
            }
            None => out.push_str(&printable(&self.message)),
        }
        for note in &self.notes {
            out.push_str("\n  ");
            out.push_str(&printable(note));
        }
        out
    }

    pub fn position(&self, src: &str) -> Option<(usize, usize)> {
        self.span.map(|s| line_col(src, s.start))
    }
}

/// At most this many characters of a source line are shown under an error.
pub const EXCERPT_WIDTH: usize = 80;

/// Whether `c` would be invisible or would reorder a terminal line: control characters and
/// the zero-width and bidirectional formatting characters.
pub(super) fn hidden(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{ad}' | '\u{61c}' | '\u{180e}' | '\u{200b}'..='\u{200f}'
            | '\u{2028}'..='\u{202e}' | '\u{2060}'..='\u{206f}' | '\u{feff}')
}

/// `c` as shown in a message: itself, or escaped as `\u{..}` if it is [`hidden`].
fn shown(c: char) -> String {
    if hidden(c) {
        format!("\\u{{{:x}}}", u32::from(c))
    } else {
        c.to_string()
    }
}

/// `s` with its [`hidden`] characters escaped but for line breaks: any message of the
/// program as it is safe to print on a terminal, whatever bytes of a file or an argument it
/// quotes (an escape sequence in a column name would recolour or move the terminal).
pub fn terminal_safe(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '\n' => c.to_string(),
            c => shown(c),
        })
        .collect()
}

/// Text quoted in backticks longer than this is shortened in messages (a name or definition
/// from the source can be as long as the source).
const MAX_QUOTED: usize = 60;

/// A message as it is safe to show: its control and formatting characters escaped (see
/// [`hidden`]), and every part quoted in backticks longer than [`MAX_QUOTED`] characters
/// shortened to its two ends around `…`.
pub fn printable(s: &str) -> String {
    let escaped: String = if s.chars().any(hidden) {
        s.chars().map(shown).collect()
    } else {
        s.to_string()
    };
    let mut out = String::with_capacity(escaped.len().min(4096));
    for (i, part) in escaped.split('`').enumerate() {
        if i > 0 {
            out.push('`');
        }
        let n = part.chars().count();
        if i % 2 == 1 && n > MAX_QUOTED {
            let keep = MAX_QUOTED / 2 - 1;
            out.extend(part.chars().take(keep));
            out.push('…');
            out.extend(part.chars().skip(n - keep));
        } else {
            out.push_str(part);
        }
    }
    out
}

/// The part of a source `line` to show under an error whose place starts at character `at`
/// and is `width` characters wide: at most [`EXCERPT_WIDTH`] columns around it (with `…` where
/// the line is cut), tabs as spaces and hidden characters escaped. Returns the text, the
/// caret's column in it and the number of carets.
fn excerpt(line: &str, at: usize, width: usize) -> (String, usize, usize) {
    let shown: Vec<String> = line
        .chars()
        .map(|c| if c == '\t' { " ".into() } else { shown(c) })
        .collect();
    let columns = |i: usize| shown[i].chars().count();
    let at = at.min(shown.len());
    // A quarter of the width before the place, the rest after it, then whatever is left before.
    let (mut lo, mut hi, mut used) = (at, at, 0);
    while lo > 0 && used + columns(lo - 1) <= EXCERPT_WIDTH / 4 {
        lo -= 1;
        used += columns(lo);
    }
    while hi < shown.len() && used + columns(hi) <= EXCERPT_WIDTH {
        used += columns(hi);
        hi += 1;
    }
    while lo > 0 && used + columns(lo - 1) <= EXCERPT_WIDTH {
        lo -= 1;
        used += columns(lo);
    }
    let mut text = String::from(if lo > 0 { "…" } else { "" });
    let mut caret = usize::from(lo > 0);
    let mut carets = 0;
    for (i, s) in shown.iter().enumerate().take(hi).skip(lo) {
        if i < at {
            caret += columns(i);
        } else if i < at + width {
            carets += columns(i);
        }
        text.push_str(s);
    }
    if hi < shown.len() {
        text.push('…');
    }
    (text, caret, carets.max(1))
}

impl From<ParseError> for ExplainError {
    fn from(e: ParseError) -> Self {
        ExplainError::at(e.span, e.message)
    }
}

/// What the program says about one tape node.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeInfo {
    /// A name given with `=`, an input's name, or `t1`, `t2`, ... for an unnamed intermediate.
    pub name: String,
    /// How it is computed, in terms of other nodes' names (`"input"` for an input).
    pub definition: String,
    /// Where in the source (`None` for an input).
    pub span: Option<Span>,
    /// Something to say about the local partials (`x*x`: the two partials are added).
    pub note: Option<String>,
    /// Why a local partial that the tape gives by convention does not exist here (`x^y` at a
    /// negative `x` has no derivative in `y`, yet the tape says 0): the node cannot be swept
    /// if the output depends on it.
    pub no_derivative: Option<String>,
}

/// A line of the value view, in the order the program defines things.
#[derive(Clone, Debug, PartialEq)]
pub enum Row {
    /// A tape node.
    Node(usize),
    /// `name = other`: another name for an existing node.
    Alias { name: String, node: usize },
    /// `name = 2*3`: a constant, which is not a node.
    Constant {
        name: String,
        definition: String,
        value: f64,
    },
}

/// An input variable: its name, its value from `--at`, its node.
#[derive(Clone, Debug, PartialEq)]
pub struct Variable {
    pub name: String,
    pub value: f64,
    pub node: usize,
}

/// The program's result.
#[derive(Clone, Debug, PartialEq)]
pub struct Output {
    pub name: String,
    pub value: f64,
    /// `None` when the output is a constant (every derivative is then 0).
    pub node: Option<usize>,
}

/// A program evaluated on a traced tape.
#[derive(Clone, Debug)]
pub struct Evaluation {
    pub trace: Trace<f64>,
    pub nodes: Vec<NodeInfo>,
    pub rows: Vec<Row>,
    pub variables: Vec<Variable>,
    pub output: Output,
    /// For each node, whether the output depends on it (see `Trace::reaches`); empty when the
    /// output is a constant.
    pub reached: Vec<bool>,
    /// Things worth saying that are not errors (a `--at` value the program does not use).
    pub warnings: Vec<String>,
}

/// Evaluates `program` (parsed from `src`) at the point `at` (names and values, in order).
pub fn evaluate(
    program: &Program,
    src: &str,
    at: &[(String, f64)],
) -> Result<Evaluation, ExplainError> {
    let resolved = resolve(program, src, at)?;
    let tape = Tape::traced();
    let mut ev = Evaluator {
        env: HashMap::new(),
        nodes: Vec::new(),
        rows: Vec::new(),
        reserved: resolved.reserved,
        pending: Vec::new(),
        underflows: Vec::new(),
        next_temp: 1,
        point: resolved.used.clone(),
        tape: &tape,
    };
    let mut variables = Vec::new();
    for (name, value) in &resolved.used {
        let var = tape.var(*value);
        let node = var
            .node()
            .ok_or_else(|| ExplainError::new("internal: an input is no node"))?;
        ev.env.insert(name.clone(), (var, None));
        ev.nodes.push(NodeInfo {
            name: name.clone(),
            definition: "input".into(),
            span: None,
            note: None,
            no_derivative: None,
        });
        ev.rows.push(Row::Node(node));
        variables.push(Variable {
            name: name.clone(),
            value: *value,
            node,
        });
    }
    let Some(last) = program.statements.len().checked_sub(1) else {
        return Err(ExplainError::new(
            "the expression is empty: there is nothing to evaluate",
        ));
    };
    let mut output = None;
    for (i, statement) in program.statements.iter().enumerate() {
        let before = ev.nodes.len();
        let top = match (&statement.name, i == last) {
            (Some((name, _)), _) => Some(name.clone()),
            (None, true) => Some(ev.output_name()),
            (None, false) => None,
        };
        let operand = ev.eval(&statement.expr, top.as_deref())?;
        let node = operand.var.node();
        if let Some((name, _)) = &statement.name {
            match node {
                Some(n) if n < before => ev.rows.push(Row::Alias {
                    name: name.clone(),
                    node: n,
                }),
                Some(_) => {}
                None => ev.rows.push(Row::Constant {
                    name: name.clone(),
                    definition: operand.text.clone(),
                    value: operand.var.value(),
                }),
            }
            ev.env.insert(name.clone(), (operand.var, operand.poison));
        }
        if i == last {
            let name = match (node, &statement.name, &top) {
                (Some(n), None, _) => ev.nodes[n].name.clone(),
                (_, Some((name, _)), _) => name.clone(),
                (None, None, Some(top)) => top.clone(),
                (None, None, None) => "f".into(),
            };
            if let Some(k) = operand.poison {
                // The output depends on a value that is not finite: the first such value
                // (whose own operands are finite) is the cause.
                return Err(ev.pending.swap_remove(k));
            }
            output = Some(Output {
                name,
                value: operand.var.value(),
                node,
            });
        }
    }
    let output = output.ok_or_else(|| ExplainError::new("the expression is empty"))?;
    let trace = tape
        .trace()
        .map_err(|e| ExplainError::new(format!("internal: {e}")))?;
    if trace.nodes.len() != ev.nodes.len() {
        return Err(ExplainError::new(format!(
            "internal: the tape has {} nodes but {} were named",
            trace.nodes.len(),
            ev.nodes.len()
        )));
    }
    let reached = output.node.map(|o| trace.reaches(o)).unwrap_or_default();
    check_partials(&trace, &ev.nodes, &reached, &ev.point)?;
    let mut unused: Vec<String> = ev
        .pending
        .iter()
        .map(|e| format!("{}; {} does not depend on it", e.message, output.name))
        .collect();
    unused.extend(unused_singular_partials(
        &trace,
        &ev.nodes,
        &reached,
        &output.name,
    ));
    let mut warnings = resolved.warnings;
    warnings.extend(capped(unused, MAX_WARNINGS));
    warnings.extend(capped(ev.underflows, MAX_WARNINGS));
    Ok(Evaluation {
        trace,
        nodes: ev.nodes,
        rows: ev.rows,
        variables,
        output,
        reached,
        warnings,
    })
}

/// At most this many warnings about unused values that are not finite are printed.
pub const MAX_WARNINGS: usize = 5;

/// The first `max` lines, then a line counting the others.
pub fn capped(mut lines: Vec<String>, max: usize) -> Vec<String> {
    if lines.len() > max {
        let more = lines.len() - max;
        lines.truncate(max);
        lines.push(format!("... and {more} more like these"));
    }
    lines
}

struct Resolved {
    /// The `--at` variables the program uses, in `--at` order.
    used: Vec<(String, f64)>,
    /// Every name the program or `--at` mentions (generated names avoid them).
    reserved: HashSet<String>,
    warnings: Vec<String>,
}

/// Checks the names: each defined once, before use, and every other name given by `--at`.
fn resolve(program: &Program, src: &str, at: &[(String, f64)]) -> Result<Resolved, ExplainError> {
    let pos = |span: Span| {
        let (l, c) = line_col(src, span.start);
        format!("{l}:{c}")
    };
    let given: HashMap<&str, f64> = at.iter().map(|(n, v)| (n.as_str(), *v)).collect();
    let mut bound: HashMap<&str, Span> = HashMap::new();
    for statement in &program.statements {
        if let Some((name, span)) = &statement.name {
            if let Some(first) = bound.get(name.as_str()) {
                return Err(ExplainError::at(
                    *span,
                    format!(
                        "`{name}` is already defined at {}; give each value its own name",
                        pos(*first)
                    ),
                ));
            }
            if given.contains_key(name.as_str()) {
                return Err(ExplainError::at(
                    *span,
                    format!(
                        "`{name}` is defined here and also given a value with --at; \
                         use another name for one of them"
                    ),
                ));
            }
            bound.insert(name, *span);
        }
    }
    let mut reserved: HashSet<String> = at.iter().map(|(n, _)| n.clone()).collect();
    let mut defined: HashSet<&str> = HashSet::new();
    let mut free: HashSet<String> = HashSet::new();
    for statement in &program.statements {
        let mut uses = Vec::new();
        names_in(&statement.expr, &mut uses);
        for (name, span) in uses {
            reserved.insert(name.to_string());
            if defined.contains(name) {
                continue;
            }
            if let Some(def) = bound.get(name) {
                let own = statement.name.as_ref().is_some_and(|(n, _)| n == name);
                return Err(ExplainError::at(
                    span,
                    if own {
                        format!("`{name}` is used in its own definition")
                    } else {
                        format!("`{name}` is used before its definition at {}", pos(*def))
                    },
                ));
            }
            if !given.contains_key(name) {
                return Err(ExplainError::at(
                    span,
                    format!(
                        "no value for the variable `{name}`: give one with `--at {name}=VALUE`"
                    ),
                ));
            }
            free.insert(name.to_string());
        }
        if let Some((name, _)) = &statement.name {
            reserved.insert(name.clone());
            defined.insert(name);
        }
    }
    let used: Vec<(String, f64)> = at
        .iter()
        .filter(|(n, _)| free.contains(n))
        .cloned()
        .collect();
    let warnings = capped(
        at.iter()
            .filter(|(n, _)| !free.contains(n))
            .map(|(n, _)| format!("--at gives `{n}` a value, but the expression does not use it"))
            .collect(),
        MAX_WARNINGS,
    );
    Ok(Resolved {
        used,
        reserved,
        warnings,
    })
}

/// Every variable name in `e`, in source order, with where it appears.
fn names_in<'e>(e: &'e Expr, out: &mut Vec<(&'e str, Span)>) {
    match &e.kind {
        ExprKind::Num(..) => {}
        ExprKind::Var(name) => out.push((name, e.span)),
        ExprKind::Neg(x) => names_in(x, out),
        ExprKind::Binary(_, a, b) => {
            names_in(a, out);
            names_in(b, out);
        }
        ExprKind::Chain(first, rest) => {
            names_in(first, out);
            rest.iter().for_each(|(_, b)| names_in(b, out));
        }
        ExprKind::Call(_, _, args) => args.iter().for_each(|a| names_in(a, out)),
    }
}

/// A constant subexpression longer than this is written as its value in definitions.
const MAX_CONSTANT_TEXT: usize = 60;

// Precedences, for writing definitions with just the parentheses they need.
const ADD: u8 = 1;
const MUL: u8 = 2;
const NEG: u8 = 3;
const POW: u8 = 4;
const ATOM: u8 = 5;

/// An evaluated subexpression: its value (a node or a constant) and how to write it in the
/// definition of the node that uses it (a node's name, or a constant's own text).
#[derive(Clone)]
struct Operand<'t> {
    var: Var<'t, f64>,
    text: String,
    prec: u8,
    /// When the value depends on a value that is not finite: the index (in
    /// `Evaluator::pending`) of the error that explains the first such value. It becomes an
    /// error only if the output depends on it.
    poison: Option<usize>,
}

impl Operand<'_> {
    /// The text, in parentheses if its precedence is below `min`.
    fn wrap(&self, min: u8) -> String {
        if self.prec < min {
            format!("({})", self.text)
        } else {
            self.text.clone()
        }
    }

    /// How an error message names it: `a = -0.5` for a node, the value for a constant.
    fn describe(&self) -> String {
        if self.var.is_constant() && self.text.parse::<f64>().is_ok() {
            self.text.clone()
        } else {
            format!("{} = {}", self.text, given(self.var.value()))
        }
    }
}

/// What an operation is, for error messages.
#[derive(Clone, Copy)]
enum Op {
    Neg,
    Binary(BinOp),
    Func(Func),
}

struct Evaluator<'t> {
    tape: &'t Tape<f64>,
    env: HashMap<String, (Var<'t, f64>, Option<usize>)>,
    nodes: Vec<NodeInfo>,
    rows: Vec<Row>,
    reserved: HashSet<String>,
    /// Why each value that is not finite is not (see [`Operand::poison`]).
    pending: Vec<ExplainError>,
    /// A warning for each value that underflowed to 0 (see [`underflowed`]).
    underflows: Vec<String>,
    next_temp: usize,
    /// The variables and their values, for error messages.
    point: Vec<(String, f64)>,
}

impl<'t> Evaluator<'t> {
    /// A fresh name `t1`, `t2`, ... that the program does not use.
    fn temp(&mut self) -> String {
        loop {
            let name = format!("t{}", self.next_temp);
            self.next_temp += 1;
            if !self.reserved.contains(&name) {
                return name;
            }
        }
    }

    /// The name of an unnamed output: `f`, or `out`, or a fresh `t` name.
    fn output_name(&mut self) -> String {
        for name in ["f", "out"] {
            if !self.reserved.contains(name) {
                return name.into();
            }
        }
        self.temp()
    }

    fn eval(&mut self, e: &Expr, top: Option<&str>) -> Result<Operand<'t>, ExplainError> {
        match &e.kind {
            ExprKind::Num(value, text) => Ok(Operand {
                var: Var::constant(*value),
                text: text.clone(),
                prec: ATOM,
                poison: None,
            }),
            ExprKind::Var(name) => {
                let (var, poison) = *self.env.get(name).ok_or_else(|| {
                    ExplainError::at(e.span, format!("internal: `{name}` has no value"))
                })?;
                Ok(Operand {
                    var,
                    text: name.clone(),
                    prec: ATOM,
                    poison,
                })
            }
            ExprKind::Neg(x) => {
                let x = self.eval(x, None)?;
                let definition = format!("-{}", x.wrap(POW));
                self.finish(-x.var, definition, NEG, e.span, top, Op::Neg, &[x])
            }
            ExprKind::Binary(op, a, b) => {
                let a = self.eval(a, None)?;
                let b = self.eval(b, None)?;
                self.binary(*op, a, b, e.span, top)
            }
            ExprKind::Chain(first, rest) => {
                // Left to right in a loop: one node per operator, as `((a + b) + c) + ...`.
                let mut acc = self.eval(first, None)?;
                for (k, (op, rhs)) in rest.iter().enumerate() {
                    let b = self.eval(rhs, None)?;
                    let span = Span {
                        start: e.span.start,
                        end: rhs.span.end,
                    };
                    let top = if k + 1 == rest.len() { top } else { None };
                    acc = self.binary(*op, acc, b, span, top)?;
                }
                Ok(acc)
            }
            ExprKind::Call(func, name, args) => {
                let mut operands = Vec::with_capacity(args.len());
                for arg in args {
                    operands.push(self.eval(arg, None)?);
                }
                let value = match operands.as_slice() {
                    [x] => apply1(*func, x.var),
                    [a, b] => apply2(*func, a.var, b.var),
                    _ => {
                        return Err(ExplainError::at(
                            e.span,
                            format!("internal: `{name}` with {} arguments", operands.len()),
                        ))
                    }
                };
                let texts: Vec<&str> = operands.iter().map(|o| o.text.as_str()).collect();
                let definition = format!("{name}({})", texts.join(", "));
                self.finish(
                    value,
                    definition,
                    ATOM,
                    e.span,
                    top,
                    Op::Func(*func),
                    &operands,
                )
            }
        }
    }

    /// `a op b`, named `top` if given.
    fn binary(
        &mut self,
        op: BinOp,
        a: Operand<'t>,
        b: Operand<'t>,
        span: Span,
        top: Option<&str>,
    ) -> Result<Operand<'t>, ExplainError> {
        let (value, definition, prec) = match op {
            BinOp::Add => (
                a.var + b.var,
                format!("{} + {}", a.wrap(ADD), b.wrap(MUL)),
                ADD,
            ),
            BinOp::Sub => (
                a.var - b.var,
                format!("{} - {}", a.wrap(ADD), b.wrap(MUL)),
                ADD,
            ),
            BinOp::Mul => (
                a.var * b.var,
                format!("{}*{}", a.wrap(MUL), b.wrap(NEG)),
                MUL,
            ),
            BinOp::Div => (
                a.var / b.var,
                format!("{}/{}", a.wrap(MUL), b.wrap(NEG)),
                MUL,
            ),
            BinOp::Pow => (
                power(a.var, b.var),
                format!("{}^{}", a.wrap(ATOM), b.wrap(NEG)),
                POW,
            ),
        };
        self.finish(value, definition, prec, span, top, Op::Binary(op), &[a, b])
    }

    /// Checks the value of one operation and names the node it recorded (if any).
    #[allow(clippy::too_many_arguments)]
    fn finish(
        &mut self,
        value: Var<'t, f64>,
        definition: String,
        prec: u8,
        span: Span,
        top: Option<&str>,
        op: Op,
        operands: &[Operand<'t>],
    ) -> Result<Operand<'t>, ExplainError> {
        let mut poison = operands.iter().find_map(|o| o.poison);
        if poison.is_none() && !value.value().is_finite() {
            let e = self.domain_error(value.value(), &definition, span, top, op, operands);
            self.pending.push(e);
            poison = Some(self.pending.len() - 1);
        }
        let underflow = poison.is_none() && value.value() == 0.0 && underflowed(op, operands);
        if self.tape.len() > self.nodes.len() {
            // One operation records one node; should one ever record more, the extra ones
            // still get a name.
            while self.nodes.len() + 1 < self.tape.len() {
                let name = self.temp();
                self.rows.push(Row::Node(self.nodes.len()));
                self.nodes.push(NodeInfo {
                    name,
                    definition: format!("(part of {definition})"),
                    span: Some(span),
                    note: None,
                    no_derivative: None,
                });
            }
            let name = match top {
                Some(top) => top.to_string(),
                None => self.temp(),
            };
            if underflow {
                self.warn_underflow(&format!("{name} = {definition}"), operands);
            }
            self.rows.push(Row::Node(self.nodes.len()));
            let note = match operands {
                [a, b] if a.var.node().is_some() && a.var.node() == b.var.node() => Some(format!(
                    "{} is both operands: its two partials are added into one",
                    a.text
                )),
                _ => None,
            };
            self.nodes.push(NodeInfo {
                name: name.clone(),
                definition,
                span: Some(span),
                note,
                no_derivative: no_exponent_derivative(op, operands),
            });
            return Ok(Operand {
                var: value,
                text: name,
                prec: ATOM,
                poison,
            });
        }
        if underflow {
            self.warn_underflow(&definition, operands);
        }
        match value.node() {
            Some(n) => Ok(Operand {
                var: value,
                text: self.nodes.get(n).map_or(definition, |i| i.name.clone()),
                prec: ATOM,
                poison,
            }),
            // A constant is written out in the definitions that use it, unless its text grows
            // long (`1 + 1 + ... + 1`): then its value, so that a long constant chain stays
            // linear to print.
            None if definition.chars().count() > MAX_CONSTANT_TEXT => Ok(Operand {
                text: number(value.value()),
                var: value,
                prec: if value.value() < 0.0 { NEG } else { ATOM },
                poison,
            }),
            None => Ok(Operand {
                var: value,
                text: definition,
                prec,
                poison,
            }),
        }
    }

    fn domain_error(
        &self,
        value: f64,
        definition: &str,
        span: Span,
        top: Option<&str>,
        op: Op,
        operands: &[Operand<'t>],
    ) -> ExplainError {
        let args: Vec<f64> = operands.iter().map(|o| o.var.value()).collect();
        let named = match top {
            Some(name) => format!("{name} = {definition}"),
            None => definition.to_string(),
        };
        let what = if value.is_nan() {
            "not a number (NaN)".to_string()
        } else {
            format!("{value}")
        };
        // The operands that are names, each once (`x^x`): constants are already in the
        // definition.
        let mut given: Vec<String> = Vec::new();
        for o in operands {
            let described = o.describe();
            if (!o.var.is_constant() || o.text.parse::<f64>().is_err())
                && !given.contains(&described)
            {
                given.push(described);
            }
        }
        let reason = domain_reason(op, &args).unwrap_or_else(|| {
            if value.is_infinite() {
                "the result is too large for a 64-bit float".into()
            } else {
                "the result is not a number".into()
            }
        });
        let mut e = ExplainError::at(
            span,
            if given.is_empty() {
                format!("`{named}` is {what} here: {reason}")
            } else {
                format!(
                    "`{named}` is {what} here: {reason} (with {})",
                    given.join(", ")
                )
            },
        );
        e.notes.push(self.point_note());
        e
    }

    fn point_note(&self) -> String {
        point_note(&self.point)
    }

    /// Says that `named` (`t1 = x*y`, or a constant's definition) underflowed to 0.
    fn warn_underflow(&mut self, named: &str, operands: &[Operand<'t>]) {
        let given: Vec<String> = operands
            .iter()
            .filter(|o| !o.var.is_constant())
            .map(Operand::describe)
            .collect();
        let with = if given.is_empty() {
            String::new()
        } else {
            format!(" (with {})", listed(given))
        };
        self.underflows.push(format!(
            "`{named}` underflows to 0 here{with}: its exact value is not 0 but is below the \
             smallest 64-bit float (about 4.9e-324), so the values and derivatives computed \
             from it may be wrong"
        ));
    }
}

/// Whether an operation whose result is 0 has an exact result that is not 0, with operands
/// that are finite: a product or quotient of numbers that are not 0, a power of a base that
/// is not 0, a function that is never 0 (`exp`, `sigmoid`). Sums and differences are exact
/// near 0 (the smallest floats are evenly spaced), so they never underflow.
fn underflowed(op: Op, operands: &[Operand<'_>]) -> bool {
    let value = |k: usize| operands.get(k).map_or(f64::NAN, |o| o.var.value());
    let (x, y) = (value(0), value(1));
    match op {
        Op::Binary(BinOp::Mul) => x != 0.0 && y != 0.0,
        Op::Binary(BinOp::Div) | Op::Binary(BinOp::Pow) | Op::Func(Func::Pow) => x != 0.0,
        Op::Func(Func::Hypot) => x != 0.0 || y != 0.0,
        Op::Func(Func::Exp | Func::Exp2 | Func::Sigmoid | Func::Softplus | Func::LogSigmoid) => {
            true
        }
        _ => false,
    }
}

/// `at x = 0.7, w = 3` (or a note that there are no variables).
fn point_note(point: &[(String, f64)]) -> String {
    if point.is_empty() {
        return "(the expression has no variables)".into();
    }
    let values: Vec<String> = point
        .iter()
        .map(|(n, v)| format!("{n} = {}", given(*v)))
        .collect();
    format!("at {}", listed(values))
}

/// Why `a^b` has no derivative in its exponent `b` where `b` depends on a variable (is a
/// node) and the base is negative, or 0 with `b = 0`; there the tape gives the exponent a
/// partial of 0 by convention, which is no derivative to report.
fn no_exponent_derivative(op: Op, operands: &[Operand<'_>]) -> Option<String> {
    let (Op::Binary(BinOp::Pow) | Op::Func(Func::Pow), [a, b]) = (op, operands) else {
        return None;
    };
    // Only an exponent that depends on a variable (a node) is differentiated.
    b.var.node()?;
    let (base, exponent) = (a.var.value(), b.var.value());
    if base < 0.0 {
        Some(format!(
            "a negative base ({}) has real powers only at whole exponents, so the power is \
             not differentiable in its exponent",
            a.describe()
        ))
    } else if base == 0.0 && exponent == 0.0 {
        Some(
            "0 to a power is 0 for positive exponents, 1 at 0 and infinite for negative ones, \
             so it is not differentiable in the exponent at 0"
                .into(),
        )
    } else {
        None
    }
}

/// `a^b`: an integer power (`powi`, one parent) when the exponent is a constant integer, else
/// `powf`.
fn power<'t>(a: Var<'t, f64>, b: Var<'t, f64>) -> Var<'t, f64> {
    let n = b.value();
    if b.is_constant() && n.fract() == 0.0 && n.abs() <= f64::from(i32::MAX) {
        // In range and integral, so the conversion is exact.
        a.powi(n as i32)
    } else {
        a.powf(b)
    }
}

fn apply1(f: Func, x: Var<'_, f64>) -> Var<'_, f64> {
    match f {
        Func::Exp => x.exp(),
        Func::Exp2 => x.exp2(),
        Func::ExpM1 => x.exp_m1(),
        Func::Ln => x.ln(),
        Func::Log2 => x.log2(),
        Func::Log10 => x.log10(),
        Func::Ln1p => x.ln_1p(),
        Func::Sqrt => x.sqrt(),
        Func::Cbrt => x.cbrt(),
        Func::Sin => x.sin(),
        Func::Cos => x.cos(),
        Func::Tan => x.tan(),
        Func::Asin => x.asin(),
        Func::Acos => x.acos(),
        Func::Atan => x.atan(),
        Func::Sinh => x.sinh(),
        Func::Cosh => x.cosh(),
        Func::Tanh => x.tanh(),
        Func::Asinh => x.asinh(),
        Func::Acosh => x.acosh(),
        Func::Atanh => x.atanh(),
        Func::Abs => x.abs(),
        Func::Sigmoid => x.sigmoid(),
        Func::LogSigmoid => x.log_sigmoid(),
        Func::Softplus => x.softplus(),
        Func::Relu => x.relu(),
        Func::Recip => x.recip(),
        // Two-argument functions never get here (the parser checks the count).
        Func::Pow | Func::LogBase | Func::Atan2 | Func::Hypot | Func::Max | Func::Min => {
            Var::constant(f64::NAN)
        }
    }
}

fn apply2<'t>(f: Func, a: Var<'t, f64>, b: Var<'t, f64>) -> Var<'t, f64> {
    match f {
        Func::Pow => power(a, b),
        Func::LogBase => a.log(b),
        Func::Atan2 => a.atan2(b),
        Func::Hypot => a.hypot(b),
        Func::Max => a.max(b),
        Func::Min => a.min(b),
        _ => Var::constant(f64::NAN),
    }
}

/// Why an operation has no finite value at `args`, if it is outside the function's domain.
fn domain_reason(op: Op, args: &[f64]) -> Option<String> {
    let x = args.first().copied().unwrap_or(f64::NAN);
    let y = args.get(1).copied().unwrap_or(f64::NAN);
    let outside = |name: &str, domain: &str| Some(format!("{name} is only defined for {domain}"));
    match op {
        Op::Func(Func::Ln) if x <= 0.0 => outside("log", "arguments > 0"),
        Op::Func(Func::Log2) if x <= 0.0 => outside("log2", "arguments > 0"),
        Op::Func(Func::Log10) if x <= 0.0 => outside("log10", "arguments > 0"),
        Op::Func(Func::Ln1p) if x <= -1.0 => outside("log1p", "arguments > -1"),
        Op::Func(Func::Sqrt) if x < 0.0 => outside("sqrt", "arguments >= 0"),
        Op::Func(Func::Asin) if x.abs() > 1.0 => outside("asin", "arguments from -1 to 1"),
        Op::Func(Func::Acos) if x.abs() > 1.0 => outside("acos", "arguments from -1 to 1"),
        Op::Func(Func::Acosh) if x < 1.0 => outside("acosh", "arguments >= 1"),
        Op::Func(Func::Atanh) if x.abs() >= 1.0 => {
            outside("atanh", "arguments strictly between -1 and 1")
        }
        Op::Func(Func::Recip) if x == 0.0 => Some("division by zero".into()),
        Op::Binary(BinOp::Div) if y == 0.0 => Some("division by zero".into()),
        Op::Binary(BinOp::Pow) | Op::Func(Func::Pow) if x < 0.0 && y.fract() != 0.0 => {
            Some("a negative number to a non-integer power is not a real number".into())
        }
        Op::Binary(BinOp::Pow) | Op::Func(Func::Pow) if x == 0.0 && y < 0.0 => {
            Some("0 to a negative power is a division by zero".into())
        }
        Op::Func(Func::LogBase) if x <= 0.0 || y <= 0.0 || y == 1.0 => {
            outside("log(a, b)", "a > 0 and a base b > 0 other than 1")
        }
        _ => None,
    }
}

/// A node the output depends on (`reached`) with a value but no finite local derivative
/// (`sqrt` at 0) cannot be swept. The others do not matter: the sweeps skip them.
fn check_partials(
    trace: &Trace<f64>,
    nodes: &[NodeInfo],
    reached: &[bool],
    point: &[(String, f64)],
) -> Result<(), ExplainError> {
    for ((node, info), _) in trace
        .nodes
        .iter()
        .zip(nodes)
        .zip(reached)
        .filter(|(_, &r)| r)
    {
        if let Some(why) = &info.no_derivative {
            let mut e = ExplainError::new(format!(
                "`{} = {}` has no derivative in its exponent here: {why}",
                info.name, info.definition
            ));
            e.span = info.span;
            e.notes.push(point_note(point));
            e.notes.push(
                "(a whole power written as a number, such as x^3, is differentiated in its \
                 base alone)"
                    .into(),
            );
            return Err(e);
        }
        for (&p, &d) in node.parents.iter().zip(&node.partials) {
            if d.is_finite() {
                continue;
            }
            let parent = nodes.get(p).map_or("?", |i| i.name.as_str());
            let at = trace.nodes.get(p).map_or(f64::NAN, |n| n.value);
            // The functions' singular points (sqrt, cbrt and powers at 0, asin and acos at
            // +-1, acosh at 1) are at 0 or +-1; elsewhere an infinite partial has a finite
            // exact value that a 64-bit float cannot hold (d log(x)/dx = 1/x at 1e-310).
            let why = if d.is_nan() || at == 0.0 || at.abs() == 1.0 {
                format!(
                    "{} is not differentiable where {parent} = {}",
                    node.op,
                    number(at)
                )
            } else {
                format!(
                    "its exact value, where {parent} = {}, is too large for a 64-bit float",
                    number(at)
                )
            };
            let mut e = ExplainError::new(format!(
                "`{} = {}` has no finite derivative here: its local partial ∂{}/∂{parent} is \
                 {} ({why})",
                info.name,
                info.definition,
                info.name,
                if d.is_nan() {
                    "NaN".to_string()
                } else {
                    format!("{d}")
                },
            ));
            e.span = info.span;
            e.notes.push(point_note(point));
            return Err(e);
        }
    }
    Ok(())
}

/// Warnings for the nodes the output does not depend on whose value is finite but whose local
/// partial is not (`a = sqrt(x)` at 0, unused): said, since the value view shows them.
fn unused_singular_partials(
    trace: &Trace<f64>,
    nodes: &[NodeInfo],
    reached: &[bool],
    output: &str,
) -> Vec<String> {
    trace
        .nodes
        .iter()
        .zip(nodes)
        .enumerate()
        .filter(|&(i, (node, _))| {
            !reached.get(i).copied().unwrap_or(false) && node.value.is_finite()
        })
        .filter_map(|(_, (node, info))| {
            let (p, d) = node
                .parents
                .iter()
                .zip(&node.partials)
                .find(|(_, d)| !d.is_finite())?;
            let parent = nodes.get(*p).map_or("?", |i| i.name.as_str());
            Some(format!(
                "`{} = {}` has no finite derivative here (∂{}/∂{parent} = {}), but {output} \
                 does not depend on it",
                info.name,
                info.definition,
                info.name,
                number(*d)
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::parse::parse;
    use super::*;

    fn run(src: &str, at: &[(&str, f64)]) -> Result<Evaluation, ExplainError> {
        let at: Vec<(String, f64)> = at.iter().map(|(n, v)| (n.to_string(), *v)).collect();
        let program = parse(src)?;
        evaluate(&program, src, &at)
    }

    fn names_and_definitions(ev: &Evaluation) -> Vec<String> {
        ev.nodes
            .iter()
            .map(|n| format!("{} = {}", n.name, n.definition))
            .collect()
    }

    #[test]
    fn nodes_get_the_names_of_the_program() {
        let ev = run("a = x^2; b = 5*a; c = log(a); -b*c", &[("x", 0.7)]).unwrap();
        assert_eq!(
            names_and_definitions(&ev),
            [
                "x = input",
                "a = x^2",
                "b = 5*a",
                "c = log(a)",
                "t1 = -b",
                "f = t1*c"
            ]
        );
        // Constants are not nodes: `5*a` has one parent, with partial 5.
        assert_eq!(ev.trace.nodes[2].parents, vec![1]);
        assert_eq!(ev.trace.nodes[2].partials, vec![5.0]);
        assert_eq!(ev.output.name, "f");
        assert_eq!(ev.output.node, Some(5));
    }

    #[test]
    fn generated_names_avoid_the_programs_names() {
        let ev = run("t1 = x + 1; f = t1 * sin(x); exp(f)", &[("x", 0.5)]).unwrap();
        assert_eq!(
            names_and_definitions(&ev),
            [
                "x = input",
                "t1 = x + 1",
                "t2 = sin(x)",
                "f = t1*t2",
                "out = exp(f)"
            ]
        );
    }

    #[test]
    fn constant_subexpressions_are_written_out() {
        let ev = run("(2*3)*x + -(1 + 1)^x + 2^-1", &[("x", 0.5)]).unwrap();
        assert_eq!(
            names_and_definitions(&ev),
            [
                "x = input",
                "t1 = 2*3*x",
                "t2 = (1 + 1)^x",
                "t3 = -t2",
                "t4 = t1 + t3",
                "f = t4 + 2^-1"
            ]
        );
    }

    #[test]
    fn aliases_and_constants_are_rows_not_nodes() {
        let ev = run("k = 2*3; y = x; z = k*y", &[("x", 1.5)]).unwrap();
        assert_eq!(ev.nodes.len(), 2);
        assert_eq!(
            ev.rows,
            vec![
                Row::Node(0),
                Row::Constant {
                    name: "k".into(),
                    definition: "2*3".into(),
                    value: 6.0
                },
                Row::Alias {
                    name: "y".into(),
                    node: 0
                },
                Row::Node(1),
            ]
        );
        assert_eq!(ev.output.value, 9.0);
    }

    #[test]
    fn a_constant_output_has_no_node() {
        let ev = run("2*3", &[]).unwrap();
        assert_eq!(ev.output.node, None);
        assert_eq!(ev.output.value, 6.0);
        let ev = run("x", &[("x", 2.0)]).unwrap();
        assert_eq!(ev.output.node, Some(0));
        assert_eq!(ev.output.name, "x");
    }

    #[test]
    fn integer_powers_are_powi_others_powf() {
        let ev = run("x^2 + x^0.5 + 2^x + x^x", &[("x", 4.0)]).unwrap();
        let ops: Vec<&str> = ev.trace.nodes.iter().map(|n| n.op).collect();
        assert_eq!(
            ops,
            ["input", "powi", "powf", "add", "powf", "add", "powf", "add"]
        );
        assert_eq!(ev.trace.nodes[1].partials, vec![8.0]);
    }

    #[test]
    fn names_are_checked() {
        let e = run("a = x; a = 2*x; a", &[("x", 1.0)]).unwrap_err();
        assert!(
            e.message.contains("already defined at 1:1"),
            "{}",
            e.message
        );
        let e = run("b = 2*a; a = x; b", &[("x", 1.0)]).unwrap_err();
        assert!(
            e.message.contains("used before its definition at 1:10"),
            "{}",
            e.message
        );
        let e = run("a = a + 1", &[("a", 1.0)]).unwrap_err();
        assert!(
            e.message.contains("also given a value with --at"),
            "{}",
            e.message
        );
        let e = run("a = x + a", &[("x", 1.0)]).unwrap_err();
        assert!(e.message.contains("in its own definition"), "{}", e.message);
        let e = run("x * y", &[("x", 1.0)]).unwrap_err();
        assert_eq!(
            e.message,
            "no value for the variable `y`: give one with `--at y=VALUE`"
        );
        assert_eq!(e.position("x * y"), Some((1, 5)));
        let ev = run("x", &[("x", 1.0), ("w", 2.0)]).unwrap();
        assert_eq!(ev.warnings.len(), 1);
        assert_eq!(ev.variables.len(), 1);
    }

    #[test]
    fn values_outside_a_domain_are_errors_that_say_which() {
        let e = run("a = x^2\nc = log(-a)", &[("x", 0.7)]).unwrap_err();
        assert_eq!(e.position("a = x^2\nc = log(-a)"), Some((2, 5)));
        assert!(
            e.message
                .contains("`c = log(t1)` is not a number (NaN) here")
                && e.message.contains("log is only defined for arguments > 0")
                && e.message.contains("t1 = -0.49"),
            "{}",
            e.message
        );
        assert_eq!(e.notes, ["at x = 0.7"]);
        let e = run("sqrt(-1)", &[]).unwrap_err();
        assert!(
            e.message
                .contains("sqrt is only defined for arguments >= 0"),
            "{}",
            e.message
        );
        assert!(!e.message.contains("(with"), "{}", e.message);
        let e = run("1/0", &[]).unwrap_err();
        assert!(
            e.message.contains("is inf here: division by zero"),
            "{}",
            e.message
        );
        let e = run("exp(x)", &[("x", 1000.0)]).unwrap_err();
        assert!(e.message.contains("too large"), "{}", e.message);
        let e = run("(-x)^0.5", &[("x", 2.0)]).unwrap_err();
        assert!(e.message.contains("non-integer power"), "{}", e.message);
        let e = run("sqrt(x)", &[("x", 0.0)]).unwrap_err();
        assert!(
            e.message.contains("no finite derivative") && e.message.contains("∂f/∂x is inf"),
            "{}",
            e.message
        );
    }
}
