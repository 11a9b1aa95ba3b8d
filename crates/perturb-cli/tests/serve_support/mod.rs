//! Helpers for the tests of `perturb serve` (`serve.rs`) and of its page in a browser
//! (`browser.rs`): a server on a free port, HTTP calls, and the CLI's JSON to compare with.

// Each test file uses some of them.
#![allow(dead_code)]

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

/// `perturb serve --port 0` (any free port), stopped when dropped.
pub struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT/`.
    pub url: String,
}

impl Server {
    pub fn start() -> Server {
        Server::start_with(&[])
    }

    /// `perturb serve --port 0` with the further arguments `args` (`--bind ...`).
    pub fn start_with(args: &[&str]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_perturb"))
            .args(["serve", "--port", "0"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("perturb serve starts");
        let mut first = String::new();
        BufReader::new(child.stdout.take().expect("piped"))
            .read_line(&mut first)
            .expect("perturb serve prints its address");
        let start = first.find("http://").expect("an address in the first line");
        let url = first[start..]
            .split_whitespace()
            .next()
            .expect("the address")
            .to_string();
        Server { child, url }
    }

    /// `url` + `path` (without its leading `/`).
    pub fn at(&self, path: &str) -> String {
        format!("{}{}", self.url, path.trim_start_matches('/'))
    }

    /// The port the server listens on.
    pub fn address(&self) -> String {
        self.url
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

/// An HTTP client that gives every status back as a reply (ureq calls 4xx and 5xx errors).
pub fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(60))
        .build()
}

/// The status and the body of a reply.
pub fn reply(result: Result<ureq::Response, ureq::Error>) -> (u16, String) {
    match result {
        Ok(r) => (r.status(), r.into_string().expect("a text body")),
        Err(ureq::Error::Status(code, r)) => (code, r.into_string().expect("a text body")),
        Err(e) => panic!("no reply: {e}"),
    }
}

/// `POST path` with `body`.
pub fn post(server: &Server, path: &str, body: &str) -> (u16, String) {
    reply(
        agent()
            .post(&server.at(path))
            .set("Content-Type", "application/json")
            .send_string(body),
    )
}

/// `GET path`.
pub fn get(server: &Server, path: &str) -> (u16, String) {
    reply(agent().get(&server.at(path)).call())
}

/// What `perturb explain EXPR --at AT --json` prints, parsed.
pub fn cli_json(expr: &str, at: &str) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_perturb"))
        .args(["explain", expr, "--at", at, "--json"])
        .output()
        .expect("perturb explain runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON")
}

/// A number of the report: a JSON number, or "inf", "-inf", "NaN".
pub fn number(v: &Value) -> f64 {
    match v {
        Value::Number(n) => n.as_f64().expect("f64"),
        Value::String(s) => s.parse().expect("inf or NaN"),
        _ => panic!("not a number: {v}"),
    }
}

/// The message of an error reply (`{"error": {"message": ...}}`).
pub fn message(body: &str) -> String {
    let v: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("JSON ({e}): {body}"));
    v["error"]["message"]
        .as_str()
        .expect("a message")
        .to_string()
}

/// The server still answers: a good request after a bad one.
pub fn still_up(server: &Server) {
    let (status, body) = post(
        server,
        "/api/explain",
        &json!({ "expression": "x^2", "at": "x=3" }).to_string(),
    );
    assert_eq!(status, 200, "{body}");
    let report: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(report["derivatives"][0]["value"], 6.0);
}

/// Sends `bytes` as they are and returns what comes back before the server closes.
pub fn raw(server: &Server, bytes: &[u8]) -> String {
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
