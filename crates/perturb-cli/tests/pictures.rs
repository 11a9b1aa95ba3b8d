//! The pictures `perturb train` draws: the loss curve always, the decision boundary for a
//! classifier of two features; each as PNG (checked by decoding it) and SVG.

use std::collections::HashSet;
use std::path::Path;
use std::process::Command;

mod support;
use support::scratch;

/// Runs `perturb train` with `args` and `--out dir`, which must succeed; its output.
fn train(dir: &Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_perturb"))
        .arg("train")
        .args(args)
        .arg("--out")
        .arg(dir)
        .output()
        .expect("the binary runs");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Decodes a PNG file: its size and its pixels as RGB(A) tuples.
fn decode(path: &Path) -> ((u32, u32), Vec<[u8; 3]>) {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(
        &bytes[..8],
        b"\x89PNG\r\n\x1a\n",
        "{} is not a PNG",
        path.display()
    );
    let mut reader = png::Decoder::new(bytes.as_slice()).read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = info.color_type.samples();
    assert_eq!(info.bit_depth, png::BitDepth::Eight);
    assert!(channels >= 3, "{:?}", info.color_type);
    let pixels = buf[..info.buffer_size()]
        .chunks(channels)
        .map(|p| [p[0], p[1], p[2]])
        .collect();
    ((info.width, info.height), pixels)
}

/// Checks a PNG: its size, and that it is a picture (many colours, most of them not white).
fn check_png(path: &Path, size: (u32, u32)) -> HashSet<[u8; 3]> {
    let (found, pixels) = decode(path);
    assert_eq!(found, size, "{}", path.display());
    let colours: HashSet<[u8; 3]> = pixels.iter().copied().collect();
    assert!(
        colours.len() > 20,
        "{}: {} colours",
        path.display(),
        colours.len()
    );
    let white = pixels.iter().filter(|p| **p == [255, 255, 255]).count();
    assert!(white < pixels.len(), "{} is blank", path.display());
    colours
}

/// Checks an SVG: an `<svg>` element of the size, holding the given texts.
fn check_svg(path: &Path, texts: &[&str]) {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(
        text.starts_with("<svg") && text.trim_end().ends_with("</svg>"),
        "{}",
        path.display()
    );
    for t in texts {
        assert!(text.contains(t), "{}: no {t}", path.display());
    }
}

/// The class colours of the pictures (matplotlib's tab10): blue, orange, green.
const BLUE: [u8; 3] = [31, 119, 180];
const ORANGE: [u8; 3] = [255, 127, 14];
const GREEN: [u8; 3] = [44, 160, 44];

#[test]
fn two_features_give_the_loss_curve_and_the_decision_boundary() {
    let dir = scratch("moons");
    let text = train(&dir, &["--epochs", "300"]);
    for file in ["loss.png", "loss.svg", "boundary.png", "boundary.svg"] {
        assert!(
            text.contains(&dir.join(file).display().to_string()),
            "{file}: {text}"
        );
    }
    let loss = check_png(&dir.join("loss.png"), (800, 500));
    // The training loss line is blue, the test loss orange.
    assert!(loss.contains(&BLUE) && loss.contains(&ORANGE));
    check_svg(
        &dir.join("loss.svg"),
        &[
            "epoch",
            "loss (logistic NLL)",
            "two-moons",
            "training",
            "test",
        ],
    );
    let boundary = check_png(&dir.join("boundary.png"), (720, 640));
    // The points are in their classes' colours.
    assert!(boundary.contains(&BLUE) && boundary.contains(&ORANGE));
    check_svg(
        &dir.join("boundary.svg"),
        &[
            "x0",
            "x1",
            "label = 0",
            "label = 1",
            "train",
            "test",
            "<rect",
            "<circle",
        ],
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn three_classes_in_two_features_give_a_boundary_in_three_colours() {
    let dir = scratch("blobs");
    // Three clusters of 20 points, at (0, 0), (4, 0) and (2, 4), deterministic.
    let mut csv = String::from("u,v,kind\n");
    for (class, (cx, cy)) in [(0.0, 0.0), (4.0, 0.0), (2.0, 4.0)].into_iter().enumerate() {
        for i in 0..20 {
            let t = i as f64 * 0.7;
            csv += &format!(
                "{},{},{class}\n",
                cx + t.cos() * 0.1 * i as f64,
                cy + t.sin()
            );
        }
    }
    let data = dir.join("blobs.csv");
    std::fs::write(&data, csv).unwrap();
    let out = dir.join("out");
    let text = train(
        &out,
        &[
            "--data",
            data.to_str().unwrap(),
            "--optimizer",
            "adam",
            "--lr",
            "0.1",
            "--epochs",
            "60",
        ],
    );
    assert!(text.contains("as multiclass"), "{text}");
    let colours = check_png(&out.join("boundary.png"), (720, 640));
    assert!(
        colours.contains(&BLUE) && colours.contains(&ORANGE) && colours.contains(&GREEN),
        "three class colours"
    );
    check_svg(
        &out.join("boundary.svg"),
        &["u", "v", "kind = 0", "kind = 1", "kind = 2"],
    );
    check_svg(&out.join("loss.svg"), &["softmax cross-entropy"]);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn other_than_two_features_or_regression_give_only_the_loss_curve() {
    let dir = scratch("others");
    // Four features (iris), and a regression on two features.
    let iris = dir.join("iris");
    train(
        &iris,
        &[
            "--data",
            "iris",
            "--optimizer",
            "adam",
            "--lr",
            "0.05",
            "--epochs",
            "10",
        ],
    );
    let mut csv = String::from("a,b,y\n");
    for i in 0..40 {
        let (a, b) = (i as f64 * 0.1, (i % 7) as f64);
        csv += &format!("{a},{b},{}\n", 2.0 * a - b + 0.5);
    }
    let data = dir.join("plane.csv");
    std::fs::write(&data, csv).unwrap();
    let plane = dir.join("plane");
    let text = train(
        &plane,
        &[
            "--data",
            data.to_str().unwrap(),
            "--task",
            "regression",
            "--epochs",
            "10",
        ],
    );
    assert!(!text.contains("boundary"), "{text}");
    for out in [&iris, &plane] {
        check_png(&out.join("loss.png"), (800, 500));
        check_svg(&out.join("loss.svg"), &["epoch"]);
        assert!(out.join("model.safetensors").is_file());
        for file in ["boundary.png", "boundary.svg"] {
            assert!(!out.join(file).exists(), "{}", out.join(file).display());
        }
    }
    check_svg(&plane.join("loss.svg"), &["MSE"]);
    std::fs::remove_dir_all(&dir).ok();
}
