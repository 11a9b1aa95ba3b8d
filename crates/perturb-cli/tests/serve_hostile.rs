//! `perturb serve` against hostile clients: lying or huge headers, clients that send or read
//! slowly, odd request forms. Whatever one client does, the server answers the next one.

mod serve_support;
mod support;

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use serve_support::{cli_json, post, raw, still_up, Server};

/// A POST to `/api/explain` whose head declares `length` bytes of body, followed by `body`.
fn post_declaring(length: &str, body: &str) -> String {
    format!(
        "POST /api/explain HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
         Content-Length: {length}\r\n\r\n{body}"
    )
}

#[test]
fn a_huge_declared_body_is_refused_without_reading_it_and_the_server_stays_up() {
    let server = Server::start();
    // tiny_http 0.12 allocated the declared length when it dropped an unread body: the first
    // of these aborted the server ("memory allocation of 99999999999999 bytes failed").
    for length in [
        "99999999999999",
        "18446744073709551615",
        "99999999999999999999999",
        "70000",
    ] {
        let answer = raw(&server, post_declaring(length, "{}").as_bytes());
        assert!(answer.starts_with("HTTP/1.1 413"), "{length}: {answer}");
        assert!(answer.contains("longer than 64 KiB"), "{length}: {answer}");
        still_up(&server);
    }
    for length in ["-1", "+5", "1e3", "12abc", "", "2\r\nContent-Length: 3"] {
        let answer = raw(&server, post_declaring(length, "{}").as_bytes());
        assert!(answer.starts_with("HTTP/1.1 400"), "{length}: {answer}");
        assert!(answer.contains("Content-Length"), "{length}: {answer}");
        still_up(&server);
    }
}

#[test]
fn slow_clients_do_not_hold_up_the_others() {
    let server = Server::start();
    let connect = || TcpStream::connect(server.address()).unwrap();
    // A body that never comes (tiny_http read bodies over 1 KiB on the one thread that
    // answers everyone: the next client waited for ever).
    let mut slow_body = connect();
    slow_body
        .write_all(post_declaring("5000", "{\"expression").as_bytes())
        .unwrap();
    // A head that never ends.
    let mut slow_head = connect();
    slow_head.write_all(b"GET / HTTP/1.1\r\nHost: loc").unwrap();
    // A client that asks for many answers and reads none of them (their writing blocked the
    // same thread once the socket's buffers were full).
    let mut deaf = connect();
    let request = b"GET /app.js HTTP/1.1\r\nHost: localhost\r\n\r\n".repeat(400);
    deaf.write_all(&request).ok();
    std::thread::sleep(Duration::from_millis(300));
    let start = Instant::now();
    still_up(&server);
    assert!(
        start.elapsed() < Duration::from_secs(20),
        "the answer waited {:?} for the slow clients",
        start.elapsed()
    );
    // The slow ones are told so and let go after the server's time limit.
    for (name, mut stream) in [("body", slow_body), ("head", slow_head)] {
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).ok();
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.starts_with("HTTP/1.1 408"), "{name}: {answer}");
        assert!(answer.contains("within 10 seconds"), "{name}: {answer}");
    }
    drop(deaf);
    still_up(&server);
}

#[test]
fn bodies_without_a_length_and_requests_not_in_http_1_are_refused_clearly() {
    let server = Server::start();
    for (request, status, says) in [
        (
            "POST /api/explain HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
             Transfer-Encoding: chunked\r\n\r\n5\r\n{\"a\":\r\n0\r\n\r\n",
            "411",
            "send the request body with a Content-Length",
        ),
        // tiny_http answered this one nothing, and held the connection open.
        (
            "GET / HTTP/2.0\r\nHost: localhost\r\n\r\n",
            "400",
            "not an HTTP/1.1 request",
        ),
        (
            "GET / HTTP/1.1\r\nHost localhost\r\n\r\n",
            "400",
            "not an HTTP/1.1 request",
        ),
    ] {
        let answer = raw(&server, request.as_bytes());
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {status}")),
            "{request}: {answer}"
        );
        assert!(answer.contains(says), "{request}: {answer}");
        still_up(&server);
    }
    // A head longer than the server reads, in one header or in many.
    for head in [
        format!(
            "GET / HTTP/1.1\r\nHost: localhost\r\nX: {}\r\n\r\n",
            "a".repeat(20_000)
        ),
        format!(
            "GET / HTTP/1.1\r\nHost: localhost\r\n{}\r\n",
            "X: a\r\n".repeat(100)
        ),
    ] {
        let answer = raw(&server, head.as_bytes());
        assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
        assert!(
            answer.contains("longer than 16 KiB or has more than 64 headers"),
            "{answer}"
        );
        still_up(&server);
    }
}

#[test]
fn beyond_the_connections_served_at_once_the_next_client_waits_its_turn() {
    let server = Server::start();
    let idle: Vec<TcpStream> = (0..128)
        .map(|_| TcpStream::connect(server.address()).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let waiting = std::thread::scope(|scope| {
        let next = scope.spawn(|| still_up(&server));
        std::thread::sleep(Duration::from_millis(500));
        let waiting = !next.is_finished();
        // Clients that go away give their places back.
        drop(idle);
        next.join().expect("the next client is answered");
        waiting
    });
    assert!(
        waiting,
        "the 129th connection was served alongside 128 others"
    );
}

#[test]
fn a_request_with_two_host_headers_or_none_in_http_1_1_is_refused() {
    let server = Server::start();
    for (headers, status) in [
        // The guard against other host names read only the first of two.
        ("Host: localhost\r\nHost: evil.example\r\n", "400"),
        ("Host: evil.example\r\nHost: localhost\r\n", "400"),
        ("Host: localhost\r\nhost: localhost\r\n", "400"),
        ("", "400"),
        ("Host: localhost\r\n", "200"),
    ] {
        let request = format!("GET / HTTP/1.1\r\n{headers}\r\n");
        let answer = raw(&server, request.as_bytes());
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {status}")),
            "{headers:?}: {answer}"
        );
        if status == "400" {
            assert!(answer.contains("one Host header"), "{headers:?}: {answer}");
        }
    }
    // HTTP/1.0 may leave it out.
    assert!(raw(&server, b"GET / HTTP/1.0\r\n\r\n").starts_with("HTTP/1.1 200"));
    still_up(&server);
}

#[test]
fn clients_at_the_same_time_each_get_their_own_answer() {
    let server = Server::start();
    let cases = [
        ("x^2", "x=3"),
        ("sin(x)*w", "x=0.5, w=2"),
        ("a = x*x; b = 5*a; c = log(a); g = b*c; L = -g", "x=0.7"),
        ("exp(x)", "x=1"),
    ];
    let expected: Vec<Value> = cases.iter().map(|(e, a)| cli_json(e, a)).collect();
    std::thread::scope(|scope| {
        for (k, (expression, at)) in cases.iter().enumerate() {
            for _ in 0..3 {
                let (server, expected) = (&server, &expected);
                scope.spawn(move || {
                    let request = json!({ "expression": expression, "at": at }).to_string();
                    for _ in 0..5 {
                        let (status, body) = post(server, "/api/explain", &request);
                        assert_eq!(status, 200, "{body}");
                        let got: Value = serde_json::from_str(&body).unwrap();
                        assert_eq!(got, expected[k], "{expression}");
                    }
                });
            }
        }
    });
}

/// `GET` of `target` with the header `Host: host`, as sent on the wire.
fn get_of(target: &str, host: &str) -> String {
    format!("GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n")
}

#[test]
fn a_target_in_absolute_form_is_served_and_its_authority_is_the_host() {
    // RFC 9112 section 3.2.2: a server must accept the absolute form, and then the authority in
    // the target, not the Host header, names the host.
    let server = Server::start();
    let address = server.address();
    for (target, host, status, wanted) in [
        (
            format!("http://{address}/app.js"),
            "localhost",
            "200",
            "javascript",
        ),
        (
            "HTTP://LOCALHOST:1/style.css?x=1".to_string(),
            "localhost",
            "200",
            "text/css",
        ),
        (format!("http://{address}"), "localhost", "200", "text/html"),
        (
            format!("http://{address}/nothing"),
            "localhost",
            "404",
            "no such page",
        ),
        // The target names another host: refused whatever the Host header says.
        (
            "http://evil.example/".to_string(),
            "localhost",
            "403",
            "Host",
        ),
        (
            "http://evil.example:80/".to_string(),
            "127.0.0.1",
            "403",
            "Host",
        ),
        // A scheme this server does not speak.
        (
            format!("https://{address}/"),
            "localhost",
            "404",
            "no such page",
        ),
    ] {
        let answer = raw(&server, get_of(&target, host).as_bytes());
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {status}")) && answer.contains(wanted),
            "{target}: {answer}"
        );
    }
    still_up(&server);
}

#[test]
fn bind_takes_a_host_name_and_resolves_it() {
    let server = Server::start_with(&["--bind", "localhost"]);
    still_up(&server);
    let out = support::perturb(&["serve", "--port", "0", "--bind", "no-such-host.invalid"]);
    assert!(!out.status.success());
    assert!(
        support::stderr(&out).contains("serve: cannot listen on no-such-host.invalid"),
        "{}",
        support::stderr(&out)
    );
}

#[test]
fn on_every_interface_the_host_guard_still_refuses_other_names() {
    // Bound to 0.0.0.0 the server is reachable on 127.0.0.1 too, so a name pointed at
    // 127.0.0.1 (DNS rebinding) must still be refused; addresses and localhost are served.
    let server = Server::start_with(&["--bind", "0.0.0.0"]);
    for (host, status) in [
        ("evil.example", "403"),
        ("evil.example:80", "403"),
        ("localhost", "200"),
        ("127.0.0.1:1", "200"),
        ("192.0.2.7:8000", "200"),
        ("[::1]", "200"),
    ] {
        let answer = raw(&server, get_of("/", host).as_bytes());
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {status}")),
            "{host}: {answer}"
        );
    }
    still_up(&server);
}
