//! The expression language of `perturb explain`: a lexer and a recursive-descent parser that
//! give an AST whose every node knows where it came from in the source (for error messages).
//!
//! ```text
//! program   := statement (';' | newline) statement ...      the last statement is the output
//! statement := NAME '=' expr | expr
//! expr      := term (('+' | '-') term)*                   a flat chain, not a nesting
//! term      := unary (('*' | '/') unary)*                  a flat chain, not a nesting
//! unary     := ('-' | '+') unary | power                    so -x^2 is -(x^2)
//! power     := atom (('^' | '**') unary)?                   right associative: 2^3^2 = 2^9
//! atom      := NUMBER | NAME | NAME '(' expr (',' expr)* ')' | '(' expr ')'
//! ```
//!
//! `#` starts a comment that runs to the end of the line. Inside parentheses and after a binary
//! operator a newline does not end the statement.

use std::fmt;

/// Bytes `start..end` of the source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    fn to(self, other: Span) -> Span {
        Span {
            start: self.start,
            end: other.end.max(self.end),
        }
    }
}

/// Expression trees taller than this are refused (the evaluator and the printers recurse). A
/// chain `a + b - c + ...` or `a * b / c * ...` is one level however long it is, so only real
/// nesting (parentheses, function calls, signs and powers) counts.
pub const MAX_DEPTH: u32 = 500;

/// Parentheses, signs and powers nested deeper than this are refused (the parser recurses).
pub const MAX_NESTING: u32 = 200;

/// A parse error: what is wrong and where.
#[derive(Clone, Debug, PartialEq)]
pub struct ParseError {
    pub span: Span,
    pub message: String,
}

/// A whole program: its statements in order; the last one is the output.
#[derive(Clone, Debug, PartialEq)]
pub struct Program {
    pub statements: Vec<Statement>,
}

/// `name = expr` or a bare `expr`.
#[derive(Clone, Debug, PartialEq)]
pub struct Statement {
    pub name: Option<(String, Span)>,
    pub expr: Expr,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
    /// The height of this tree (a leaf is 1), bounded by [`MAX_DEPTH`].
    pub depth: u32,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ExprKind {
    /// A number and its text as written.
    Num(f64, String),
    Var(String),
    Neg(Box<Expr>),
    /// `a^b` (the only binary operator that is not in a [`ExprKind::Chain`]).
    Binary(BinOp, Box<Expr>, Box<Expr>),
    /// A left-associative chain `first op1 e1 op2 e2 ...` of `+`/`-` or of `*`/`/`, kept flat
    /// so that a long sum is no deeper than a short one (the evaluator folds it in a loop).
    Chain(Box<Expr>, Vec<(BinOp, Expr)>),
    /// A function, the name as written (`ln` or `log`), and its arguments.
    Call(Func, String, Vec<Expr>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Pow,
}

#[cfg(test)]
impl BinOp {
    pub fn symbol(self) -> &'static str {
        match self {
            BinOp::Add => " + ",
            BinOp::Sub => " - ",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::Pow => "^",
        }
    }
}

/// The functions the language knows, each one of perturb's elementary operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Func {
    Exp,
    Exp2,
    ExpM1,
    Ln,
    Log2,
    Log10,
    Ln1p,
    Sqrt,
    Cbrt,
    Sin,
    Cos,
    Tan,
    Asin,
    Acos,
    Atan,
    Sinh,
    Cosh,
    Tanh,
    Asinh,
    Acosh,
    Atanh,
    Abs,
    Sigmoid,
    LogSigmoid,
    Softplus,
    Relu,
    Recip,
    Pow,
    LogBase,
    Atan2,
    Hypot,
    Max,
    Min,
}

/// Every function name with its number of arguments and meaning (`log` has two entries).
pub const FUNCTIONS: &[(&str, usize, Func)] = &[
    ("exp", 1, Func::Exp),
    ("exp2", 1, Func::Exp2),
    ("expm1", 1, Func::ExpM1),
    ("exp_m1", 1, Func::ExpM1),
    ("log", 1, Func::Ln),
    ("ln", 1, Func::Ln),
    ("log", 2, Func::LogBase),
    ("log2", 1, Func::Log2),
    ("log10", 1, Func::Log10),
    ("log1p", 1, Func::Ln1p),
    ("ln_1p", 1, Func::Ln1p),
    ("sqrt", 1, Func::Sqrt),
    ("cbrt", 1, Func::Cbrt),
    ("sin", 1, Func::Sin),
    ("cos", 1, Func::Cos),
    ("tan", 1, Func::Tan),
    ("asin", 1, Func::Asin),
    ("acos", 1, Func::Acos),
    ("atan", 1, Func::Atan),
    ("sinh", 1, Func::Sinh),
    ("cosh", 1, Func::Cosh),
    ("tanh", 1, Func::Tanh),
    ("asinh", 1, Func::Asinh),
    ("acosh", 1, Func::Acosh),
    ("atanh", 1, Func::Atanh),
    ("abs", 1, Func::Abs),
    ("sigmoid", 1, Func::Sigmoid),
    ("log_sigmoid", 1, Func::LogSigmoid),
    ("logsigmoid", 1, Func::LogSigmoid),
    ("softplus", 1, Func::Softplus),
    ("relu", 1, Func::Relu),
    ("recip", 1, Func::Recip),
    ("pow", 2, Func::Pow),
    ("atan2", 2, Func::Atan2),
    ("hypot", 2, Func::Hypot),
    ("max", 2, Func::Max),
    ("min", 2, Func::Min),
];

/// The distinct function names, in table order, for help and error messages.
pub fn function_names() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = Vec::new();
    for (name, _, _) in FUNCTIONS {
        if !names.contains(name) {
            names.push(name);
        }
    }
    names
}

/// The 1-based line and column (in characters) of byte `offset` of `src`.
pub fn line_col(src: &str, offset: usize) -> (usize, usize) {
    line_cols(src, &[offset])[0]
}

/// The 1-based line and column (in characters) of each byte offset, in one pass over `src`
/// (so that placing every node of a long program stays linear).
pub fn line_cols(src: &str, offsets: &[usize]) -> Vec<(usize, usize)> {
    let mut order: Vec<usize> = (0..offsets.len()).collect();
    order.sort_by_key(|&k| offsets[k]);
    let mut out = vec![(1, 1); offsets.len()];
    let mut pending = order.into_iter().peekable();
    let (mut line, mut col) = (1, 1);
    for (i, c) in src.char_indices().chain(std::iter::once((src.len(), '\0'))) {
        while let Some(&k) = pending.peek() {
            if offsets[k].min(src.len()) > i {
                break;
            }
            out[k] = (line, col);
            pending.next();
        }
        if c == '\n' {
            line += 1;
            col = 1;
        } else {
            col += 1;
        }
    }
    out
}

/// A numeric literal's value: refused when it is not a number, or when it overflows to
/// infinity or underflows to 0 (a 64-bit float cannot hold it: `1e999`, `1e-999`).
pub fn parse_number(text: &str) -> Result<f64, String> {
    let value: f64 = text
        .parse()
        .map_err(|_| format!("`{text}` is not a number"))?;
    if value.is_infinite() && !text.to_ascii_lowercase().contains("inf") {
        return Err(format!(
            "the number `{text}` is too large for a 64-bit float (the largest is about 1.8e308)"
        ));
    }
    let mantissa = text.split(['e', 'E']).next().unwrap_or("");
    if value == 0.0 && mantissa.chars().any(|c| matches!(c, '1'..='9')) {
        return Err(format!(
            "the number `{text}` is too small for a 64-bit float: it would be 0 \
             (the smallest is about 4.9e-324)"
        ));
    }
    Ok(value)
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Num(f64, String),
    Name(String),
    Plus,
    Minus,
    Star,
    Slash,
    Caret,
    LParen,
    RParen,
    Comma,
    Assign,
    Semi,
    Newline,
    Eof,
}

impl fmt::Display for Tok {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tok::Num(_, text) => write!(f, "the number `{text}`"),
            Tok::Name(name) => write!(f, "the name `{name}`"),
            Tok::Plus => f.write_str("`+`"),
            Tok::Minus => f.write_str("`-`"),
            Tok::Star => f.write_str("`*`"),
            Tok::Slash => f.write_str("`/`"),
            Tok::Caret => f.write_str("`^`"),
            Tok::LParen => f.write_str("`(`"),
            Tok::RParen => f.write_str("`)`"),
            Tok::Comma => f.write_str("`,`"),
            Tok::Assign => f.write_str("`=`"),
            Tok::Semi => f.write_str("`;`"),
            Tok::Newline => f.write_str("the end of the line"),
            Tok::Eof => f.write_str("the end of the input"),
        }
    }
}

fn lex(src: &str) -> Result<Vec<(Tok, Span)>, ParseError> {
    let mut toks = Vec::new();
    let chars: Vec<(usize, char)> = src.char_indices().collect();
    let end_of = |i: usize| chars.get(i).map_or(src.len(), |&(b, _)| b);
    let mut i = 0;
    while i < chars.len() {
        let (start, c) = chars[i];
        let single = |tok: Tok| {
            (
                tok,
                Span {
                    start,
                    end: start + c.len_utf8(),
                },
            )
        };
        match c {
            '\n' => {
                toks.push(single(Tok::Newline));
                i += 1;
            }
            c if c.is_whitespace() => i += 1,
            '#' => {
                while i < chars.len() && chars[i].1 != '\n' {
                    i += 1;
                }
            }
            '+' => {
                toks.push(single(Tok::Plus));
                i += 1;
            }
            '-' => {
                toks.push(single(Tok::Minus));
                i += 1;
            }
            '*' if chars.get(i + 1).map(|p| p.1) == Some('*') => {
                toks.push((
                    Tok::Caret,
                    Span {
                        start,
                        end: start + 2,
                    },
                ));
                i += 2;
            }
            '*' => {
                toks.push(single(Tok::Star));
                i += 1;
            }
            '/' => {
                toks.push(single(Tok::Slash));
                i += 1;
            }
            '^' => {
                toks.push(single(Tok::Caret));
                i += 1;
            }
            '(' => {
                toks.push(single(Tok::LParen));
                i += 1;
            }
            ')' => {
                toks.push(single(Tok::RParen));
                i += 1;
            }
            ',' => {
                toks.push(single(Tok::Comma));
                i += 1;
            }
            '=' => {
                toks.push(single(Tok::Assign));
                i += 1;
            }
            ';' => {
                toks.push(single(Tok::Semi));
                i += 1;
            }
            c if c.is_ascii_digit() || c == '.' => {
                let mut j = i;
                while j < chars.len() && (chars[j].1.is_ascii_digit() || chars[j].1 == '.') {
                    j += 1;
                }
                // An exponent: e or E, an optional sign, digits.
                if j < chars.len() && matches!(chars[j].1, 'e' | 'E') {
                    let mut k = j + 1;
                    if k < chars.len() && matches!(chars[k].1, '+' | '-') {
                        k += 1;
                    }
                    if k < chars.len() && chars[k].1.is_ascii_digit() {
                        while k < chars.len() && chars[k].1.is_ascii_digit() {
                            k += 1;
                        }
                        j = k;
                    }
                }
                let span = Span {
                    start,
                    end: end_of(j),
                };
                let text = &src[span.start..span.end];
                let value = parse_number(text).map_err(|message| ParseError { span, message })?;
                if let Some(message) = glued_to_number(text, chars.get(j).map(|p| p.1)) {
                    return Err(ParseError {
                        span: Span {
                            start,
                            end: end_of(j + 1),
                        },
                        message,
                    });
                }
                toks.push((Tok::Num(value, text.to_string()), span));
                i = j;
            }
            c if c.is_alphabetic() || c == '_' => {
                let mut j = i;
                while j < chars.len() && (chars[j].1.is_alphanumeric() || chars[j].1 == '_') {
                    j += 1;
                }
                let span = Span {
                    start,
                    end: end_of(j),
                };
                toks.push((Tok::Name(src[span.start..span.end].to_string()), span));
                i = j;
            }
            c => {
                let hint = match c {
                    '[' | ']' | '{' | '}' => " (group with `(` and `)`)",
                    _ => "",
                };
                return Err(ParseError {
                    span: single(Tok::Eof).1,
                    message: format!("unexpected character `{c}`{hint}"),
                });
            }
        }
    }
    toks.push((
        Tok::Eof,
        Span {
            start: src.len(),
            end: src.len(),
        },
    ));
    Ok(toks)
}

/// What is wrong when a number is directly followed by `next` without a space, if it is a
/// notation of another language (`0x10`, `0b1`, `0o7`, `1_000`) rather than a product like `5a`
/// (which the parser explains).
fn glued_to_number(text: &str, next: Option<char>) -> Option<String> {
    match next? {
        'x' | 'X' | 'b' | 'B' | 'o' | 'O' if text == "0" => Some(
            "hexadecimal, binary and octal numbers (0x.., 0b.., 0o..) are not supported: \
             write the number in decimal"
                .into(),
        ),
        '_' => Some("`_` between digits is not supported: write the number without it".into()),
        _ => None,
    }
}

/// Parses a whole program. An empty program (no statement) is an error.
pub fn parse(src: &str) -> Result<Program, ParseError> {
    let toks = lex(src)?;
    let mut p = Parser {
        src,
        toks,
        pos: 0,
        parens: Vec::new(),
        nesting: 0,
    };
    p.program()
}

struct Parser<'a> {
    src: &'a str,
    toks: Vec<(Tok, Span)>,
    pos: usize,
    /// Where each `(` still open was opened; inside parentheses newlines are ignored.
    parens: Vec<Span>,
    /// How deep the parser's own recursion is (bounded by [`MAX_NESTING`]).
    nesting: u32,
}

impl Parser<'_> {
    fn skip_newlines(&mut self) {
        while matches!(self.toks[self.pos].0, Tok::Newline) {
            self.pos += 1;
        }
    }

    /// The next token; newlines are skipped inside parentheses.
    fn peek(&mut self) -> &(Tok, Span) {
        if !self.parens.is_empty() {
            self.skip_newlines();
        }
        &self.toks[self.pos]
    }

    fn next(&mut self) -> (Tok, Span) {
        let t = self.peek().clone();
        if t.0 != Tok::Eof {
            self.pos += 1;
        }
        t
    }

    fn program(&mut self) -> Result<Program, ParseError> {
        let mut statements = Vec::new();
        loop {
            while matches!(self.peek().0, Tok::Semi | Tok::Newline) {
                self.next();
            }
            if self.peek().0 == Tok::Eof {
                break;
            }
            statements.push(self.statement()?);
            let (tok, span) = self.peek().clone();
            match tok {
                Tok::Semi | Tok::Newline | Tok::Eof => {}
                Tok::RParen => {
                    return Err(ParseError {
                        span,
                        message: "unmatched `)`: no `(` is open here".into(),
                    })
                }
                Tok::Assign => {
                    return Err(ParseError {
                        span,
                        message:
                            "unexpected `=`: only a name can be given a value (NAME = expression)"
                                .into(),
                    })
                }
                tok => return Err(self.expected_operator(tok, span)),
            }
        }
        if statements.is_empty() {
            return Err(ParseError {
                span: Span {
                    start: 0,
                    end: self.toks.last().map_or(0, |t| t.1.end),
                },
                message: "the expression is empty: there is nothing to evaluate".into(),
            });
        }
        Ok(Program { statements })
    }

    /// The error for a token that cannot follow a complete expression.
    fn expected_operator(&self, tok: Tok, span: Span) -> ParseError {
        let previous = self.pos.checked_sub(1).map(|i| &self.toks[i].0);
        let hint = match (previous, &tok) {
            (Some(Tok::Num(_, n)), Tok::Name(name)) => {
                format!(" (write {n}*{name} for a product)")
            }
            (Some(Tok::Num(_, _) | Tok::Name(_) | Tok::RParen), Tok::LParen) => {
                " (write `*` for a product; only a function name can be followed by `(`)".into()
            }
            _ => String::new(),
        };
        ParseError {
            span,
            message: format!("expected an operator, `;` or a new line, found {tok}{hint}"),
        }
    }

    fn statement(&mut self) -> Result<Statement, ParseError> {
        if let (Tok::Name(name), span) = self.toks[self.pos].clone() {
            if self.toks.get(self.pos + 1).map(|t| &t.0) == Some(&Tok::Assign) {
                self.pos += 2;
                self.skip_newlines();
                let expr = self.expr()?;
                return Ok(Statement {
                    name: Some((name, span)),
                    expr,
                });
            }
        }
        Ok(Statement {
            name: None,
            expr: self.expr()?,
        })
    }

    fn binary(op: BinOp, lhs: Expr, rhs: Expr) -> Result<Expr, ParseError> {
        let depth = 1 + lhs.depth.max(rhs.depth);
        let span = lhs.span.to(rhs.span);
        if depth > MAX_DEPTH {
            return Err(too_deep(span));
        }
        Ok(Expr {
            kind: ExprKind::Binary(op, Box::new(lhs), Box::new(rhs)),
            span,
            depth,
        })
    }

    /// `operand (op operand)*` as one flat [`ExprKind::Chain`] (or the operand alone), read in a
    /// loop: a chain of a million terms is one level deep.
    fn chain(
        &mut self,
        op_of: fn(&Tok) -> Option<BinOp>,
        operand: fn(&mut Self) -> Result<Expr, ParseError>,
    ) -> Result<Expr, ParseError> {
        let first = operand(self)?;
        let mut rest = Vec::new();
        let mut depth = first.depth;
        while let Some(op) = op_of(&self.peek().0) {
            self.next();
            self.skip_newlines();
            let rhs = operand(self)?;
            depth = depth.max(rhs.depth);
            rest.push((op, rhs));
        }
        let Some(last) = rest.last() else {
            return Ok(first);
        };
        let span = first.span.to(last.1.span);
        if depth + 1 > MAX_DEPTH {
            return Err(too_deep(span));
        }
        Ok(Expr {
            kind: ExprKind::Chain(Box::new(first), rest),
            span,
            depth: depth + 1,
        })
    }

    fn expr(&mut self) -> Result<Expr, ParseError> {
        self.chain(
            |t| match t {
                Tok::Plus => Some(BinOp::Add),
                Tok::Minus => Some(BinOp::Sub),
                _ => None,
            },
            Self::term,
        )
    }

    fn term(&mut self) -> Result<Expr, ParseError> {
        self.chain(
            |t| match t {
                Tok::Star => Some(BinOp::Mul),
                Tok::Slash => Some(BinOp::Div),
                _ => None,
            },
            Self::unary,
        )
    }

    fn unary(&mut self) -> Result<Expr, ParseError> {
        self.nesting += 1;
        if self.nesting > MAX_NESTING {
            let span = self.peek().1;
            return Err(ParseError {
                span,
                message: format!(
                    "parentheses, signs and powers are nested more than {MAX_NESTING} levels deep"
                ),
            });
        }
        let result = self.unary_inner();
        self.nesting -= 1;
        result
    }

    fn unary_inner(&mut self) -> Result<Expr, ParseError> {
        match self.peek().clone() {
            (Tok::Minus, span) => {
                self.next();
                let inner = self.unary()?;
                let depth = inner.depth + 1;
                if depth > MAX_DEPTH {
                    return Err(too_deep(span));
                }
                Ok(Expr {
                    span: span.to(inner.span),
                    kind: ExprKind::Neg(Box::new(inner)),
                    depth,
                })
            }
            (Tok::Plus, _) => {
                self.next();
                self.unary()
            }
            _ => self.power(),
        }
    }

    fn power(&mut self) -> Result<Expr, ParseError> {
        let base = self.atom()?;
        if self.peek().0 == Tok::Caret {
            self.next();
            self.skip_newlines();
            let exponent = self.unary()?;
            return Self::binary(BinOp::Pow, base, exponent);
        }
        Ok(base)
    }

    fn atom(&mut self) -> Result<Expr, ParseError> {
        let (tok, span) = self.next();
        match tok {
            Tok::Num(value, text) => Ok(Expr {
                kind: ExprKind::Num(value, text),
                span,
                depth: 1,
            }),
            Tok::Name(name) => {
                if self.toks[self.pos].0 == Tok::LParen {
                    self.call(name, span)
                } else {
                    Ok(Expr {
                        kind: ExprKind::Var(name),
                        span,
                        depth: 1,
                    })
                }
            }
            Tok::LParen => {
                self.parens.push(span);
                let inner = self.expr()?;
                self.close_paren(span)?;
                Ok(inner)
            }
            Tok::RParen => Err(ParseError {
                span,
                message: if self.parens.is_empty() {
                    "unmatched `)`: no `(` is open here".into()
                } else {
                    "expected an expression before `)`".into()
                },
            }),
            tok => Err(ParseError {
                span,
                message: format!("expected a number, a name or `(`, found {tok}"),
            }),
        }
    }

    /// Expects the `)` closing the `(` at `open`.
    fn close_paren(&mut self, open: Span) -> Result<Span, ParseError> {
        let (tok, span) = self.peek().clone();
        self.parens.pop();
        if tok == Tok::RParen {
            self.next();
            return Ok(span);
        }
        Err(ParseError {
            span,
            message: format!(
                "unclosed `(`: expected `)` to close the `(` at {}, found {tok}",
                self.position(open)
            ),
        })
    }

    /// `line:column` of a span.
    fn position(&self, span: Span) -> String {
        let (line, col) = line_col(self.src, span.start);
        format!("{line}:{col}")
    }

    fn call(&mut self, name: String, name_span: Span) -> Result<Expr, ParseError> {
        let (_, open) = self.next(); // the `(`
        self.parens.push(open);
        let mut args = Vec::new();
        if self.peek().0 == Tok::RParen {
            self.parens.pop();
            self.next();
            return Err(ParseError {
                span: name_span,
                message: format!("`{name}()` needs an argument"),
            });
        }
        loop {
            args.push(self.expr()?);
            if self.peek().0 == Tok::Comma {
                self.next();
                continue;
            }
            break;
        }
        let close = self.close_paren(open)?;
        let span = name_span.to(close);
        let func = lookup(&name, args.len(), name_span)?;
        let depth = 1 + args.iter().map(|a| a.depth).max().unwrap_or(0);
        if depth > MAX_DEPTH {
            return Err(too_deep(span));
        }
        Ok(Expr {
            kind: ExprKind::Call(func, name, args),
            span,
            depth,
        })
    }
}

fn too_deep(span: Span) -> ParseError {
    ParseError {
        span,
        message: format!(
            "the expression is nested more than {MAX_DEPTH} levels deep (parentheses, \
             functions, signs and powers inside one another); split it into steps with names \
             (a = ...; b = ...)"
        ),
    }
}

/// The function called `name` with `args` arguments.
fn lookup(name: &str, args: usize, span: Span) -> Result<Func, ParseError> {
    let arities: Vec<usize> = FUNCTIONS
        .iter()
        .filter(|(n, _, _)| *n == name)
        .map(|&(_, a, _)| a)
        .collect();
    if let Some(&(_, _, f)) = FUNCTIONS.iter().find(|(n, a, _)| *n == name && *a == args) {
        return Ok(f);
    }
    let plural = |n: usize| if n == 1 { "argument" } else { "arguments" };
    if arities.is_empty() {
        let hint = closest(name).map_or_else(
            || format!(" (for a product write `{name}*(...)`)"),
            |c| format!(" (did you mean `{c}`?)"),
        );
        return Err(ParseError {
            span,
            message: format!(
                "unknown function `{name}`{hint}; the functions are {}",
                function_names().join(", ")
            ),
        });
    }
    let wanted: Vec<String> = arities.iter().map(|a| a.to_string()).collect();
    Err(ParseError {
        span,
        message: format!(
            "`{name}` takes {} {}, not {args}",
            wanted.join(" or "),
            plural(*arities.last().unwrap_or(&1))
        ),
    })
}

/// The known function name nearest to `name`, if it is close (edit distance at most 2, and
/// less than the length of `name`).
fn closest(name: &str) -> Option<&'static str> {
    function_names()
        .into_iter()
        .map(|f| (edit_distance(name, f), f))
        .filter(|&(d, _)| d <= 2 && d < name.chars().count())
        .min_by_key(|&(d, _)| d)
        .map(|(_, f)| f)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let here = row[j + 1];
            row[j + 1] = (here + 1)
                .min(row[j] + 1)
                .min(previous + usize::from(ca != cb));
            previous = here;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(src: &str) -> (String, (usize, usize)) {
        let e = parse(src).expect_err(src);
        (e.message, line_col(src, e.span.start))
    }

    fn shape(e: &Expr) -> String {
        match &e.kind {
            ExprKind::Num(_, t) => t.clone(),
            ExprKind::Var(v) => v.clone(),
            ExprKind::Neg(x) => format!("(-{})", shape(x)),
            ExprKind::Binary(op, a, b) => {
                format!("({}{}{})", shape(a), op.symbol().trim(), shape(b))
            }
            ExprKind::Chain(first, rest) => rest.iter().fold(shape(first), |acc, (op, b)| {
                format!("({acc}{}{})", op.symbol().trim(), shape(b))
            }),
            ExprKind::Call(_, name, args) => {
                let args: Vec<String> = args.iter().map(shape).collect();
                format!("{name}({})", args.join(","))
            }
        }
    }

    fn shapes(src: &str) -> Vec<String> {
        parse(src)
            .unwrap()
            .statements
            .iter()
            .map(|s| match &s.name {
                Some((n, _)) => format!("{n}={}", shape(&s.expr)),
                None => shape(&s.expr),
            })
            .collect()
    }

    #[test]
    fn precedence_and_associativity() {
        assert_eq!(shapes("-x^2"), ["(-(x^2))"]);
        assert_eq!(shapes("2^3^2"), ["(2^(3^2))"]);
        assert_eq!(shapes("a - b - c"), ["((a-b)-c)"]);
        assert_eq!(shapes("a / b * c"), ["((a/b)*c)"]);
        assert_eq!(shapes("-b*c"), ["((-b)*c)"]);
        assert_eq!(shapes("x ** -2"), ["(x^(-2))"]);
        assert_eq!(shapes("1 + 2 * 3"), ["(1+(2*3))"]);
        assert_eq!(shapes("+x"), ["x"]);
        assert_eq!(shapes("log(x, 2) + atan2(y, x)"), ["(log(x,2)+atan2(y,x))"]);
    }

    #[test]
    fn statements_are_separated_by_semicolons_or_newlines() {
        assert_eq!(
            shapes("a = x^2; b = 5*a\nc = log(a)\n\n-b*c;"),
            ["a=(x^2)", "b=(5*a)", "c=log(a)", "((-b)*c)"]
        );
        // Inside parentheses and after an operator a newline continues the statement.
        assert_eq!(shapes("f = (x\n + 1) *\n 2 # a comment\n"), ["f=((x+1)*2)"]);
    }

    #[test]
    fn numbers() {
        assert_eq!(
            shapes("1.5e-3 + .5 + 2E+2 + 7."),
            ["(((1.5e-3+.5)+2E+2)+7.)"]
        );
        assert_eq!(err("1.2.3").0, "`1.2.3` is not a number");
        assert!(err("1e999").0.contains("too large"));
    }

    #[test]
    fn errors_say_what_and_where() {
        let (m, at) = err("(x + 1");
        assert!(m.contains("unclosed `(`") && m.contains("at 1:1"), "{m}");
        assert_eq!(at, (1, 7));
        let (m, at) = err("a = 1\nb = (x + 1))");
        assert!(m.contains("unmatched `)`"), "{m}");
        assert_eq!(at, (2, 12));
        let (m, at) = err("y = 2 * lgo(x)");
        assert!(
            m.contains("unknown function `lgo` (did you mean `log`?)"),
            "{m}"
        );
        assert_eq!(at, (1, 9));
        let (m, _) = err("sin(x, y)");
        assert_eq!(m, "`sin` takes 1 argument, not 2");
        let (m, _) = err("log(x, y, z)");
        assert_eq!(m, "`log` takes 1 or 2 arguments, not 3");
        let (m, at) = err("5a");
        assert!(m.contains("write 5*a"), "{m}");
        assert_eq!(at, (1, 2));
        assert!(err("2 (y)").0.contains("write `*`"));
        assert!(err("x (y)")
            .0
            .contains("unknown function `x` (for a product write `x*(...)`)"));
        assert!(err("x + ").0.contains("found the end of the input"));
        assert!(err("x = ").0.contains("expected a number"));
        assert!(err("x[1]").0.contains("unexpected character `[`"));
        assert!(err("a + b = 3").0.contains("unexpected `=`"));
        assert!(err("exp()").0.contains("needs an argument"));
        assert!(err("()").0.contains("expected an expression before `)`"));
        assert!(err("").0.contains("empty"));
        assert!(err(" ;\n ; ").0.contains("empty"));
        assert_eq!(err("é + ü ?").1, (1, 7), "columns count characters");
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let deep = "(".repeat(100_000);
        assert!(err(&deep).0.contains("nested more than 200"));
        let negs = "-".repeat(10_000) + "x";
        assert!(err(&negs).0.contains("nested more than"));
        let pows = vec!["x"; 10_000].join("^");
        assert!(err(&pows).0.contains("nested more than"));
        let ok = vec!["x"; 400].join("+");
        assert!(parse(&ok).is_ok());
    }

    /// U4: a flat chain of `+` or `*` is not nesting (a 501-term sum was "nested more than 500
    /// levels deep"); real nesting still is.
    #[test]
    fn a_long_flat_chain_is_not_nesting() {
        for op in ["+", "-", "*", "/"] {
            let long = vec!["x"; 100_000].join(op);
            let program = parse(&long).unwrap();
            assert_eq!(program.statements[0].expr.depth, 2, "{op}");
        }
        let mixed = vec!["x*y"; 10_000].join(" - ");
        assert_eq!(parse(&mixed).unwrap().statements[0].expr.depth, 3);
        assert_eq!(shapes("a - b + c * d / e"), ["((a-b)+((c*d)/e))"]);
        let nested = "sin(".repeat(150) + "x" + &")".repeat(150);
        assert!(parse(&nested).is_ok());
        let too_deep = "sin(1 + 2*".repeat(190) + "x" + &")".repeat(190);
        assert!(
            err(&too_deep).0.contains("nested more than"),
            "{}",
            err(&too_deep).0
        );
    }

    #[test]
    fn positions_of_many_offsets_in_one_pass() {
        let src = "ab\ncé\nd";
        let offsets = [7, 0, 4, 99, 3, 6];
        let expected: Vec<(usize, usize)> = offsets.iter().map(|&o| line_col(src, o)).collect();
        assert_eq!(line_cols(src, &offsets), expected);
        assert_eq!(expected, [(3, 1), (1, 1), (2, 2), (3, 2), (2, 1), (2, 3)]);
    }

    /// Cosmetic: `1e-999` became 0 silently while `1e999` was an error.
    #[test]
    fn literals_that_do_not_fit_a_float_are_errors() {
        assert!(err("1e-999").0.contains("too small"), "{}", err("1e-999").0);
        assert!(err("x + 0.001e-999999").0.contains("too small"));
        assert!(parse("0e-999 + 0.0 + 5e-324").is_ok());
        assert_eq!(parse_number("4.9e-324"), Ok(5e-324));
    }

    /// U12: `x*0x10` was "found the name `x10` (write 0*x10 for a product)".
    #[test]
    fn numbers_of_other_languages_get_their_own_hint() {
        for src in ["x*0x10", "0b101", "2 + 0o7", "0X1F"] {
            let (m, _) = err(src);
            assert!(m.contains("hexadecimal, binary and octal"), "{src}: {m}");
        }
        let (m, at) = err("1_000 * x");
        assert!(m.contains("`_` between digits"), "{m}");
        assert_eq!(at, (1, 1));
        assert!(err("5a").0.contains("write 5*a"));
        assert!(err("0y").0.contains("write 0*y"));
    }

    #[test]
    fn line_col_counts_lines_and_characters() {
        assert_eq!(line_col("ab\ncd", 0), (1, 1));
        assert_eq!(line_col("ab\ncd", 4), (2, 2));
        assert_eq!(line_col("ab", 99), (1, 3));
    }
}
