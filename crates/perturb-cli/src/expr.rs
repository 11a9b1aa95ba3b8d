//! The expression language of `perturb explain`: numbers, variables, `+ - * / ^`, unary minus,
//! parentheses, function calls, and bindings (`a = x^2; b = 5*a; -b*log(a)`), parsed with
//! positions so that errors point at a line and column.

use std::fmt;

/// A place in the source: 1-based line and column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pos {
    pub line: usize,
    pub col: usize,
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.col)
    }
}

/// A parse error and where it happened.
#[derive(Clone, Debug, PartialEq)]
pub struct ParseError {
    pub pos: Pos,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {}, column {}: {}",
            self.pos.line, self.pos.col, self.message
        )
    }
}

/// An expression.
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    Number(f64),
    Name(String, Pos),
    Neg(Box<Expr>),
    Binary(char, Box<Expr>, Box<Expr>),
    Call(String, Vec<Expr>, Pos),
}

/// One statement: `name = expr` or a bare expression.
#[derive(Clone, Debug, PartialEq)]
pub struct Statement {
    pub name: Option<(String, Pos)>,
    pub expr: Expr,
}

#[derive(Clone, Debug, PartialEq)]
enum Token {
    Number(f64),
    Ident(String),
    Op(char),
    End,
}

struct Lexer {
    tokens: Vec<(Token, Pos)>,
}

fn lex(src: &str) -> Result<Lexer, ParseError> {
    let mut tokens = Vec::new();
    let chars: Vec<char> = src.chars().collect();
    let (mut i, mut line, mut col) = (0, 1, 1);
    while i < chars.len() {
        let c = chars[i];
        let pos = Pos { line, col };
        if c == '\n' {
            tokens.push((Token::Op(';'), pos));
            i += 1;
            line += 1;
            col = 1;
            continue;
        }
        if c.is_whitespace() {
            i += 1;
            col += 1;
            continue;
        }
        let start = i;
        if c.is_ascii_digit() || (c == '.' && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit()))
        {
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                i += 1;
            }
            if i < chars.len() && (chars[i] == 'e' || chars[i] == 'E') {
                let mut j = i + 1;
                if j < chars.len() && (chars[j] == '+' || chars[j] == '-') {
                    j += 1;
                }
                if j < chars.len() && chars[j].is_ascii_digit() {
                    i = j;
                    while i < chars.len() && chars[i].is_ascii_digit() {
                        i += 1;
                    }
                }
            }
            let text: String = chars[start..i].iter().collect();
            let value = text.parse::<f64>().map_err(|_| ParseError {
                pos,
                message: format!("malformed number '{text}'"),
            })?;
            tokens.push((Token::Number(value), pos));
        } else if c.is_alphabetic() || c == '_' {
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            tokens.push((Token::Ident(chars[start..i].iter().collect()), pos));
        } else if "+-*/^(),;=".contains(c) {
            tokens.push((Token::Op(c), pos));
            i += 1;
        } else {
            return Err(ParseError {
                pos,
                message: format!("unexpected character '{c}'"),
            });
        }
        col += i - start;
    }
    tokens.push((Token::End, Pos { line, col }));
    Ok(Lexer { tokens })
}

struct Parser {
    tokens: Vec<(Token, Pos)>,
    at: usize,
    depth: usize,
}

/// Expressions deeper than this (nesting, or a chain like `x+x+...+x`, which makes a deep
/// tree) are refused, so that no input can overflow the stack of the parser or the evaluator.
const MAX_DEPTH: usize = 500;

impl Parser {
    fn peek(&self) -> &Token {
        &self.tokens[self.at].0
    }

    fn pos(&self) -> Pos {
        self.tokens[self.at].1
    }

    fn next(&mut self) -> (Token, Pos) {
        let t = self.tokens[self.at].clone();
        if self.at + 1 < self.tokens.len() {
            self.at += 1;
        }
        t
    }

    fn error<T>(&self, message: String) -> Result<T, ParseError> {
        Err(ParseError {
            pos: self.pos(),
            message,
        })
    }

    fn describe(token: &Token) -> String {
        match token {
            Token::Number(x) => format!("the number {x}"),
            Token::Ident(name) => format!("'{name}'"),
            Token::Op(';') => "the end of a statement".into(),
            Token::Op(c) => format!("'{c}'"),
            Token::End => "the end of the input".into(),
        }
    }

    fn expect_op(&mut self, c: char, context: &str) -> Result<(), ParseError> {
        if *self.peek() == Token::Op(c) {
            self.next();
            Ok(())
        } else {
            self.error(format!(
                "expected '{c}' {context}, found {}",
                Self::describe(self.peek())
            ))
        }
    }

    fn statement(&mut self) -> Result<Statement, ParseError> {
        if let (Token::Ident(name), Token::Op('=')) = (
            self.peek().clone(),
            &self.tokens[(self.at + 1).min(self.tokens.len() - 1)].0,
        ) {
            let pos = self.pos();
            self.next();
            self.next();
            let expr = self.expr()?;
            return Ok(Statement {
                name: Some((name, pos)),
                expr,
            });
        }
        Ok(Statement {
            name: None,
            expr: self.expr()?,
        })
    }

    /// One level deeper; an error past [`MAX_DEPTH`].
    fn descend(&mut self) -> Result<(), ParseError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return self.error(format!(
                "the expression is deeper than {MAX_DEPTH} levels; split it with bindings (name = ...)"
            ));
        }
        Ok(())
    }

    fn expr(&mut self) -> Result<Expr, ParseError> {
        let entry = self.depth;
        self.descend()?;
        let mut left = self.term()?;
        while let Token::Op(op @ ('+' | '-')) = *self.peek() {
            self.next();
            self.descend()?; // each link of a chain deepens the tree
            let right = self.term()?;
            left = Expr::Binary(op, Box::new(left), Box::new(right));
        }
        self.depth = entry;
        Ok(left)
    }

    fn term(&mut self) -> Result<Expr, ParseError> {
        let entry = self.depth;
        let mut left = self.unary()?;
        while let Token::Op(op @ ('*' | '/')) = *self.peek() {
            self.next();
            self.descend()?;
            let right = self.unary()?;
            left = Expr::Binary(op, Box::new(left), Box::new(right));
        }
        self.depth = entry;
        Ok(left)
    }

    fn unary(&mut self) -> Result<Expr, ParseError> {
        if *self.peek() == Token::Op('-') {
            self.next();
            self.descend()?;
            let inner = self.unary()?;
            self.depth -= 1;
            return Ok(Expr::Neg(Box::new(inner)));
        }
        self.power()
    }

    fn power(&mut self) -> Result<Expr, ParseError> {
        let base = self.atom()?;
        if *self.peek() == Token::Op('^') {
            self.next();
            self.descend()?;
            let exponent = self.unary()?; // right-associative: a^b^c = a^(b^c)
            self.depth -= 1;
            return Ok(Expr::Binary('^', Box::new(base), Box::new(exponent)));
        }
        Ok(base)
    }

    fn atom(&mut self) -> Result<Expr, ParseError> {
        let (token, pos) = self.next();
        match token {
            Token::Number(x) => Ok(Expr::Number(x)),
            Token::Ident(name) => {
                if *self.peek() != Token::Op('(') {
                    return Ok(Expr::Name(name, pos));
                }
                self.next();
                let mut args = vec![self.expr()?];
                while *self.peek() == Token::Op(',') {
                    self.next();
                    args.push(self.expr()?);
                }
                self.expect_op(')', &format!("to close the call of {name} opened at {pos}"))?;
                Ok(Expr::Call(name, args, pos))
            }
            Token::Op('(') => {
                let inner = self.expr()?;
                self.expect_op(')', &format!("to close the '(' at {pos}"))?;
                Ok(inner)
            }
            other => Err(ParseError {
                pos,
                message: format!(
                    "expected a number, a name or '(', found {}",
                    Self::describe(&other)
                ),
            }),
        }
    }
}

/// Parses a program: statements separated by `;` or new lines; the last one is the output.
pub fn parse(src: &str) -> Result<Vec<Statement>, ParseError> {
    let lexer = lex(src)?;
    let mut parser = Parser {
        tokens: lexer.tokens,
        at: 0,
        depth: 0,
    };
    let mut statements = Vec::new();
    loop {
        while *parser.peek() == Token::Op(';') {
            parser.next();
        }
        if *parser.peek() == Token::End {
            break;
        }
        statements.push(parser.statement()?);
        match parser.peek() {
            Token::Op(';') | Token::End => {}
            other => {
                let message = format!(
                    "expected ';' or a new line after a statement, found {}",
                    Parser::describe(other)
                );
                return parser.error(message);
            }
        }
    }
    if statements.is_empty() {
        return Err(ParseError {
            pos: Pos { line: 1, col: 1 },
            message: "the expression is empty".into(),
        });
    }
    Ok(statements)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precedence_and_associativity() {
        let s = parse("-x^2 + 3*y/2").unwrap();
        let expected = Expr::Binary(
            '+',
            Box::new(Expr::Neg(Box::new(Expr::Binary(
                '^',
                Box::new(Expr::Name("x".into(), Pos { line: 1, col: 2 })),
                Box::new(Expr::Number(2.0)),
            )))),
            Box::new(Expr::Binary(
                '/',
                Box::new(Expr::Binary(
                    '*',
                    Box::new(Expr::Number(3.0)),
                    Box::new(Expr::Name("y".into(), Pos { line: 1, col: 10 })),
                )),
                Box::new(Expr::Number(2.0)),
            )),
        );
        assert_eq!(s[0].expr, expected);
    }

    #[test]
    fn bindings_and_errors_with_positions() {
        // Deep inputs recurse: run where the CLI runs them, on a large stack.
        std::thread::Builder::new()
            .stack_size(64 << 20)
            .spawn(bindings_and_errors)
            .unwrap()
            .join()
            .unwrap();
    }

    fn bindings_and_errors() {
        let s = parse("a = x^2\nb = 5*a; -b*log(a)").unwrap();
        assert_eq!(s.len(), 3);
        assert_eq!(s[1].name.as_ref().map(|n| n.0.as_str()), Some("b"));
        let e = parse("a = (x + 1\nb = 2").unwrap_err();
        assert_eq!(e.pos, Pos { line: 1, col: 11 });
        assert!(
            e.message.contains("to close the '(' at 1:5"),
            "{}",
            e.message
        );
        assert_eq!(parse("x $ 2").unwrap_err().pos, Pos { line: 1, col: 3 });
        assert!(parse(";;").unwrap_err().message.contains("empty"));
        assert!(parse(&"(".repeat(1000)).is_err());
        assert!(parse(&"-".repeat(1000)).is_err());
        assert!(parse(&format!("{}x", "x+".repeat(1000))).is_err());
        assert!(parse(&format!("{}x", "x+".repeat(300))).is_ok());
    }
}
