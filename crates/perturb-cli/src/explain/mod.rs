//! `perturb explain`: evaluates an expression on a traced perturb tape and shows the lecture's
//! value view (every intermediate with its value and local partials), the forward and reverse
//! sweeps node by node, the derivatives, and the computational graph as SVG or DOT.

mod eval;
mod parse;
pub mod picture;
#[cfg(test)]
mod props;
mod report;

use std::collections::{HashMap, HashSet};
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};

pub use eval::terminal_safe;
use eval::{evaluate, printable, Evaluation, ExplainError};
use report::Sweeps;

const EXAMPLES: &str = "\
Expressions: numbers, variables, + - * / ^ (or **), unary minus, parentheses, and the functions
exp, log (= ln; log(a, b) is log base b), log2, log10, log1p, exp2, expm1, sqrt, cbrt, sin, cos,
tan, asin, acos, atan, sinh, cosh, tanh, asinh, acosh, atanh, abs, sigmoid, log_sigmoid,
softplus, relu, recip, pow(a, b), atan2(a, b), hypot(a, b), max(a, b), min(a, b).
`NAME = expression` names a value, so a value used twice is one node. Statements are separated
by `;` or new lines; the last one is the output. `#` starts a comment.

Examples:
  perturb explain 'log(x^2)' --at x=0.7
  perturb explain 'a = x^2; b = w*a; c = sigmoid(b); g = log(c); L = -g' --at x=0.7,w=3
  perturb explain 'a = x^2; b = 5*a; c = log(a); g = b*c; L = -g' --at x=0.7 --mode reverse
  perturb explain 'y = 2*x; z = exp(x); y*z^2' --at x=0.7 --mode forward --wrt x
  perturb explain 'L = -log(sigmoid(w*x^2))' --at x=0.7,w=3 --graph logistic.svg
  perturb explain -f model.txt --at x=1,y=2 --json";

/// Which sweeps to show.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Forward mode: the tangent of every node, once per variable perturbed.
    Forward,
    /// Reverse mode: the adjoint of every node, in one sweep from the output.
    Reverse,
    /// Both sweeps.
    Both,
}

/// Evaluate an expression and show its derivatives step by step.
#[derive(clap::Args, Debug, Clone)]
#[command(after_help = EXAMPLES)]
pub struct Args {
    /// The expression, e.g. 'a = x^2; b = 5*a; c = log(a); -b*c'.
    #[arg(
        value_name = "EXPR",
        allow_hyphen_values = true,
        required_unless_present = "file",
        conflicts_with = "file"
    )]
    pub expr: Option<String>,
    /// Read the expression from a file ("-" for standard input).
    #[arg(long, short = 'f', value_name = "PATH")]
    pub file: Option<PathBuf>,
    /// The point: each variable's value, as NAME=VALUE separated by commas (or repeat --at).
    #[arg(
        long,
        value_name = "NAME=VALUE",
        value_delimiter = ',',
        allow_hyphen_values = true
    )]
    pub at: Vec<String>,
    /// Which sweeps to show.
    #[arg(long, value_enum, default_value_t = Mode::Both)]
    pub mode: Mode,
    /// The variables to perturb in forward mode and whose derivatives to report (default: all).
    #[arg(long, value_name = "NAME", value_delimiter = ',')]
    pub wrt: Vec<String>,
    /// Draw the computational graph to this file: `.svg` or `.png` for a picture, `.dot` (or
    /// `.gv`) for Graphviz. Each node shows its definition, value and local partials, and its
    /// adjoint after a reverse sweep (each edge: the contribution it passes back) or its tangent
    /// for the first --wrt variable in forward mode (each edge: the term it adds).
    #[arg(long, value_name = "PATH")]
    pub graph: Option<PathBuf>,
    /// Print everything as JSON (errors too, besides the message on standard error). Numbers
    /// that are not finite are written as the strings "inf", "-inf" and "NaN".
    #[arg(long)]
    pub json: bool,
    /// Also write the interactive page of `perturb serve` for this expression to this file, as
    /// one self-contained HTML file (no server or network needed): the graph, both sweeps step
    /// by step, and the Jacobian chain rule.
    #[arg(long, value_name = "PATH")]
    pub html: Option<PathBuf>,
}

/// Runs `perturb explain`; the error is the message to print.
pub fn run(args: &Args) -> Result<(), String> {
    let src = match read_source(args) {
        Ok(src) => src,
        Err(e) => {
            if args.json {
                println!("{}", report::json_error(&e, ""));
            }
            return Err(format!("explain: {}", e.render("")));
        }
    };
    match explain(args, &src) {
        Ok((ev, sweeps)) => {
            for warning in &ev.warnings {
                eprintln!("perturb: warning: {}", printable(warning));
            }
            if sweeps.forward_hidden > 0 {
                eprintln!("perturb: warning: {}", report::hidden_forward_note(&sweeps));
            }
            if let Some(path) = &args.graph {
                eprintln!("perturb: wrote the graph to {}", path.display());
            }
            if let Some(path) = &args.html {
                write_page(path, &ev, &sweeps, &src)?;
                eprintln!("perturb: wrote the page to {}", path.display());
            }
            // Written as it is made: a long report is never held in memory whole.
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            let written = if args.json {
                report::json(&ev, &sweeps, &src, &mut out)
            } else {
                report::text(&ev, &sweeps, &mut out)
            };
            written
                .and_then(|()| out.flush())
                .map_err(|e| format!("explain: cannot write the report: {e}"))
        }
        Err(e) => {
            if args.json {
                println!("{}", report::json_error(&e, &src));
            }
            Err(format!("explain: {}", e.render(&src)))
        }
    }
}

/// Programs longer than this are refused (reading stops there: `-f /dev/zero` ends). A program
/// needs about 100 times its length in memory (100,000 statements of 33 characters: 316 MB),
/// so this bounds it near 1.6 GB.
const MAX_SOURCE: u64 = 16 << 20;

fn read_source(args: &Args) -> Result<String, ExplainError> {
    let (reader, name): (Box<dyn std::io::Read>, String) =
        match (&args.expr, &args.file) {
            (Some(expr), _) => return Ok(expr.clone()),
            (None, Some(path)) if path == Path::new("-") => {
                (Box::new(std::io::stdin()), "standard input".into())
            }
            (None, Some(path)) => (
                Box::new(std::fs::File::open(path).map_err(|e| {
                    ExplainError::new(format!("cannot read {}: {e}", path.display()))
                })?),
                path.display().to_string(),
            ),
            (None, None) => return Err(ExplainError::new("give an expression (or --file PATH)")),
        };
    let mut bytes = Vec::new();
    reader
        .take(MAX_SOURCE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| ExplainError::new(format!("cannot read {name}: {e}")))?;
    if bytes.len() as u64 > MAX_SOURCE {
        return Err(ExplainError::new(format!(
            "{name} is longer than {} MiB, the most a program may be",
            MAX_SOURCE >> 20
        )));
    }
    String::from_utf8(bytes).map_err(|e| {
        ExplainError::new(format!(
            "{name} is not UTF-8 text (byte {} is not valid)",
            e.utf8_error().valid_up_to()
        ))
    })
}

/// Evaluates, sweeps and draws the graph (if asked): what is left is to print the report.
fn explain(args: &Args, src: &str) -> Result<(Evaluation, Sweeps), ExplainError> {
    let (ev, sweeps) = evaluate_and_sweep(src, &args.at, args.mode, &args.wrt)?;
    if let Some(path) = &args.graph {
        picture::write(path, &ev, &sweeps)?;
    }
    Ok((ev, sweeps))
}

/// Parses `src`, evaluates it at the point `at` (`NAME=VALUE` items) and runs the sweeps.
fn evaluate_and_sweep(
    src: &str,
    at: &[String],
    mode: Mode,
    wrt: &[String],
) -> Result<(Evaluation, Sweeps), ExplainError> {
    let at = parse_point(at)?;
    let program = parse::parse(src)?;
    let mut ev = evaluate(&program, src, &at)?;
    let wrt = resolve_wrt(wrt, &ev, &program)?;
    let sweeps = sweep(&ev, mode, &wrt);
    let overflows = report::non_finite_derivatives(&ev, &sweeps);
    ev.warnings.extend(overflows);
    Ok((ev, sweeps))
}

/// What `perturb explain SRC --at AT --json` prints (both sweeps, every variable), for the
/// page of `perturb serve`; the error is `--json`'s error object. Graphs of more than
/// `max_nodes` nodes are refused (the page could not show them).
pub fn json_report(src: &str, at: &[String], max_nodes: usize) -> Result<String, String> {
    let (ev, sweeps) =
        evaluate_and_sweep(src, at, Mode::Both, &[]).map_err(|e| report::json_error(&e, src))?;
    check_page_size(&ev, max_nodes).map_err(|e| report::json_error(&e, src))?;
    let mut out = Vec::new();
    report::json(&ev, &sweeps, src, &mut out).map_err(|e| e.to_string())?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

fn check_page_size(ev: &Evaluation, max_nodes: usize) -> Result<(), ExplainError> {
    let nodes = ev.trace.nodes.len();
    if nodes > max_nodes {
        return Err(ExplainError::new(format!(
            "the graph has {nodes} nodes, more than the page shows ({max_nodes}); \
             run `perturb explain` in a terminal for it"
        )));
    }
    Ok(())
}

/// `--html`: the page with this expression's report (as `--json` writes it) inside it.
fn write_page(path: &Path, ev: &Evaluation, sweeps: &Sweeps, src: &str) -> Result<(), String> {
    let fail = |e: String| format!("explain: --html: {e}");
    check_page_size(ev, crate::serve::MAX_PAGE_NODES).map_err(|e| fail(e.render(src)))?;
    let mut report = Vec::new();
    report::json(ev, sweeps, src, &mut report).map_err(|e| fail(e.to_string()))?;
    let page = crate::serve::page::standalone(&String::from_utf8_lossy(&report));
    std::fs::write(path, page).map_err(|e| fail(format!("cannot write {}: {e}", path.display())))
}

/// `["x=0.7", "w=3"]` to names and values, checked.
fn parse_point(items: &[String]) -> Result<Vec<(String, f64)>, ExplainError> {
    let mut point: Vec<(String, f64)> = Vec::new();
    let mut seen = HashSet::new();
    for item in items {
        let item = item.trim();
        if item.is_empty() {
            continue;
        }
        let Some((name, value)) = item.split_once('=') else {
            return Err(ExplainError::new(format!(
                "--at: expected NAME=VALUE, got `{item}`"
            )));
        };
        let (name, value) = (name.trim(), value.trim());
        let valid = name
            .chars()
            .next()
            .is_some_and(|c| c.is_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_alphanumeric() || c == '_');
        if !valid {
            return Err(ExplainError::new(format!(
                "--at: `{name}` is not a variable name (letters, digits and _, not starting with a digit)"
            )));
        }
        if value.is_empty() {
            return Err(ExplainError::new(format!(
                "--at: missing value for `{name}` (write {name}=VALUE)"
            )));
        }
        let v = parse::parse_number(value)
            .map_err(|e| ExplainError::new(format!("--at: the value of `{name}`: {e}")))?;
        if !v.is_finite() {
            return Err(ExplainError::new(format!(
                "--at: the value of `{name}` must be a finite number, not {value}"
            )));
        }
        if !seen.insert(name.to_string()) {
            return Err(ExplainError::new(format!(
                "--at: `{name}` is given more than once"
            )));
        }
        point.push((name.to_string(), v));
    }
    Ok(point)
}

/// The indices (into `ev.variables`) of the `--wrt` variables, or of all variables.
fn resolve_wrt(
    wrt: &[String],
    ev: &Evaluation,
    program: &parse::Program,
) -> Result<Vec<usize>, ExplainError> {
    let names: Vec<&str> = wrt
        .iter()
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .collect();
    if names.is_empty() {
        return Ok((0..ev.variables.len()).collect());
    }
    let index: HashMap<&str, usize> = ev
        .variables
        .iter()
        .enumerate()
        .map(|(i, v)| (v.name.as_str(), i))
        .collect();
    let mut out = Vec::new();
    let mut taken = HashSet::new();
    for name in names {
        match index.get(name).copied() {
            Some(i) if taken.insert(i) => out.push(i),
            Some(_) => {}
            None => {
                let bound = program
                    .statements
                    .iter()
                    .any(|s| s.name.as_ref().is_some_and(|(n, _)| n == name));
                let variables: Vec<String> = ev.variables.iter().map(|v| v.name.clone()).collect();
                let list = if variables.is_empty() {
                    "the expression has none".to_string()
                } else {
                    report::listed(variables)
                };
                return Err(ExplainError::new(if bound {
                    format!(
                        "--wrt: `{name}` is an intermediate value, not a variable; \
                         the variables are: {list}"
                    )
                } else {
                    format!("--wrt: `{name}` is not a variable of the expression; the variables are: {list}")
                }));
            }
        }
    }
    Ok(out)
}

/// Runs the sweeps the report needs: the reverse sweep, and in forward mode each variable's
/// derivative (one sweep per variable, keeping only the output's tangent; the sweeps shown
/// node by node are computed again while they are printed).
fn sweep(ev: &Evaluation, mode: Mode, wrt: &[usize]) -> Sweeps {
    let (forward, forward_shown) = if mode == Mode::Reverse {
        (None, Vec::new())
    } else {
        let derivatives = wrt
            .iter()
            .map(|&v| {
                ev.output
                    .node
                    .map_or(0.0, |o| ev.trace.forward(ev.variables[v].node)[o])
            })
            .collect();
        let shown = wrt
            .iter()
            .copied()
            .take(report::forward_sweeps_shown(
                wrt.len(),
                ev.trace.nodes.len(),
            ))
            .collect();
        (Some(derivatives), shown)
    };
    let reverse_asked = mode != Mode::Forward;
    let reverse = match (reverse_asked, ev.output.node) {
        (true, Some(o)) => Some(ev.trace.reverse(o)),
        _ => None,
    };
    Sweeps {
        forward_hidden: if forward.is_some() {
            wrt.len() - forward_shown.len()
        } else {
            0
        },
        forward_shown,
        forward,
        reverse,
        reverse_asked,
        report: wrt.to_vec(),
    }
}
