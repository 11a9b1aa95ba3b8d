//! `perturb explain --graph`: the SVG, PNG and DOT pictures of the graph show, for every node,
//! its definition, value, local partials and tangent or adjoint, and on every edge the term it
//! carries, with the numbers of `perturb explain --json`; a reused value's adjoint is the sum
//! of its contributions; bad paths are clear errors.

use std::path::Path;

use serde_json::Value;

mod support;
use support::{perturb, scratch, stderr, stdout};

/// The lecture's examples, a value used twice in one product (`x*x`), and one used six times.
const EXAMPLES: &[(&str, &str)] = &[
    (
        "a = x^2; b = w*a; c = sigmoid(b); g = log(c); L = -g",
        "x=0.7,w=3",
    ),
    ("a = x^2; b = 5*a; c = log(a); g = b*c; L = -g", "x=0.7"),
    ("b = 5*a\nc = a*b", "a=1.5"),
    (
        "y = 2*x; z = exp(x); y*z^2 + x*x + sin(w*y)",
        "x=0.7,w=-1.2",
    ),
    // x used six times: its sums are drawn over two lines.
    (
        "a = x*w; b = x + a; c = sin(x)*b; d = c/x + exp(x); d - x^2 + 3*x",
        "x=0.4,w=2",
    ),
];

/// Runs `perturb explain` with `args` and `--json`; the report.
fn report(args: &[&str]) -> Value {
    let mut all = vec!["explain"];
    all.extend_from_slice(args);
    all.push("--json");
    let out = perturb(&all);
    assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    serde_json::from_str(&stdout(&out)).expect("valid JSON")
}

/// Runs `perturb explain` with `args` and `--graph path`, which must succeed.
fn draw(args: &[&str], path: &Path) {
    let mut all = vec!["explain"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--graph", path.to_str().unwrap()]);
    let out = perturb(&all);
    assert!(out.status.success(), "{args:?}: {}", stderr(&out));
}

fn unescape_xml(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// The lines of text of an SVG picture, in the order they are drawn; a long sum drawn over
/// several lines (continued with `+`, ended with `=`) is joined back into one.
fn svg_texts(svg: &str) -> Vec<String> {
    let mut texts: Vec<String> = Vec::new();
    for part in svg.split("<text").skip(1) {
        let body = &part[part.find('>').expect("a text element") + 1..];
        let text = unescape_xml(body[..body.find("</text>").expect("closed")].trim());
        match texts.last_mut() {
            Some(last) if text.starts_with("+ ") || text.starts_with("= ") => {
                last.push(' ');
                last.push_str(&text);
            }
            _ => texts.push(text),
        }
    }
    texts
}

/// The lines of the labels of a DOT file, in order (the graph's label first).
fn dot_texts(dot: &str) -> Vec<String> {
    let mut lines = Vec::new();
    for part in dot.split("label=\"").skip(1) {
        // The label ends at the first quote that is not escaped.
        let mut label = String::new();
        let mut chars = part.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some('n') => label.push('\n'),
                    Some(other) => label.push(other),
                    None => break,
                },
                '"' => break,
                c => label.push(c),
            }
        }
        lines.extend(label.split('\n').map(str::to_string));
    }
    lines
}

/// A number of the JSON report (non-finite ones are strings).
fn json_number(v: &Value) -> f64 {
    match v {
        Value::Number(n) => n.as_f64().unwrap(),
        Value::String(s) if s == "inf" => f64::INFINITY,
        Value::String(s) if s == "-inf" => f64::NEG_INFINITY,
        _ => f64::NAN,
    }
}

/// An array of numbers of the JSON report.
fn numbers(v: &Value) -> Vec<f64> {
    v.as_array()
        .expect("an array")
        .iter()
        .map(json_number)
        .collect()
}

/// Takes from `shown` the edge label (amount, first factor, second factor) that shows
/// `expected`, which must be there.
fn take_edge(shown: &mut Vec<(f64, f64, f64)>, expected: (f64, f64, f64)) {
    let k = shown
        .iter()
        .position(|s| close(s.0, expected.0) && close(s.1, expected.1) && close(s.2, expected.2))
        .unwrap_or_else(|| panic!("no edge shows {expected:?} in {shown:?}"));
    shown.swap_remove(k);
}

/// A number as a picture shows it, possibly in parentheses.
fn shown(s: &str) -> f64 {
    let s = s.trim().trim_start_matches('(').trim_end_matches(')');
    s.parse()
        .unwrap_or_else(|_| panic!("`{s}` is not a number"))
}

/// Whether a number shown with 6 significant digits is `exact`.
fn close(shown: f64, exact: f64) -> bool {
    (shown - exact).abs() <= 1e-5 * exact.abs() + 1e-12
}

/// The text after `prefix` on the line starting with it. With both sweeps, `dL/dx` is both
/// x's adjoint and L's tangent: lines with the same start must then say the same.
fn line_after<'a>(texts: &'a [String], prefix: &str) -> &'a str {
    let found: Vec<&String> = texts.iter().filter(|t| t.starts_with(prefix)).collect();
    assert!(
        !found.is_empty(),
        "no line starting with `{prefix}` in {texts:#?}"
    );
    assert!(found.iter().all(|t| t == &found[0]), "{found:?}");
    &found[0][prefix.len()..]
}

/// `a + (b) = c` (or `c`, or `1 (the seed)`): the terms and the total.
fn sum(text: &str) -> (Vec<f64>, f64) {
    let parts: Vec<&str> = text.split(" = ").collect();
    let total = shown(parts[parts.len() - 1].split(" (").next().unwrap());
    let terms = if parts.len() > 1 {
        parts[0].split(" + ").map(shown).collect()
    } else {
        vec![total]
    };
    (terms, total)
}

/// The amounts on the edges (lines starting with `arrow`) with the line after each (`a × b`).
fn edge_labels(texts: &[String], arrow: &str) -> Vec<(f64, f64, f64)> {
    texts
        .iter()
        .enumerate()
        .filter_map(|(k, t)| {
            let amount = t.strip_prefix(arrow)?;
            let (a, b) = texts[k + 1]
                .split_once(" × ")
                .expect("a product under the amount");
            Some((shown(amount), shown(a), shown(b)))
        })
        .collect()
}

/// Checks every node's title, value and local partials.
fn check_nodes(texts: &[String], report: &Value) {
    let nodes = report["nodes"].as_array().unwrap();
    for node in nodes {
        let name = node["name"].as_str().unwrap();
        let definition = node["definition"].as_str().unwrap();
        let title = if definition == "input" {
            format!("{name} (input)")
        } else {
            format!("{name} = {definition}")
        };
        let at = texts
            .iter()
            .position(|t| *t == title)
            .unwrap_or_else(|| panic!("no `{title}` in {texts:#?}"));
        let uses = nodes
            .iter()
            .flat_map(|n| n["partials"].as_array().unwrap())
            .filter(|p| p["parent"] == node["index"])
            .count();
        let mut next = at + 1;
        if uses > 1 {
            assert_eq!(texts[next], format!("used {uses} times"));
            next += 1;
        }
        let value = texts[next]
            .strip_prefix("value ")
            .expect("the value under the title");
        assert!(
            close(shown(value), json_number(&node["value"])),
            "{title}: {value}"
        );
        for partial in node["partials"].as_array().unwrap() {
            let prefix = format!("∂{name}/∂{} = ", partial["name"].as_str().unwrap());
            let d = shown(line_after(&texts[at..], &prefix));
            assert!(close(d, json_number(&partial["value"])), "{prefix}{d}");
        }
    }
}

/// Checks the adjoints and contributions of the reverse sweep against the report's.
fn check_reverse(texts: &[String], report: &Value) {
    check_nodes(texts, report);
    let reverse = &report["reverse"];
    let y = reverse["output"].as_str().unwrap();
    let adjoints = numbers(&reverse["adjoints"]);
    let contributions = reverse["contributions"].as_array().unwrap();
    for node in report["nodes"].as_array().unwrap() {
        let (i, name) = (node["index"].as_u64().unwrap() as usize, &node["name"]);
        let (terms, total) = sum(line_after(
            texts,
            &format!("d{y}/d{} = ", name.as_str().unwrap()),
        ));
        assert!(
            close(total, adjoints[i]),
            "d{y}/d{name}: {total} vs {}",
            adjoints[i]
        );
        let into: Vec<f64> = contributions
            .iter()
            .filter(|c| c["to"].as_u64() == Some(i as u64))
            .map(|c| json_number(&c["amount"]))
            .collect();
        if into.len() > 1 {
            // A reused value: its adjoint is the sum of its contributions, each one shown.
            assert!(close(into.iter().sum(), adjoints[i]), "{name}: {into:?}");
            assert_eq!(terms.len(), into.len(), "{name}");
            for (t, c) in terms.iter().zip(&into) {
                assert!(close(*t, *c), "{name}: {t} vs {c}");
            }
        }
    }
    // Every edge carries its contribution: (adjoint of the node using the value) × (local).
    let mut shown_edges = edge_labels(texts, "← ");
    assert_eq!(shown_edges.len(), contributions.len(), "{texts:#?}");
    for c in contributions {
        let from = c["from"].as_u64().unwrap() as usize;
        let expected = (
            json_number(&c["amount"]),
            adjoints[from],
            json_number(&c["local"]),
        );
        take_edge(&mut shown_edges, expected);
    }
}

/// Checks the tangents of the first forward sweep, and the term on every edge.
fn check_forward(texts: &[String], report: &Value) {
    check_nodes(texts, report);
    let sweep = &report["forward"][0];
    let x = sweep["wrt"].as_str().unwrap();
    let tangents = numbers(&sweep["tangents"]);
    let mut expected_edges = Vec::new();
    for node in report["nodes"].as_array().unwrap() {
        let i = node["index"].as_u64().unwrap() as usize;
        let name = node["name"].as_str().unwrap();
        let (terms, total) = sum(line_after(texts, &format!("d{name}/d{x} = ")));
        assert!(close(total, tangents[i]), "d{name}/d{x}: {total}");
        let partials = node["partials"].as_array().unwrap();
        let expected: Vec<(f64, f64, f64)> = partials
            .iter()
            .map(|p| {
                let (d, t) = (
                    json_number(&p["value"]),
                    tangents[p["parent"].as_u64().unwrap() as usize],
                );
                (d * t, d, t)
            })
            .collect();
        if partials.len() > 1 {
            let sum: f64 = expected.iter().map(|e| e.0).sum();
            assert!(close(sum, tangents[i]), "{name}");
            for (t, e) in terms.iter().zip(&expected) {
                assert!(close(*t, e.0), "{name}: {t} vs {e:?}");
            }
        }
        expected_edges.extend(expected);
    }
    let mut shown_edges = edge_labels(texts, "→ ");
    assert_eq!(shown_edges.len(), expected_edges.len(), "{texts:#?}");
    for e in expected_edges {
        take_edge(&mut shown_edges, e);
    }
}

/// Draws the graph for `args` as SVG and as DOT in `dir` and checks both against the JSON
/// report with `check`.
fn check_svg_and_dot(dir: &Path, args: &[&str], check: fn(&[String], &Value)) {
    let report = report(args);
    let (svg, dot) = (dir.join("graph.svg"), dir.join("graph.dot"));
    draw(args, &svg);
    draw(args, &dot);
    check(&svg_texts(&std::fs::read_to_string(&svg).unwrap()), &report);
    check(&dot_texts(&std::fs::read_to_string(&dot).unwrap()), &report);
}

#[test]
fn reverse_mode_pictures_show_the_numbers_of_the_json_report() {
    let dir = scratch("graph-reverse");
    for (expr, at) in EXAMPLES {
        check_svg_and_dot(
            &dir,
            &[expr, "--at", at, "--mode", "reverse"],
            check_reverse,
        );
    }
}

#[test]
fn forward_mode_pictures_show_the_tangents_of_the_json_report() {
    let dir = scratch("graph-forward");
    for (expr, at) in EXAMPLES {
        for wrt in ["x", "a", "w"] {
            if at.contains(&format!("{wrt}=")) {
                let args = [expr, "--at", at, "--mode", "forward", "--wrt", wrt];
                check_svg_and_dot(&dir, &args, check_forward);
            }
        }
    }
}

/// Both sweeps (the default): the cards carry tangents and adjoints, the edges contributions.
#[test]
fn pictures_of_both_sweeps_show_tangents_and_adjoints() {
    let dir = scratch("graph-both");
    let (expr, at) = EXAMPLES[0];
    let args = [expr, "--at", at];
    let report = report(&args);
    let svg = dir.join("both.svg");
    draw(&args, &svg);
    let texts = svg_texts(&std::fs::read_to_string(&svg).unwrap());
    check_reverse(&texts, &report);
    let tangents = &report["forward"][0]["tangents"];
    for (i, name) in ["a", "b", "c", "g", "L"].iter().enumerate() {
        let tangent = sum(line_after(&texts, &format!("d{name}/dx = "))).1;
        assert!(close(tangent, json_number(&tangents[i + 2])), "{name}");
    }
}

/// Decodes a PNG: its size and the set of its colours.
fn decode(path: &Path) -> ((u32, u32), std::collections::HashSet<[u8; 3]>) {
    let bytes = std::fs::read(path).unwrap();
    let mut reader = png::Decoder::new(bytes.as_slice()).read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = info.color_type.samples();
    let colours = buf[..info.buffer_size()]
        .chunks(channels)
        .map(|p| [p[0], p[1], p[2]])
        .collect();
    ((info.width, info.height), colours)
}

/// The `width` and `height` an SVG states.
fn svg_size(svg: &str) -> (u32, u32) {
    let attribute = |name: &str| -> u32 {
        let start = svg.find(&format!("{name}=\"")).unwrap() + name.len() + 2;
        svg[start..start + svg[start..].find('"').unwrap()]
            .parse()
            .unwrap()
    };
    (attribute("width"), attribute("height"))
}

#[test]
fn png_pictures_decode_with_the_size_of_the_same_picture_as_svg() {
    let dir = scratch("graph-png");
    let (expr, at) = EXAMPLES[1];
    let args = [expr, "--at", at, "--mode", "reverse"];
    let (png, svg) = (dir.join("reuse.png"), dir.join("reuse.svg"));
    draw(&args, &png);
    draw(&args, &svg);
    let (size, colours) = decode(&png);
    assert_eq!(size, svg_size(&std::fs::read_to_string(&svg).unwrap()));
    assert!(size.0 > 600 && size.1 > 150, "{size:?}");
    // The input's fill, the output's fill, the reused value's border, the sweep's band.
    for colour in [
        [222, 235, 255],
        [222, 244, 222],
        [214, 110, 0],
        [255, 243, 205],
    ] {
        assert!(colours.contains(&colour), "{colour:?}");
    }
    // Text is drawn (anti-aliased: many shades).
    assert!(colours.len() > 50, "{}", colours.len());
    // An upper-case extension is the same format.
    let upper = dir.join("reuse.PNG");
    draw(&args, &upper);
    assert_eq!(decode(&upper).0, size);
}

#[test]
fn bad_graph_paths_are_clear_errors_and_leave_no_file() {
    let dir = scratch("graph-errors");
    let fails = |path: &Path, expr: &str, needle: &str| {
        let out = perturb(&[
            "explain",
            expr,
            "--at",
            "x=1",
            "--graph",
            path.to_str().unwrap(),
        ]);
        assert_eq!(out.status.code(), Some(1), "{}", path.display());
        let err = stderr(&out);
        assert!(err.contains("--graph") && err.contains(needle), "{err}");
        assert!(!path.exists(), "{}", path.display());
    };
    for name in ["g.jpg", "g", "g.svg.txt"] {
        fails(
            &dir.join(name),
            "x",
            "should end in .svg or .png (a picture) or .dot",
        );
    }
    for name in ["g.png", "g.svg", "g.dot"] {
        fails(&dir.join("no/such/dir").join(name), "x", "cannot write");
    }
    for name in ["g.png", "g.svg"] {
        fails(&dir.join(name), "2*3", "has no node to draw");
    }
    // A graph too large for a picture is refused in PNG as in SVG, naming the DOT to write.
    let mut src = String::from("a0 = x\n");
    for i in 1..80 {
        src.push_str(&format!("a{i} = a{} * 1.00001 + 0.5*x\n", i - 1));
    }
    let png = dir.join("large.png");
    fails(&png, &src, "too large to lay out as PNG");
    fails(&png, &src, "large.dot");
    // The folder is left as it was: no temporary file either.
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
}

/// A value the output does not use is drawn grey and passes nothing back; a local partial
/// that is infinite where nothing depends on the perturbed variable gives no NaN.
#[test]
fn unused_values_are_grey_and_infinite_partials_give_no_nan() {
    let dir = scratch("graph-unused");
    let dot = dir.join("unused.dot");
    let args = ["a = sqrt(y); b = 2*x; b", "--at", "x=1,y=0"];
    draw(&args, &dot);
    let text = std::fs::read_to_string(&dot).unwrap();
    let texts = dot_texts(&text);
    assert_eq!(line_after(&texts, "db/da = "), "0 (not used for b)");
    assert_eq!(line_after(&texts, "∂a/∂y = "), "inf");
    assert!(text.contains("#f4f4f4"), "{text}");
    assert!(!text.contains("NaN"), "{text}");
    // Forward mode perturbing x: a does not depend on x, so its edge adds exactly 0.
    draw(
        &[args[0], "--at", args[2], "--mode", "forward", "--wrt", "x"],
        &dot,
    );
    let texts = dot_texts(&std::fs::read_to_string(&dot).unwrap());
    assert_eq!(line_after(&texts, "da/dx = "), "0");
    assert!(
        texts.iter().any(|t| t == "y does not depend on x"),
        "{texts:#?}"
    );
    assert!(!texts.iter().any(|t| t.contains("NaN")), "{texts:#?}");
}
