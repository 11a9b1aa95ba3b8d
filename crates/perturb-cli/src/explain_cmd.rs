//! `perturb explain`: evaluates an expression on a traced tape and shows the lecture's value
//! view, the forward sweep, the reverse sweep and the derivatives, as text, JSON or a graph.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use perturb::explain::{Annotation, Trace};
use perturb::{Float, Scalar, Tape, Var};
use serde::Serialize;

use crate::expr::{parse, Expr, Pos, Statement};

/// Which sweeps to show.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Forward mode: the tangent of every node.
    Forward,
    /// Reverse mode: the adjoint of every node.
    Reverse,
    /// Both.
    Both,
}

/// `perturb explain EXPR --at x=0.7,w=3`.
#[derive(clap::Args, Debug, Clone)]
#[command(after_help = "Examples:\n  \
    perturb explain 'log(x^2)' --at x=0.7\n  \
    perturb explain '-log(sigmoid(w*x^2))' --at x=0.7,w=3 --mode reverse\n  \
    perturb explain 'a = x^2; b = 5*a; c = log(a); g = b*c; -g' --at x=0.7 --graph graph.svg\n  \
    perturb explain 'y*z^2' --at y=2,z=1.5 --json")]
pub struct Args {
    /// The expression: numbers, variables, + - * / ^, unary minus, parentheses, functions (exp,
    /// log, ln, sqrt, sin, cos, tan, tanh, sigmoid, relu, softplus, log_sigmoid, abs, asin, acos,
    /// atan, sinh, cosh, max, min, atan2, hypot) and bindings `name = expr` separated by `;` or
    /// new lines; the last statement is the output.
    #[arg(allow_hyphen_values = true)]
    pub expr: String,
    /// The value of every variable, as `name=value` pairs separated by commas.
    #[arg(long, value_parser = parse_assignments, allow_hyphen_values = true)]
    pub at: Option<Assignments>,
    /// The sweeps to show.
    #[arg(long, value_enum, default_value_t = Mode::Both)]
    pub mode: Mode,
    /// The variable the forward sweep perturbs (default: each variable in turn).
    #[arg(long)]
    pub wrt: Option<String>,
    /// Also draw the graph to this file: `.svg` (rendered by perturb) or `.dot` (Graphviz).
    #[arg(long)]
    pub graph: Option<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Variable values in the order given.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Assignments(pub Vec<(String, f64)>);

fn parse_assignments(text: &str) -> Result<Assignments, String> {
    let mut out = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, value) = part
            .split_once('=')
            .ok_or_else(|| format!("'{part}' is not of the form name=value"))?;
        let name = name.trim();
        if name.is_empty() || !name.chars().all(|c| c.is_alphanumeric() || c == '_') {
            return Err(format!("'{name}' is not a variable name"));
        }
        let value: f64 = value
            .trim()
            .parse()
            .map_err(|_| format!("the value of {name}, '{}', is not a number", value.trim()))?;
        if !value.is_finite() {
            return Err(format!("the value of {name} must be finite"));
        }
        if out.iter().any(|(n, _): &(String, f64)| n == name) {
            return Err(format!("{name} is given twice"));
        }
        out.push((name.to_string(), value));
    }
    Ok(Assignments(out))
}

/// One node of the computation as shown to the user.
#[derive(Serialize, Clone, Debug)]
struct NodeView {
    name: String,
    definition: String,
    op: &'static str,
    value: f64,
    /// `(parent name, d node / d parent)`.
    partials: Vec<(String, f64)>,
}

#[derive(Serialize, Debug)]
struct ForwardView {
    wrt: String,
    tangents: Vec<(String, f64)>,
    derivative: f64,
}

#[derive(Serialize, Debug)]
struct ContributionView {
    from: String,
    to: String,
    local: f64,
    amount: f64,
}

#[derive(Serialize, Debug)]
struct ReverseView {
    adjoints: Vec<(String, f64)>,
    contributions: Vec<ContributionView>,
    gradient: Vec<(String, f64)>,
}

#[derive(Serialize, Debug)]
struct Report {
    expression: String,
    at: Vec<(String, f64)>,
    output: String,
    value: f64,
    nodes: Vec<NodeView>,
    forward: Vec<ForwardView>,
    reverse: Option<ReverseView>,
}

/// What the evaluation of one expression gives: a tape node (or a constant) and how to show it.
#[derive(Clone)]
struct Value<'t> {
    var: Var<'t, f64>,
    label: String,
}

struct Evaluator<'t> {
    tape: &'t Tape<f64>,
    env: HashMap<String, Value<'t>>,
    /// Name and definition of each tape node, by node index.
    names: Vec<Option<(String, String)>>,
    anonymous: usize,
}

impl<'t> Evaluator<'t> {
    /// Gives the node behind `var` a name (the binding's, or the next `t<k>`) the first time it
    /// is seen, and returns how to refer to it.
    fn name(&mut self, var: Var<'t, f64>, definition: String, binding: Option<&str>) -> Value<'t> {
        let Some(node) = var.node() else {
            return Value {
                var,
                label: number(var.value()),
            };
        };
        if self.names.len() <= node {
            self.names.resize(node + 1, None);
        }
        if let Some((name, _)) = &self.names[node] {
            return Value {
                var,
                label: name.clone(),
            };
        }
        let name = match binding {
            Some(b) => b.to_string(),
            None => {
                self.anonymous += 1;
                format!("t{}", self.anonymous)
            }
        };
        self.names[node] = Some((name.clone(), definition));
        Value { var, label: name }
    }

    fn eval(&mut self, e: &Expr, binding: Option<&str>) -> Result<Value<'t>, String> {
        let v = match e {
            Expr::Number(x) => Value { var: Var::constant(*x), label: number(*x) },
            Expr::Name(name, pos) => self.env.get(name).cloned().ok_or_else(|| {
                format!("line {}, column {}: the variable '{name}' has no value: give it with --at {name}=...", pos.line, pos.col)
            })?,
            Expr::Neg(inner) => {
                let a = self.eval(inner, None)?;
                let def = format!("-{}", a.label);
                self.name(-a.var, def, binding)
            }
            Expr::Binary(op, l, r) => {
                let (a, b) = (self.eval(l, None)?, self.eval(r, None)?);
                let var = match op {
                    '+' => a.var + b.var,
                    '-' => a.var - b.var,
                    '*' => a.var * b.var,
                    '/' => a.var / b.var,
                    _ => match (b.var.node(), b.var.value()) {
                        (None, p) if p == p.trunc() && p.abs() <= 64.0 => a.var.powi(p as i32),
                        _ => a.var.powf(b.var),
                    },
                };
                let def = format!("{} {op} {}", a.label, b.label);
                self.name(var, def, binding)
            }
            Expr::Call(f, args, pos) => {
                let values = args.iter().map(|a| self.eval(a, None)).collect::<Result<Vec<_>, _>>()?;
                let var = call(f, &values, *pos)?;
                let labels: Vec<&str> = values.iter().map(|v| v.label.as_str()).collect();
                let def = format!("{f}({})", labels.join(", "));
                self.name(var, def, binding)
            }
        };
        Ok(v)
    }
}

fn call<'t>(f: &str, args: &[Value<'t>], pos: Pos) -> Result<Var<'t, f64>, String> {
    let arity = |n: usize| -> Result<(), String> {
        if args.len() == n {
            Ok(())
        } else {
            Err(format!(
                "line {}, column {}: {f} takes {n} argument{}, got {}",
                pos.line,
                pos.col,
                if n == 1 { "" } else { "s" },
                args.len()
            ))
        }
    };
    let one = |g: fn(Var<'t, f64>) -> Var<'t, f64>| -> Result<Var<'t, f64>, String> {
        arity(1)?;
        Ok(g(args[0].var))
    };
    let two = |g: fn(Var<'t, f64>, Var<'t, f64>) -> Var<'t, f64>| -> Result<Var<'t, f64>, String> {
        arity(2)?;
        Ok(g(args[0].var, args[1].var))
    };
    match f {
        "exp" => one(Float::exp),
        "log" | "ln" => one(Float::ln),
        "sqrt" => one(Float::sqrt),
        "sin" => one(Float::sin),
        "cos" => one(Float::cos),
        "tan" => one(Float::tan),
        "tanh" => one(Float::tanh),
        "sinh" => one(Float::sinh),
        "cosh" => one(Float::cosh),
        "asin" => one(Float::asin),
        "acos" => one(Float::acos),
        "atan" => one(Float::atan),
        "abs" => one(Float::abs),
        "sigmoid" => one(Scalar::sigmoid),
        "relu" => one(Scalar::relu),
        "softplus" => one(Scalar::softplus),
        "log_sigmoid" => one(Scalar::log_sigmoid),
        "max" => two(Float::max),
        "min" => two(Float::min),
        "atan2" => two(Float::atan2),
        "hypot" => two(Float::hypot),
        "pow" => two(Float::powf),
        _ => Err(format!(
            "line {}, column {}: unknown function '{f}' (known: exp, log, ln, sqrt, sin, cos, tan, tanh, sinh, cosh, asin, acos, atan, abs, sigmoid, relu, softplus, log_sigmoid, max, min, atan2, hypot, pow)",
            pos.line, pos.col
        )),
    }
}

/// A number as shown: up to 10 significant digits, no trailing zeros.
fn number(x: f64) -> String {
    if x == x.trunc() && x.abs() < 1e15 {
        format!("{x}")
    } else {
        let s = format!("{x:.10}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// Stack for parsing and evaluating: deep (but bounded, see `expr`) expressions recurse.
const STACK_BYTES: usize = 64 << 20;

/// Runs the command on a thread with a large stack.
pub fn run(args: &Args) -> Result<(), String> {
    let args = args.clone();
    std::thread::Builder::new()
        .stack_size(STACK_BYTES)
        .spawn(move || run_here(&args))
        .map_err(|e| format!("explain: cannot start: {e}"))?
        .join()
        .unwrap_or_else(|_| Err("explain: internal error (see the message above)".into()))
}

/// Builds the report, prints it, writes the graph.
fn run_here(args: &Args) -> Result<(), String> {
    let statements =
        parse(&args.expr).map_err(|e| format!("explain: cannot parse the expression: {e}"))?;
    let at = args.at.clone().unwrap_or_default();
    let tape = Tape::traced();
    let mut ev = Evaluator {
        tape: &tape,
        env: HashMap::new(),
        names: Vec::new(),
        anonymous: 0,
    };
    let mut inputs = Vec::new();
    for (name, value) in &at.0 {
        let var = ev.tape.var(*value);
        let v = ev.name(var, "input".into(), Some(name));
        ev.env.insert(name.clone(), v);
        inputs.push((name.clone(), var));
    }
    if let Some(wrt) = &args.wrt {
        if !ev.env.contains_key(wrt) {
            return Err(format!(
                "explain: --wrt {wrt}: {wrt} is not among the variables given with --at"
            ));
        }
    }
    let output = evaluate(&mut ev, &statements)?;
    let trace = tape.trace().map_err(|e| format!("explain: {e}"))?;
    check_finite(&ev, &trace, &at)?;

    let names: Vec<String> = (0..trace.nodes.len())
        .map(|i| {
            ev.names
                .get(i)
                .cloned()
                .flatten()
                .map_or_else(|| format!("v{i}"), |(n, _)| n)
        })
        .collect();
    let report = build_report(args, &ev, &trace, &names, &inputs, &output, &at);

    if args.json {
        let json = serde_json::to_string_pretty(&report).map_err(|e| format!("explain: {e}"))?;
        println!("{json}");
    } else {
        print!("{}", render_text(&report));
    }
    if let Some(path) = &args.graph {
        write_graph(path, &trace, &names, &report, args)?;
        if !args.json {
            println!("graph written to {}", path.display());
        }
    }
    Ok(())
}

/// Evaluates the statements in order; returns the output's value and label.
fn evaluate<'t>(ev: &mut Evaluator<'t>, statements: &[Statement]) -> Result<Value<'t>, String> {
    let mut last = None;
    for st in statements {
        let binding = st.name.as_ref().map(|(n, _)| n.as_str());
        let value = ev
            .eval(&st.expr, binding)
            .map_err(|e| format!("explain: {e}"))?;
        if let Some((name, pos)) = &st.name {
            if ev.env.contains_key(name) {
                return Err(format!(
                    "explain: line {}, column {}: '{name}' is already defined",
                    pos.line, pos.col
                ));
            }
            ev.env.insert(name.clone(), value.clone());
        }
        last = Some(value);
    }
    last.ok_or_else(|| "explain: the expression is empty".to_string())
}

/// Every node's value must be a finite number; otherwise say which node, and why.
fn check_finite(ev: &Evaluator<'_>, trace: &Trace<f64>, at: &Assignments) -> Result<(), String> {
    for (i, node) in trace.nodes.iter().enumerate() {
        if !node.value.is_finite() {
            let (name, def) = ev
                .names
                .get(i)
                .cloned()
                .flatten()
                .unwrap_or_else(|| (format!("v{i}"), node.op.to_string()));
            let point: Vec<String> = at.0.iter().map(|(n, v)| format!("{n} = {v}")).collect();
            return Err(format!(
                "explain: {name} = {def} is {} at {}: the point is outside the domain of {}",
                node.value,
                point.join(", "),
                node.op
            ));
        }
    }
    Ok(())
}

fn build_report(
    args: &Args,
    ev: &Evaluator<'_>,
    trace: &Trace<f64>,
    names: &[String],
    inputs: &[(String, Var<'_, f64>)],
    output: &Value<'_>,
    at: &Assignments,
) -> Report {
    let nodes: Vec<NodeView> = trace
        .nodes
        .iter()
        .enumerate()
        .map(|(i, node)| NodeView {
            name: names[i].clone(),
            definition: ev
                .names
                .get(i)
                .cloned()
                .flatten()
                .map_or_else(|| node.op.to_string(), |(_, d)| d),
            op: node.op,
            value: node.value,
            partials: node
                .parents
                .iter()
                .zip(&node.partials)
                .map(|(&p, &d)| (names[p].clone(), d))
                .collect(),
        })
        .collect();
    let out_node = output.var.node();
    let wrt: Vec<&(String, Var<'_, f64>)> = match &args.wrt {
        Some(w) => inputs.iter().filter(|(n, _)| n == w).collect(),
        None => inputs.iter().collect(),
    };
    let forward = if args.mode == Mode::Reverse {
        Vec::new()
    } else {
        wrt.iter()
            .filter_map(|(name, var)| {
                let seed = var.node()?;
                let t = trace.forward(seed);
                Some(ForwardView {
                    wrt: name.clone(),
                    tangents: names.iter().cloned().zip(t.iter().copied()).collect(),
                    derivative: out_node.map_or(0.0, |o| t[o]),
                })
            })
            .collect()
    };
    let reverse = (args.mode != Mode::Forward).then(|| {
        let sweep = out_node.map(|o| trace.reverse(o));
        let adjoints = sweep
            .as_ref()
            .map_or_else(|| vec![0.0; names.len()], |s| s.adjoints.clone());
        ReverseView {
            adjoints: names
                .iter()
                .cloned()
                .zip(adjoints.iter().copied())
                .collect(),
            contributions: sweep
                .map(|s| {
                    s.contributions
                        .into_iter()
                        .map(|c| ContributionView {
                            from: names[c.from].clone(),
                            to: names[c.to].clone(),
                            local: c.local,
                            amount: c.amount,
                        })
                        .collect()
                })
                .unwrap_or_default(),
            gradient: inputs
                .iter()
                .map(|(n, v)| (n.clone(), v.node().map_or(0.0, |i| adjoints[i])))
                .collect(),
        }
    });
    Report {
        expression: args.expr.clone(),
        at: at.0.clone(),
        output: output.label.clone(),
        value: output.var.value(),
        nodes,
        forward,
        reverse,
    }
}

fn render_text(r: &Report) -> String {
    let mut s = String::new();
    let point: Vec<String> =
        r.at.iter()
            .map(|(n, v)| format!("{n} = {}", number(*v)))
            .collect();
    let _ = writeln!(
        s,
        "{}  at  {}",
        r.expression,
        if point.is_empty() {
            "(no variables)".into()
        } else {
            point.join(", ")
        }
    );
    let _ = writeln!(
        s,
        "\nValue view: each intermediate, its value and its local partial derivatives"
    );
    let width = r
        .nodes
        .iter()
        .map(|n| n.name.len() + n.definition.len() + 3)
        .max()
        .unwrap_or(10)
        .max(12);
    for n in &r.nodes {
        let head = format!("{} = {}", n.name, n.definition);
        let partials: Vec<String> = n
            .partials
            .iter()
            .map(|(p, d)| format!("d{}/d{p} = {}", n.name, number(*d)))
            .collect();
        let line = format!(
            "  {head:<width$}  value {:>14}   {}",
            number(n.value),
            partials.join(", ")
        );
        let _ = writeln!(s, "{}", line.trim_end());
    }
    for f in &r.forward {
        let _ = writeln!(s, "\nForward sweep: perturb {} by 1; each tangent is the sum of (local partial x tangent of the parent)", f.wrt);
        for (name, t) in &f.tangents {
            let _ = writeln!(s, "  d{name}/d{} = {}", f.wrt, number(*t));
        }
    }
    if let Some(rev) = &r.reverse {
        let _ = writeln!(
            s,
            "\nReverse sweep: the adjoint d{}/d(node) of each node, from the output back",
            r.output
        );
        let adjoint_of: HashMap<&str, f64> =
            rev.adjoints.iter().map(|(n, a)| (n.as_str(), *a)).collect();
        for (name, a) in rev.adjoints.iter().rev() {
            let terms: Vec<String> = rev
                .contributions
                .iter()
                .filter(|c| &c.to == name)
                .map(|c| {
                    let from = adjoint_of.get(c.from.as_str()).copied().unwrap_or(f64::NAN);
                    format!(
                        "{} (from {}: {} x {})",
                        number(c.amount),
                        c.from,
                        number(from),
                        number(c.local)
                    )
                })
                .collect();
            if terms.len() > 1 {
                let _ = writeln!(
                    s,
                    "  d{}/d{name} = {} = {}",
                    r.output,
                    number(*a),
                    terms.join(" + ")
                );
            } else if let Some(t) = terms.first() {
                let _ = writeln!(s, "  d{}/d{name} = {}", r.output, t);
            } else {
                let _ = writeln!(s, "  d{}/d{name} = {}", r.output, number(*a));
            }
        }
    }
    let _ = writeln!(s, "\nResult: {} = {}", r.output, number(r.value));
    for f in &r.forward {
        let _ = writeln!(
            s,
            "  d{}/d{} = {}   (forward)",
            r.output,
            f.wrt,
            number(f.derivative)
        );
    }
    if let Some(rev) = &r.reverse {
        for (name, g) in &rev.gradient {
            let _ = writeln!(s, "  d{}/d{name} = {}   (reverse)", r.output, number(*g));
        }
    }
    s
}

fn write_graph(
    path: &std::path::Path,
    trace: &Trace<f64>,
    names: &[String],
    report: &Report,
    args: &Args,
) -> Result<(), String> {
    let adjoints: Vec<f64> = report
        .reverse
        .as_ref()
        .map(|r| r.adjoints.iter().map(|a| a.1).collect())
        .unwrap_or_default();
    let tangents: Vec<f64> = report
        .forward
        .first()
        .map(|f| f.tangents.iter().map(|t| t.1).collect())
        .unwrap_or_default();
    let annotation = match args.mode {
        Mode::Forward => Some(Annotation::Tangents(&tangents[..])),
        _ => Some(Annotation::Adjoints(&adjoints[..])),
    };
    let dot = trace.to_dot(names, annotation);
    let text = match path.extension().and_then(|e| e.to_str()) {
        Some("dot") => dot,
        Some("svg") => perturb::explain::dot_to_svg(&dot).map_err(|e| format!("explain: {e}"))?,
        _ => {
            return Err(format!(
                "explain: --graph {}: the file must end in .svg or .dot",
                path.display()
            ))
        }
    };
    std::fs::write(path, text).map_err(|e| format!("explain: cannot write {}: {e}", path.display()))
}
