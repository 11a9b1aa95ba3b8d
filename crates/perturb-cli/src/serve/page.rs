//! The page's files, embedded in the program, its examples, and the self-contained page of
//! `perturb explain --html`.

use serde_json::json;

/// The page; it loads `style.css` and `app.js` from the server.
pub const INDEX: &str = include_str!("../../assets/serve/index.html");
/// Everything the page does: draw the graph, step through the sweeps, the Jacobian view.
pub const SCRIPT: &str = include_str!("../../assets/serve/app.js");
pub const STYLE: &str = include_str!("../../assets/serve/style.css");

/// The lecture's scalar examples, in the language of `perturb explain`: (title, program, point).
pub const EXAMPLES: &[(&str, &str, &str)] = &[
    (
        "The logistic loss, one step at a time",
        "a = x^2; b = w*a; c = sigmoid(b); g = log(c); L = -g",
        "x=0.7, w=3",
    ),
    (
        "A reused value: L = -(5a log a), a = x²",
        "a = x^2; b = 5*a; c = log(a); g = b*c; L = -g",
        "x=0.7",
    ),
    (
        "The total derivative: y = 2x, z = exp(x), y z²",
        "y = 2*x; z = exp(x); y*z^2",
        "x=0.7",
    ),
    ("log(x²)", "log(x^2)", "x=0.7"),
    ("f(x, x) with f(a, b) = a b", "x*x", "x=0.7"),
    (
        "c = a b with b = 5a: dc/da = 10a",
        "b = 5*a; c = a*b",
        "a=1.5",
    ),
    (
        "Several inputs: -log sigmoid(w · x)",
        "z = 0.5*x1 - x2 + 2*x3; L = -log_sigmoid(z)",
        "x1=0.7, x2=1, x3=-0.25",
    ),
];

/// `GET /api/examples`: the scalar examples and the Jacobian examples (with their inputs).
pub fn examples_json() -> String {
    let explain: Vec<_> = EXAMPLES
        .iter()
        .map(
            |(title, expression, at)| json!({ "title": title, "expression": expression, "at": at }),
        )
        .collect();
    let jacobian: Vec<_> = super::jacobian::EXAMPLES
        .iter()
        .map(|e| json!({ "id": e.id, "title": e.title, "input_name": e.input_name, "input": e.input }))
        .collect();
    json!({ "explain": explain, "jacobian": jacobian }).to_string()
}

/// JSON to put inside `<script>`: `<` escaped, so no `</script>` in a string can end it early.
fn embedded(json: &str) -> String {
    json.replace('<', "\\u003c")
}

/// The page as one file for `perturb explain --html`, with `report` (the JSON of
/// `perturb explain --json`) and the Jacobian examples inside it: no server or network needed.
pub fn standalone(report: &str) -> String {
    let data = format!(
        "<script type=\"application/json\" id=\"report\">{}</script>\n\
         <script type=\"application/json\" id=\"jacobians\">{}</script>\n\
         <script>{SCRIPT}</script>",
        embedded(report),
        embedded(&super::jacobian::all_json())
    );
    INDEX
        .replace(
            "<link rel=\"stylesheet\" href=\"style.css\">",
            &format!("<style>{STYLE}</style>"),
        )
        .replace("<script src=\"app.js\"></script>", &data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_standalone_page_inlines_everything_and_escapes_the_data() {
        let page = standalone(r#"{"expression": "</script><b>x"}"#);
        assert!(!page.contains("src=\"app.js\"") && !page.contains("href=\"style.css\""));
        assert!(page.contains("\\u003c/script>\\u003cb>x"));
        assert_eq!(page.matches("</script>").count(), 3);
    }

    #[test]
    fn the_script_cannot_end_its_own_script_element() {
        assert!(!SCRIPT.contains("</script"));
        assert!(!STYLE.contains("</style"));
    }

    #[test]
    fn every_example_evaluates() {
        for (title, expression, at) in EXAMPLES {
            let at: Vec<String> = at.split(',').map(str::to_string).collect();
            let report = crate::explain::json_report(expression, &at, super::super::MAX_PAGE_NODES);
            assert!(report.is_ok(), "{title}: {report:?}");
        }
    }
}
