//! `perturb serve` over HTTP: the API answers exactly what `perturb explain --json` prints,
//! bad requests get clear errors, and the server answers the next request after each of them.
//! (The page itself is tested in a browser in `browser.rs`.)

mod serve_support;
mod support;

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::{json, Value};
use serve_support::{get, post, Server};

fn message(body: &str) -> String {
    let v: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("JSON ({e}): {body}"));
    v["error"]["message"]
        .as_str()
        .expect("a message")
        .to_string()
}

/// The server still answers: a good request after a bad one.
fn still_up(server: &Server) {
    let (status, body) = post(
        server,
        "/api/explain",
        &json!({ "expression": "x^2", "at": "x=3" }).to_string(),
    );
    assert_eq!(status, 200, "{body}");
    let report: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(report["derivatives"][0]["value"], 6.0);
}

#[test]
fn the_api_answers_what_explain_json_prints() {
    let server = Server::start();
    for (expr, at) in [
        (
            "a = x*x; b = w*a; c = log(a); g = b*c; L = -g",
            "x=0.7, w=5",
        ),
        ("y = 2*x; z = exp(x); y*z^2", "x=0.7"),
        ("3 + 4", ""),
        ("max(x, w) / min(x, w)", "x=1, w=2"),
    ] {
        let (status, body) = post(
            &server,
            "/api/explain",
            &json!({ "expression": expr, "at": at }).to_string(),
        );
        assert_eq!(status, 200, "{expr}: {body}");
        let page: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(page, serve_support::cli_json(expr, at), "{expr}");
    }
}

#[test]
fn the_page_its_files_and_the_examples_are_served() {
    let server = Server::start();
    let (status, page) = get(&server, "/");
    assert_eq!(status, 200);
    assert!(page.contains("<script src=\"app.js\"></script>"));
    // Nothing is loaded from elsewhere.
    assert!(!page.contains("http://") && !page.contains("https://"));
    assert_eq!(get(&server, "/app.js").0, 200);
    assert_eq!(get(&server, "/style.css").0, 200);
    let (status, examples) = get(&server, "/api/examples");
    assert_eq!(status, 200);
    let examples: Value = serde_json::from_str(&examples).unwrap();
    for ex in examples["explain"].as_array().unwrap() {
        let (status, body) = post(
            &server,
            "/api/explain",
            &ex.to_string().replace("\"title\"", "\"_\""),
        );
        // The examples' objects carry a title, which the API refuses as an unknown field.
        assert_eq!(status, 400, "{body}");
        let request = json!({ "expression": ex["expression"], "at": ex["at"] });
        let (status, body) = post(&server, "/api/explain", &request.to_string());
        assert_eq!(status, 200, "{}: {body}", ex["title"]);
    }
    for ex in examples["jacobian"].as_array().unwrap() {
        let (status, body) = post(
            &server,
            "/api/jacobian",
            &json!({ "example": ex["id"] }).to_string(),
        );
        assert_eq!(status, 200, "{body}");
        let chain: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(chain["input"]["value"], ex["input"]);
    }
}

#[test]
fn expression_errors_are_json_with_the_place() {
    let server = Server::start();
    let (status, body) = post(
        &server,
        "/api/explain",
        &json!({ "expression": "x +\n log(", "at": "x=1" }).to_string(),
    );
    assert_eq!(status, 422);
    let error: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(error["error"]["line"], 2);
    assert!(error["error"]["column"].as_u64().is_some());
    let (status, body) = post(
        &server,
        "/api/explain",
        &json!({ "expression": "x", "at": "x=abc" }).to_string(),
    );
    assert_eq!(status, 422);
    assert!(message(&body).contains("--at: the value of `x`"), "{body}");
    still_up(&server);
}

#[test]
fn graphs_and_bodies_beyond_the_limits_are_refused_and_the_server_stays_up() {
    let server = Server::start();
    let terms: Vec<String> = (0..600).map(|i| format!("x*{i}")).collect();
    let (status, body) = post(
        &server,
        "/api/explain",
        &json!({ "expression": terms.join(" + "), "at": "x=1" }).to_string(),
    );
    assert_eq!(status, 422);
    assert!(
        message(&body).contains("more than the page shows (500)"),
        "{body}"
    );
    still_up(&server);
    let huge = json!({ "expression": "x".repeat(1 << 20), "at": "x=1" }).to_string();
    let (status, body) = post(&server, "/api/explain", &huge);
    assert_eq!(status, 413);
    assert!(message(&body).contains("longer than 64 KiB"), "{body}");
    still_up(&server);
}

#[test]
fn malformed_requests_get_clear_errors_and_the_server_stays_up() {
    let server = Server::start();
    let cases: [(&str, &str, &str, u16, &str); 6] = [
        (
            "POST",
            "/api/explain",
            "{not json",
            400,
            "not the JSON the server expects",
        ),
        (
            "POST",
            "/api/explain",
            "{\"expression\": 1}",
            400,
            "not the JSON the server expects",
        ),
        (
            "POST",
            "/api/jacobian",
            "{\"example\": \"nope\"}",
            422,
            "no Jacobian example `nope`",
        ),
        (
            "GET",
            "/api/explain",
            "",
            405,
            "answers POST requests, not GET",
        ),
        ("GET", "/../../etc/passwd", "", 404, "no such page"),
        ("GET", "/Cargo.toml", "", 404, "no such page"),
    ];
    for (method, path, body, status, says) in cases {
        let (got, text) = match method {
            "POST" => post(&server, path, body),
            _ => get(&server, path),
        };
        assert_eq!(got, status, "{method} {path}: {text}");
        assert!(message(&text).contains(says), "{method} {path}: {text}");
        still_up(&server);
    }
    // A body that is not sent as JSON, which a page elsewhere could send without asking.
    let (status, text) = serve_support::reply(
        serve_support::agent()
            .post(&server.at("/api/explain"))
            .set("Content-Type", "text/plain")
            .send_string(r#"{"expression": "x", "at": "x=1"}"#),
    );
    assert_eq!(status, 415, "{text}");
    assert!(
        message(&text).contains("Content-Type: application/json"),
        "{text}"
    );
    // Another host name (DNS rebinding), then the names of this computer.
    for (host, status) in [
        ("evil.example", "403"),
        ("evil.example:80", "403"),
        ("localhost:1", "200"),
        ("127.0.0.1", "200"),
        ("[::1]:8000", "200"),
    ] {
        let request = format!("GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
        let answer = raw(&server, request.as_bytes());
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {status}")),
            "{host}: {answer}"
        );
    }
    still_up(&server);
    // Not HTTP at all, and a request cut off in its headers.
    for bytes in [
        &b"\x00\x01\x02 garbage\r\n\r\n"[..],
        b"GET / HTTP/1.1\r\nHost: x\r\n",
    ] {
        let answer = raw(&server, bytes);
        assert!(
            answer.is_empty() || answer.starts_with("HTTP/1."),
            "{answer}"
        );
        still_up(&server);
    }
}

/// Sends `bytes` as they are and returns what comes back before the server closes.
fn raw(server: &Server, bytes: &[u8]) -> String {
    let mut stream = TcpStream::connect(server.address()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream.write_all(bytes).unwrap();
    stream.shutdown(std::net::Shutdown::Write).unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).ok();
    String::from_utf8_lossy(&answer).into_owned()
}

#[test]
fn explain_html_writes_one_self_contained_page() {
    let dir = support::scratch("html");
    let page = dir.join("page.html");
    let out = support::perturb(&[
        "explain",
        "a = x^2; b = 5*a; c = log(a); g = b*c; L = -g",
        "--at",
        "x=0.7",
        "--html",
        page.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", support::stderr(&out));
    assert!(support::stderr(&out).contains("wrote the page to"));
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(!html.contains("src=\"app.js\"") && !html.contains("href=\"style.css\""));
    // Nothing loaded from elsewhere (the one address is SVG's namespace, a name).
    assert!(!html.contains("src=\"http") && !html.contains("href=\"http"));
    assert!(!html.contains("https://"));
    assert!(html.contains("id=\"report\"") && html.contains("\"derivatives\""));
    // An unwritable path is an error that names --html.
    let out = support::perturb(&[
        "explain",
        "x^2",
        "--at",
        "x=1",
        "--html",
        "/nonexistent/dir/p.html",
    ]);
    assert!(!out.status.success());
    assert!(
        support::stderr(&out).contains("--html: cannot write"),
        "{}",
        support::stderr(&out)
    );
}

#[test]
fn a_port_in_use_is_a_clear_error() {
    let server = Server::start();
    let port = server.address().rsplit(':').next().unwrap().to_string();
    let out = support::perturb(&["serve", "--port", &port]);
    assert!(!out.status.success());
    assert!(
        support::stderr(&out).contains(&format!("serve: cannot listen on 127.0.0.1:{port}")),
        "{}",
        support::stderr(&out)
    );
    still_up(&server);
}
