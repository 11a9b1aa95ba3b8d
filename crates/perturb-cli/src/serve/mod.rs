//! `perturb serve`: a local web page where a learner types an expression of the `explain`
//! language, sees its graph and steps through forward and reverse mode, and a second view with
//! the Jacobian chain rule on the lecture's vector examples.
//!
//! The server is small and blocking ([`http`]: one thread per connection, which is plenty for
//! a learner or a class): it serves the page's three files, embedded in the program, and a JSON
//! API whose numbers are exactly those of `perturb explain --json` (the same code makes them).
//! No part of a request reaches the filesystem: the routes are a fixed list.

mod http;
mod jacobian;
pub mod page;

use std::io::Write as _;

use serde::Deserialize;

use http::Request;

/// The page draws graphs of at most this many nodes (`perturb explain` in a terminal has no
/// such limit); larger ones get an error naming the limit.
pub const MAX_PAGE_NODES: usize = 500;

/// Serve the interactive page: the graph, the sweeps step by step, the Jacobian chain rule.
#[derive(clap::Args, Debug, Clone)]
#[command(
    after_help = "Example:\n  perturb serve --port 8000   # then open http://127.0.0.1:8000/"
)]
pub struct Args {
    /// The port to listen on (0: any free port, printed when the server starts).
    #[arg(long, default_value_t = 8000)]
    pub port: u16,
    /// The address or host name to listen on (`0.0.0.0`: every interface). The default lets
    /// only this computer reach the page. Whatever the address, only requests naming as their
    /// host an IP address, `localhost` or this name are answered (against DNS rebinding).
    #[arg(long, default_value = "127.0.0.1", value_name = "ADDRESS")]
    pub bind: String,
}

/// Runs the server until the process is stopped; the error is the message to print.
pub fn run(args: &Args) -> Result<(), String> {
    // A name is resolved, and each of its addresses tried in turn.
    let listener = std::net::TcpListener::bind((args.bind.as_str(), args.port))
        .map_err(|e| format!("serve: cannot listen on {}:{}: {e}", args.bind, args.port))?;
    let address = listener.local_addr().map_or_else(
        |_| format!("{}:{}", args.bind, args.port),
        |a| a.to_string(),
    );
    // The tests (and scripts) read this line to learn the port when it was 0.
    println!("perturb serve: the page is at http://{address}/ (Ctrl-C stops the server)");
    std::io::stdout()
        .flush()
        .map_err(|e| format!("serve: cannot write to standard output: {e}"))?;
    let bind = args.bind.clone();
    http::serve(&listener, move |request| {
        if allowed_host(request, &bind) {
            answer(request)
        } else {
            Reply::error(
                403,
                &format!(
                    "this server answers only requests whose host (the Host header) is an IP \
                     address, localhost or {bind:?}"
                ),
            )
        }
    });
    Ok(())
}

/// What to send back.
#[derive(Debug)]
struct Reply {
    status: u16,
    content_type: &'static str,
    body: Vec<u8>,
}

impl Reply {
    fn ok(content_type: &'static str, body: impl Into<Vec<u8>>) -> Reply {
        Reply {
            status: 200,
            content_type,
            body: body.into(),
        }
    }

    fn json(status: u16, body: String) -> Reply {
        Reply {
            status,
            content_type: "application/json",
            body: body.into_bytes(),
        }
    }

    /// An error in the shape of `perturb explain --json`'s: `{"error": {"message": ...}}`.
    fn error(status: u16, message: &str) -> Reply {
        let body = serde_json::json!({ "error": { "message": message, "line": null,
            "column": null, "notes": [] } });
        Reply::json(status, body.to_string())
    }
}

/// Everything the server answers: each path with the method it takes (GET ones answer HEAD
/// too). Nothing else is served.
const ROUTES: &[(&str, &str)] = &[
    ("/", "GET"),
    ("/index.html", "GET"),
    ("/app.js", "GET"),
    ("/style.css", "GET"),
    ("/api/examples", "GET"),
    ("/api/explain", "POST"),
    ("/api/jacobian", "POST"),
];

/// Whether the request names as its host (or names none, as HTTP/1.0 may) an IP address,
/// `localhost`, or the name the server was bound to (`bind`). A web page elsewhere whose name is
/// made to point at this computer (DNS rebinding) sends its own name, and is refused; this holds
/// on every address, 0.0.0.0 included, since this computer reaches that one on 127.0.0.1 too.
/// An address is safe to accept: a page whose origin is an address cannot be rebound.
fn allowed_host(request: &Request, bind: &str) -> bool {
    let Some(host) = request.host() else {
        return true;
    };
    let name = match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    };
    let name = name.trim_start_matches('[').trim_end_matches(']');
    name.eq_ignore_ascii_case("localhost")
        || name.eq_ignore_ascii_case(bind)
        || name.parse::<std::net::IpAddr>().is_ok()
}

fn answer(request: &Request) -> Reply {
    // The query string plays no part in choosing what to answer.
    let path = request.path();
    let post = request.method == "POST" && ROUTES.contains(&(path, "POST"));
    // Only JSON: a page elsewhere cannot send that to this server without the browser asking
    // first (a CORS preflight, which this server does not grant).
    let json = request.header("Content-Type").is_some_and(|t| {
        t.trim()
            .to_ascii_lowercase()
            .starts_with("application/json")
    });
    if post && !json {
        return Reply::error(
            415,
            "send the request body as JSON, with the header Content-Type: application/json",
        );
    }
    route(&request.method, path, post.then_some(&request.body[..]))
}

/// The answer to `method` on `path` with the body `body` (read for POST routes only).
fn route(method: &str, path: &str, body: Option<&[u8]>) -> Reply {
    let Some((_, wanted)) = ROUTES.iter().find(|(p, _)| *p == path) else {
        // Quoted with escapes, and cut short: the path is the client's text.
        let shown: String = path.chars().take(100).collect();
        return Reply::error(404, &format!("no such page: {shown:?}; the page is at /"));
    };
    if method != *wanted && !(*wanted == "GET" && method == "HEAD") {
        // Cut short: the method is the client's text (a token: letters, digits, !#$%&'*+-.^_`|~).
        let shown: String = method.chars().take(20).collect();
        return Reply::error(
            405,
            &format!("{path} answers {wanted} requests, not {shown}"),
        );
    }
    match (path, body) {
        ("/" | "/index.html", _) => Reply::ok("text/html; charset=utf-8", page::INDEX),
        ("/app.js", _) => Reply::ok("text/javascript; charset=utf-8", page::SCRIPT),
        ("/style.css", _) => Reply::ok("text/css; charset=utf-8", page::STYLE),
        ("/api/examples", _) => Reply::json(200, page::examples_json()),
        ("/api/explain", Some(body)) => explain(body),
        ("/api/jacobian", Some(body)) => jacobian_request(body),
        _ => Reply::error(400, "the request has no body"),
    }
}

/// The body of `POST /api/explain`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExplainRequest {
    /// The program, in the language of `perturb explain`.
    expression: String,
    /// The point, as `perturb explain --at` takes it: `x=0.7, w=3`.
    #[serde(default)]
    at: String,
}

/// A body as JSON of type `T`, or the reply that says what is wrong with it.
fn parse_body<'a, T: Deserialize<'a>>(body: &'a [u8], shape: &str) -> Result<T, Reply> {
    serde_json::from_slice(body).map_err(|e| {
        Reply::error(
            400,
            &format!("the request body is not the JSON the server expects ({shape}): {e}"),
        )
    })
}

fn explain(body: &[u8]) -> Reply {
    let request: ExplainRequest = match parse_body(body, r#"{"expression": "x^2", "at": "x=0.7"}"#)
    {
        Ok(r) => r,
        Err(reply) => return reply,
    };
    let at: Vec<String> = request.at.split(',').map(str::to_string).collect();
    match super::explain::json_report(&request.expression, &at, MAX_PAGE_NODES) {
        Ok(report) => Reply::json(200, report),
        // 422: the request was understood; the expression or the point is wrong.
        Err(error) => Reply::json(422, error),
    }
}

/// The body of `POST /api/jacobian`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JacobianRequest {
    /// Which of the lecture's vector examples.
    example: String,
    /// The input vector (default: the example's own).
    input: Option<Vec<f64>>,
}

fn jacobian_request(body: &[u8]) -> Reply {
    let request: JacobianRequest =
        match parse_body(body, r#"{"example": "mse", "input": [0.5, -0.25]}"#) {
            Ok(r) => r,
            Err(reply) => return reply,
        };
    match jacobian::explain(&request.example, request.input.as_deref()) {
        Ok(chain) => Reply::json(200, chain),
        Err(message) => Reply::error(422, &message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(reply: &Reply) -> String {
        String::from_utf8(reply.body.clone()).unwrap()
    }

    #[test]
    fn the_page_and_its_files_are_served() {
        let r = route("GET", "/", None);
        assert_eq!(
            (r.status, r.content_type),
            (200, "text/html; charset=utf-8")
        );
        assert!(text(&r).contains("app.js"));
        assert_eq!(route("GET", "/app.js", None).status, 200);
        assert_eq!(route("HEAD", "/style.css", None).status, 200);
    }

    #[test]
    fn unknown_routes_and_paths_to_files_are_refused() {
        for path in [
            "/etc/passwd",
            "/../Cargo.toml",
            "/assets/app.js",
            "/api",
            "/app.js/",
        ] {
            let r = route("GET", path, None);
            assert_eq!(r.status, 404, "{path}");
            let error: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
            assert!(error["error"]["message"]
                .as_str()
                .unwrap()
                .contains("no such page"));
        }
    }

    #[test]
    fn wrong_methods_are_refused_with_the_right_one_named() {
        let r = route("GET", "/api/explain", None);
        assert_eq!(r.status, 405);
        assert!(text(&r).contains("answers POST requests, not GET"));
        assert_eq!(route("DELETE", "/", None).status, 405);
    }

    #[test]
    fn bad_json_is_a_400_naming_the_expected_shape() {
        for body in [
            &b"{"[..],
            b"[]",
            b"{\"expression\": 3}",
            b"{\"expr\": \"x\"}",
        ] {
            let r = route("POST", "/api/explain", Some(body));
            assert_eq!(r.status, 400);
            assert!(
                text(&r).contains("not the JSON the server expects"),
                "{}",
                text(&r)
            );
        }
    }

    #[test]
    fn a_parse_error_is_a_422_with_its_place() {
        let r = route(
            "POST",
            "/api/explain",
            Some(br#"{"expression": "x + * 2", "at": "x=1"}"#),
        );
        assert_eq!(r.status, 422);
        let error: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(error["error"]["line"], 1);
        assert_eq!(error["error"]["column"], 5);
    }

    #[test]
    fn graphs_beyond_the_page_limit_are_refused() {
        let big: Vec<String> = (0..=MAX_PAGE_NODES).map(|i| format!("x*{i}")).collect();
        let body = serde_json::json!({ "expression": big.join(" + "), "at": "x=1" });
        let r = route("POST", "/api/explain", Some(body.to_string().as_bytes()));
        assert_eq!(r.status, 422);
        assert!(
            text(&r).contains("more than the page shows (500)"),
            "{}",
            text(&r)
        );
    }
}
