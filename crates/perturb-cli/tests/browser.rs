//! The page of `perturb serve` in a real browser: headless Chromium driven over WebDriver
//! (chromedriver) types an expression, steps through both sweeps, and every number the page
//! shows is checked against `perturb explain --json`; a parse error shows its caret; the
//! Jacobian view matches the API; the page of `explain --html` works from a file.
//!
//! Skipped, with a message, only where no browser is installed (`.ci/run` installs Debian's
//! `chromium` and `chromium-driver`). `PERTURB_SCREENSHOTS=docs` writes the README's
//! screenshots (`docs/serve-*.png`; another value is a folder to write them to).

mod serve_support;
mod support;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};
use serve_support::{cli_json, number, Server};

/// The key WebDriver names an element by in its answers.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";
const RIGHT: &str = "\u{E014}";
const LEFT: &str = "\u{E012}";

/// A headless Chromium session through chromedriver; both end when it is dropped.
struct Browser {
    driver: Child,
    session: String,
}

/// The first of `names` on the PATH (or given as an absolute path) that exists.
fn find(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    names.iter().find_map(|name| {
        let direct = PathBuf::from(name);
        if direct.is_absolute() {
            return direct.is_file().then_some(direct);
        }
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    })
}

impl Browser {
    /// A browser, or `None` (with the reason printed) where none is installed.
    fn start() -> Option<Browser> {
        let chromium = find(&["chromium", "chromium-browser", "google-chrome"]);
        let driver = find(&["chromedriver", "/usr/lib/chromium/chromedriver"]);
        let (Some(chromium), Some(driver)) = (chromium, driver) else {
            eprintln!(
                "SKIPPED: no browser to test the page in: install `chromium` and \
                 `chromium-driver` (Debian), as .ci/run does"
            );
            return None;
        };
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let mut browser = Browser {
            driver: child,
            session: format!("http://127.0.0.1:{port}"),
        };
        let started = Instant::now();
        while serve_support::agent()
            .get(&format!("{}/status", browser.session))
            .call()
            .is_err()
        {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "chromedriver did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let capabilities = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=1360,900",
                         "--force-device-scale-factor=1"],
            },
        } } });
        let answer = browser.call("POST", "/session", Some(capabilities));
        let id = answer["sessionId"].as_str().expect("a session").to_string();
        browser.session = format!("{}/session/{id}", browser.session);
        Some(browser)
    }

    /// A WebDriver command on the session (`path` after the session's address, or from the
    /// root for `/session`); the answer's `value`.
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}{path}", self.session);
        let request = serve_support::agent().request(method, &url);
        let (status, text) = serve_support::reply(match body {
            Some(body) => request.send_json(body),
            None => request.call(),
        });
        let answer: Value = serde_json::from_str(&text).expect("WebDriver answers JSON");
        assert_eq!(status, 200, "{method} {path}: {text}");
        answer["value"].clone()
    }

    /// Opens `url` and waits for the page's first evaluation: the page fills in its first
    /// example once the examples arrive, which would overwrite anything typed before it.
    fn open(&self, url: &str) {
        self.call("POST", "/url", Some(json!({ "url": url })));
        self.wait("return document.body.dataset.evaluated || null", json!([]));
    }

    /// Runs `script` (a function body; `arguments` are `args`) in the page.
    fn run(&self, script: &str, args: Value) -> Value {
        self.call(
            "POST",
            "/execute/sync",
            Some(json!({ "script": script, "args": args })),
        )
    }

    /// Waits (up to 20 s) until `script` returns something other than null or false.
    fn wait(&self, script: &str, args: Value) -> Value {
        let started = Instant::now();
        loop {
            let v = self.run(script, args.clone());
            if !v.is_null() && v != Value::Bool(false) {
                return v;
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "timed out waiting for: {script}"
            );
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// The element `css` matches, waiting for it.
    fn element(&self, css: &str) -> String {
        let started = Instant::now();
        loop {
            let url = format!("{}/element", self.session);
            let (status, text) = serve_support::reply(
                serve_support::agent()
                    .post(&url)
                    .send_json(json!({ "using": "css selector", "value": css })),
            );
            if status == 200 {
                let v: Value = serde_json::from_str(&text).unwrap();
                return v["value"][ELEMENT].as_str().unwrap().to_string();
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "no element {css}"
            );
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    fn click(&self, css: &str) {
        let e = self.element(css);
        self.call("POST", &format!("/element/{e}/click"), Some(json!({})));
    }

    /// Clears the field `css` and types `text` into it, as a learner would.
    fn type_into(&self, css: &str, text: &str) {
        let e = self.element(css);
        self.call("POST", &format!("/element/{e}/clear"), Some(json!({})));
        self.call(
            "POST",
            &format!("/element/{e}/value"),
            Some(json!({ "text": text })),
        );
    }

    /// Presses a key on the page itself (not in a field).
    fn press(&self, key: &str) {
        self.run(
            "document.activeElement && document.activeElement.blur()",
            json!([]),
        );
        let actions = json!({ "actions": [{ "type": "key", "id": "keyboard", "actions": [
            { "type": "keyDown", "value": key }, { "type": "keyUp", "value": key }] }] });
        self.call("POST", "/actions", Some(actions));
    }

    /// A screenshot of the page (checked to be a PNG), written to `docs/NAME` with
    /// `PERTURB_SCREENSHOTS=docs`, to `DIR/NAME` with `PERTURB_SCREENSHOTS=DIR`, else nowhere.
    fn screenshot(&self, name: &str) {
        let png = base64::engine::general_purpose::STANDARD
            .decode(
                self.call("GET", "/screenshot", None)
                    .as_str()
                    .expect("base64"),
            )
            .expect("a PNG");
        assert!(png.starts_with(b"\x89PNG"));
        // Written only when asked for: `docs` means the repository's docs/, anything else a
        // folder.
        let Ok(dir) = std::env::var("PERTURB_SCREENSHOTS") else {
            return;
        };
        let dir = match dir.as_str() {
            "docs" => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs"),
            _ => PathBuf::from(dir),
        };
        std::fs::create_dir_all(&dir).expect("a folder for the screenshots");
        std::fs::write(dir.join(name), png).expect("the screenshot is written");
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if self.session.contains("/session/") {
            let _ = serve_support::agent().delete(&self.session).call();
        }
        self.driver.kill().ok();
        self.driver.wait().ok();
    }
}

/// A number as the page shows it (10 significant digits) against the report's.
fn assert_shown(shown: &str, expected: &Value, what: &str) {
    let shown = shown.trim().trim_start_matches('(').trim_end_matches(')');
    let got: f64 = shown
        .parse()
        .unwrap_or_else(|_| panic!("{what}: `{shown}` is not a number"));
    let want = number(expected);
    assert!(
        got == want || (got - want).abs() <= 1e-9 * want.abs() || (got.is_nan() && want.is_nan()),
        "{what}: the page shows {got}, the CLI's JSON says {want}"
    );
}

/// The texts of the elements `css` matches inside the explanation.
const SHOWN: &str = "return Array.from(document.querySelectorAll('#explanation ' + arguments[0])).map(e => e.textContent)";

fn shown(b: &Browser, css: &str) -> Vec<String> {
    serde_json::from_value(b.run(SHOWN, json!([css]))).unwrap()
}

/// The last number of node `i`'s sweep line in the graph (`dL/da = 1 + 2 = 3`: 3).
fn node_sweep(b: &Browser, i: usize) -> String {
    b.run(
        "const e = document.querySelector(`#graph .node[data-index=\"${arguments[0]}\"] .sweep`); return e ? e.textContent : null",
        json!([i]),
    )
    .as_str()
    .unwrap_or("")
    .to_string()
}

fn last_number(text: &str) -> &str {
    text.rsplit(" = ").next().unwrap_or("")
}

/// Types `expr` and `at` and evaluates them; waits for the page to show the new graph.
fn evaluate(b: &Browser, expr: &str, at: &str) {
    b.type_into("#expr", expr);
    evaluate_at(b, at);
}

/// Types `at` and evaluates the expression in its field; waits for the page to show the result.
fn evaluate_at(b: &Browser, at: &str) {
    let before = b.wait("return document.body.dataset.evaluated || null", json!([]));
    b.type_into("#at", at);
    b.click("#evaluate");
    b.wait(
        "return document.body.dataset.evaluated !== arguments[0]",
        json!([before]),
    );
}

/// The error the page shows, once it shows one.
fn error_shown(b: &Browser) -> String {
    b.wait(
        "const e = document.getElementById('error'); return e.hidden ? null : e.textContent",
        json!([]),
    )
    .as_str()
    .unwrap()
    .to_string()
}

fn step_count(b: &Browser) -> String {
    b.run(
        "return document.getElementById('step-count').textContent",
        json!([]),
    )
    .as_str()
    .unwrap()
    .to_string()
}

/// A reused value (`a`, used by b and c), a value used twice by one node (x*x) and two inputs.
const EXPR: &str = "a = x*x; b = w*a; c = log(a); g = b*c; L = -g";
const AT: &str = "x=0.7, w=5";

/// A browser on a fresh server's page showing `expr` at `at`, with the CLI's report for it
/// (the server stops when it is dropped); `None` without a browser.
fn page_with(expr: &str, at: &str) -> Option<(Browser, Server, Value)> {
    let b = Browser::start()?;
    let server = Server::start();
    b.open(&server.url);
    evaluate(&b, expr, at);
    Some((b, server, cli_json(expr, at)))
}

#[test]
fn forward_mode_shows_the_clis_tangents_step_by_step() {
    let Some((b, _server, report)) = page_with(EXPR, AT) else {
        return;
    };
    let nodes = report["nodes"].as_array().unwrap();
    let n = nodes.len();
    // The value view: each node's value and local partials, in its box and in the table.
    let boxes: Vec<(String, String)> = serde_json::from_value(b.run(
        "return Array.from(document.querySelectorAll('#graph .node')).map(g => [g.querySelector('.value').textContent, Array.from(g.querySelector('.partials').childNodes).filter(t => t.nodeType === 3).map(t => t.nodeValue).join('')])",
        json!([]),
    ))
    .unwrap();
    let rows: Vec<Vec<String>> = serde_json::from_value(b.run(
        "return Array.from(document.querySelectorAll('#values tr[data-index]')).map(r => Array.from(r.cells).map(c => c.textContent))",
        json!([]),
    ))
    .unwrap();
    assert_eq!((boxes.len(), rows.len()), (n, n));
    for (i, node) in nodes.iter().enumerate() {
        assert_shown(
            boxes[i].0.trim_start_matches("value "),
            &node["value"],
            "a node's value",
        );
        assert_shown(&rows[i][2], &node["value"], "a value in the table");
        let partials = node["partials"].as_array().unwrap();
        let in_box: Vec<&str> = boxes[i].1.split("  ").filter(|s| !s.is_empty()).collect();
        let in_table: Vec<&str> = rows[i][3].split(", ").collect();
        for (j, p) in partials.iter().enumerate() {
            let name = p["name"].as_str().unwrap();
            assert_shown(
                in_box[j].trim_start_matches(&format!("∂{name} ")),
                &p["value"],
                "a partial in a box",
            );
            assert_shown(
                last_number(in_table[j]),
                &p["value"],
                "a partial in the table",
            );
        }
    }
    // End and Home jump to the ends of the sweep.
    b.press("\u{E010}");
    assert_eq!(step_count(&b), format!("step {n} of {n}"));
    b.press("\u{E011}");
    assert_eq!(step_count(&b), format!("step 0 of {n}"));
    for (k, sweep) in report["forward"].as_array().unwrap().iter().enumerate() {
        b.click(&format!("#wrt option[value=\"{k}\"]"));
        let tangents = &sweep["tangents"];
        for i in 0..n {
            // The arrow keys step on.
            b.press(RIGHT);
            assert_eq!(step_count(&b), format!("step {} of {n}", i + 1));
            assert_shown(
                &shown(&b, ".tangent")[0],
                &tangents[i],
                &format!("tangent of node {i}"),
            );
            assert_shown(
                last_number(&node_sweep(&b, i)),
                &tangents[i],
                "the node's tangent",
            );
            let partials = shown(&b, ".partial");
            let parents = shown(&b, ".parent-tangent");
            for (j, p) in nodes[i]["partials"].as_array().unwrap().iter().enumerate() {
                assert_shown(&partials[j], &p["value"], "a local partial");
                let parent = p["parent"].as_u64().unwrap() as usize;
                assert_shown(&parents[j], &tangents[parent], "a parent's tangent");
            }
            if k == 0 && i == 3 {
                b.screenshot("serve-forward.png");
            }
        }
        // And back: the last node's tangent disappears again.
        b.press(LEFT);
        assert_eq!(step_count(&b), format!("step {} of {n}", n - 1));
        assert_eq!(node_sweep(&b, n - 1), "");
        b.click("#first");
    }
}

#[test]
fn reverse_mode_shows_the_clis_contributions_and_adjoints() {
    let Some((b, _server, report)) = page_with(EXPR, AT) else {
        return;
    };
    b.click("#mode-reverse");
    let reverse = &report["reverse"];
    let adjoints = &reverse["adjoints"];
    let contributions = reverse["contributions"].as_array().unwrap();
    let steps = 1 + contributions.len();
    b.click("#next");
    assert_shown(&shown(&b, ".adjoint")[0], &json!(1.0), "the seed");
    let mut screenshot_taken = false;
    for (k, c) in contributions.iter().enumerate() {
        b.click("#next");
        assert_eq!(step_count(&b), format!("step {} of {steps}", k + 2));
        assert_shown(&shown(&b, ".amount")[0], &c["amount"], "a contribution");
        assert_shown(&shown(&b, ".local")[0], &c["local"], "its local partial");
        let from = c["from"].as_u64().unwrap() as usize;
        assert_shown(
            &shown(&b, ".from-adjoint")[0],
            &adjoints[from],
            "the adjoint it carries",
        );
        let to = c["to"].as_u64().unwrap() as usize;
        let into: Vec<&Value> = contributions
            .iter()
            .filter(|d| d["to"] == c["to"])
            .collect();
        let last = std::ptr::eq(*into.last().unwrap(), c);
        if last {
            assert_shown(
                &shown(&b, ".adjoint")[0],
                &adjoints[to],
                "the finished adjoint",
            );
            if into.len() > 1 {
                // A reused value: its contributions, one by one, then their sum.
                let terms = shown(&b, ".term");
                assert_eq!(terms.len(), into.len());
                for (t, d) in terms.iter().zip(&into) {
                    assert_shown(t, &d["amount"], "a term of the sum");
                }
                if !screenshot_taken {
                    b.screenshot("serve-reverse.png");
                    screenshot_taken = true;
                }
            }
        } else {
            assert!(
                shown(&b, ".adjoint").is_empty(),
                "an adjoint shown before it is complete"
            );
            assert!(
                node_sweep(&b, to).ends_with("= …"),
                "{}",
                node_sweep(&b, to)
            );
            let sum = b.run(
                "return document.querySelector(`#graph .node[data-index=\"${arguments[0]}\"] .sum`).textContent",
                json!([to]),
            );
            assert!(sum.as_str().unwrap().ends_with(" + …"), "{sum}");
        }
    }
    assert!(screenshot_taken, "the example has a reused value");
    // At the end every node shows the CLI's adjoint; one step back, the first input does not.
    for i in 0..report["nodes"].as_array().unwrap().len() {
        assert_shown(
            last_number(&node_sweep(&b, i)),
            &adjoints[i],
            &format!("adjoint of node {i}"),
        );
    }
    b.click("#back");
    assert_eq!(step_count(&b), format!("step {} of {steps}", steps - 1));
    b.press(LEFT);
    assert_eq!(step_count(&b), format!("step {} of {steps}", steps - 2));
}

#[test]
fn non_finite_numbers_of_values_the_output_does_not_use_are_shown_as_the_cli_writes_them() {
    // b = sqrt(0): ∂b/∂a = inf, so b's tangent is inf · 0 = NaN; x does not depend on b.
    let Some((b, _server, report)) = page_with("a = x*0; b = sqrt(a); x", "x=1") else {
        return;
    };
    let n = report["nodes"].as_array().unwrap().len();
    let tangents = &report["forward"][0]["tangents"];
    assert_eq!(tangents[2], "NaN", "{report}");
    for i in 0..n {
        b.press(RIGHT);
        assert_shown(
            last_number(&node_sweep(&b, i)),
            &tangents[i],
            &format!("tangent of node {i}"),
        );
    }
    b.click("#mode-reverse");
    b.press("\u{E010}");
    for i in 0..n {
        assert_shown(
            last_number(&node_sweep(&b, i)),
            &report["reverse"]["adjoints"][i],
            &format!("adjoint of node {i}"),
        );
    }
    let text = b
        .run("return document.body.innerText", json!([]))
        .to_string();
    assert!(text.contains("but x does not depend on it"), "{text}");
    for word in ["undefined", "null", "[object"] {
        assert!(!text.contains(word), "`{word}` on the page: {text}");
    }
}

#[test]
fn a_parse_error_shows_its_caret_and_warnings_show_too() {
    let Some(b) = Browser::start() else { return };
    let server = Server::start();
    b.open(&server.url);
    let source = "a = x^2\nb = a + * 3";
    evaluate(&b, source, "x=1");
    let text = error_shown(&b);
    assert!(text.starts_with("2:9: "), "{text}");
    let lines: Vec<&str> = text.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.starts_with("2 | "))
        .expect("the source line");
    let column = lines[at].find('*').unwrap();
    assert_eq!(lines[at + 1].find('^'), Some(column), "{text}");
    // The page still works after it; explain's warnings show too.
    let (expr, at) = ("a = sqrt(x); b = 2*x; b", "x=0");
    evaluate(&b, expr, at);
    let error_hidden = b.run("return document.getElementById('error').hidden", json!([]));
    assert_eq!(error_hidden, json!(true));
    let warnings = b.run(
        "return document.getElementById('warnings').textContent",
        json!([]),
    );
    let expected = cli_json(expr, at)["warnings"][0]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        warnings.as_str().unwrap().contains(&expected),
        "{warnings} vs {expected}"
    );
}

#[test]
fn a_parse_error_shows_the_source_line_as_the_cli_does() {
    let Some(b) = Browser::start() else { return };
    let server = Server::start();
    b.open(&server.url);
    // A tab, a right-to-left override (which reorders the rest of the line where it is shown
    // as it is) and a line far longer than the error box.
    for source in [
        "a = x^2;\tb = \u{202e}a + 1",
        &format!("{} + * 2", vec!["x"; 200].join(" + ")),
    ] {
        // Pasted, as a learner would (a typed tab moves to the next field).
        b.run(
            "document.getElementById('expr').value = arguments[0]",
            json!([source]),
        );
        evaluate_at(&b, "x=1");
        let shown = error_shown(&b);
        let out = support::perturb(&["explain", source, "--at", "x=1"]);
        let cli = support::stderr(&out);
        let cli = cli.trim_end().trim_start_matches("perturb: explain: ");
        assert_eq!(shown, cli, "{source}");
    }
}

#[test]
fn the_jacobian_view_multiplies_the_steps_jacobians() {
    let Some(b) = Browser::start() else { return };
    let server = Server::start();
    b.open(&server.url);
    b.click("#tab-jacobian");
    b.wait(
        "return document.querySelector('#jacobian-product td')",
        json!([]),
    );
    let (_, body) = serve_support::post(&server, "/api/jacobian", r#"{"example": "mse"}"#);
    let chain: Value = serde_json::from_str(&body).unwrap();
    let matrix = |css: &str| -> Vec<Vec<String>> {
        serde_json::from_value(b.run(
            "return Array.from(document.querySelectorAll(arguments[0] + ' tr')).map(r => Array.from(r.cells).map(c => c.textContent))",
            json!([css]),
        ))
        .unwrap()
    };
    let same = |shown: Vec<Vec<String>>, expected: &Value, what: &str| {
        let rows = expected.as_array().unwrap();
        assert_eq!(shown.len(), rows.len(), "{what}");
        for (r, row) in shown.iter().zip(rows) {
            for (s, e) in r.iter().zip(row.as_array().unwrap()) {
                assert_shown(s, e, what);
            }
        }
    };
    let steps = chain["steps"].as_array().unwrap();
    for (s, step) in steps.iter().enumerate() {
        same(
            matrix(&format!(".factor[data-step=\"{s}\"]")),
            &step["jacobian"],
            "a step's Jacobian",
        );
    }
    // Another input, typed in.
    b.type_into("#jacobian-input", "1.5, 2");
    b.click("#jacobian-evaluate");
    let (_, body) = serve_support::post(
        &server,
        "/api/jacobian",
        r#"{"example": "mse", "input": [1.5, 2]}"#,
    );
    let other: Value = serde_json::from_str(&body).unwrap();
    let showing =
        "return document.querySelector('#jacobian-steps p').textContent.includes(arguments[0])";
    b.wait(showing, json!(["[1.5, 2]"]));
    same(
        matrix("#jacobian-whole .matrix:first-of-type"),
        &other["whole"]["forward"],
        "the whole Jacobian at another input",
    );
    b.type_into("#jacobian-input", "0.5, -0.25");
    b.click("#jacobian-evaluate");
    b.wait(showing, json!(["[0.5, -0.25]"]));
    for order in ["forward", "reverse"] {
        b.click(&format!("#order-{order}"));
        for (s, product) in chain[format!("{order}_products")]
            .as_array()
            .unwrap()
            .iter()
            .enumerate()
        {
            same(
                matrix("#jacobian-product"),
                &product["jacobian"],
                &format!("{order} product {s}"),
            );
            if order == "forward" && s == 2 {
                b.screenshot("serve-jacobian.png");
            }
            b.press(RIGHT);
        }
    }
}

#[test]
fn the_html_page_of_explain_works_from_a_file() {
    let Some(b) = Browser::start() else { return };
    let dir = support::scratch("html-page");
    let page = dir.join("page.html");
    let out = support::perturb(&[
        "explain",
        EXPR,
        "--at",
        AT,
        "--html",
        page.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", support::stderr(&out));
    let report = cli_json(EXPR, AT);
    b.open(&format!("file://{}", page.display()));
    b.wait("return document.body.dataset.evaluated || null", json!([]));
    b.click("#mode-reverse");
    b.click("#last");
    for (i, adjoint) in report["reverse"]["adjoints"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
    {
        assert_shown(
            last_number(&node_sweep(&b, i)),
            adjoint,
            &format!("adjoint of node {i}"),
        );
    }
    b.click("#tab-jacobian");
    b.wait(
        "return document.querySelector('#jacobian-product td')",
        json!([]),
    );
}
