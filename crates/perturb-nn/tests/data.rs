//! Tests for `perturb_nn::data`: generators, CSV loading and its errors, the bundled data sets,
//! splitting, standardization and batching.

use std::path::PathBuf;

use perturb::tensor::Tensor;
use std::io::Read;

use perturb_nn::data::{
    builtin, builtin_csv, circles, class_labels, load_csv, load_csv_from_reader, spirals,
    train_test_split, two_moons, xor, Batches, DataError, Dataset, Standardizer, TargetColumn,
    BUILTIN_NAMES, MAX_CLASSES, MAX_RECORD_BYTES,
};

type Generator = fn(usize, f64, u64) -> Result<Dataset<f64>, DataError>;

fn circles_half(n: usize, noise: f64, seed: u64) -> Result<Dataset<f64>, DataError> {
    circles(n, noise, 0.5, seed)
}

const GENERATORS: [(&str, Generator); 4] = [
    ("two_moons", two_moons::<f64>),
    ("circles", circles_half),
    ("spirals", spirals::<f64>),
    ("xor", xor::<f64>),
];

fn count_label(d: &Dataset<f64>, label: f64) -> usize {
    d.y.as_slice().iter().filter(|&&l| l == label).count()
}

#[test]
fn generators_have_the_right_shapes_and_balanced_labels() {
    for (name, make) in GENERATORS {
        for n in [200, 201] {
            let d = make(n, 0.1, 0).unwrap();
            assert_eq!(d.x.shape(), &[n, 2], "{name}");
            assert_eq!(d.y.shape(), &[n], "{name}");
            assert_eq!(d.feature_names.len(), 2, "{name}");
            // Labels are only 0 or 1, and the classes differ in size by at most one: every
            // generator puts n / 2 (rounded down) or n - n / 2 points in each class.
            let (zeros, ones) = (count_label(&d, 0.0), count_label(&d, 1.0));
            assert_eq!(zeros + ones, n, "{name}: labels other than 0/1");
            assert!(zeros.abs_diff(ones) <= 1, "{name}: {zeros} vs {ones}");
        }
    }
}

#[test]
fn generators_are_deterministic_in_the_seed() {
    for (name, make) in GENERATORS {
        let a = make(100, 0.2, 11).unwrap();
        let b = make(100, 0.2, 11).unwrap();
        let c = make(100, 0.2, 12).unwrap();
        assert_eq!(a.x.to_vec(), b.x.to_vec(), "{name}");
        assert_eq!(a.y.to_vec(), b.y.to_vec(), "{name}");
        assert_ne!(a.x.to_vec(), c.x.to_vec(), "{name}");
    }
}

#[test]
fn generators_reject_bad_noise_and_factor() {
    for (name, make) in GENERATORS {
        for noise in [-0.1, f64::NAN, f64::INFINITY] {
            let err = make(10, noise, 0).unwrap_err().to_string();
            assert!(err.contains(name) && err.contains("noise"), "{err}");
        }
    }
    for factor in [0.0, 1.0, -0.5, f64::NAN] {
        let err = circles::<f64>(10, 0.0, factor, 0).unwrap_err().to_string();
        assert!(err.contains("circles") && err.contains("factor"), "{err}");
    }
}

#[test]
fn two_moons_geometry() {
    let noise = 0.1;
    let d = two_moons::<f64>(400, noise, 3).unwrap();
    // Before noise, class 0 is (cos t, sin t) and class 1 is (1 - cos t, 0.5 - sin t) with t in
    // [0, pi], so class 0 has x in [-1, 1], y in [0, 1] and class 1 has x in [0, 2],
    // y in [-0.5, 0.5]. Noise is N(0, 0.1^2) per coordinate; a 4-sigma excursion has
    // probability about 6e-5 per coordinate, and the data is fixed by the seed, so the margins
    // below hold (and would fail if the moons were misplaced, e.g. swapped or unshifted).
    let m = 4.0 * noise;
    for i in 0..d.len() {
        let (a, b) = (d.x.get(&[i, 0]).unwrap(), d.x.get(&[i, 1]).unwrap());
        if d.y.get(&[i]) == Some(0.0) {
            assert!(b >= -m && b <= 1.0 + m && (-1.0 - m..=1.0 + m).contains(&a));
        } else {
            assert!(b <= 0.5 + m && b >= -0.5 - m && (-m..=2.0 + m).contains(&a));
        }
    }
    // The class means: class 0's is (0, 2/pi) and class 1's is (1, 0.5 - 2/pi) (the mean of
    // sin t over [0, pi] is 2/pi, of cos t is 0); 200 points with noise 0.1 put the sample
    // means within about 0.01 of these (standard error 0.1 / sqrt(200) ~ 0.007, plus the
    // discretization of t).
    let mean = |label: f64, col: usize| {
        let rows: Vec<usize> = (0..d.len())
            .filter(|&i| d.y.get(&[i]) == Some(label))
            .collect();
        rows.iter()
            .map(|&i| d.x.get(&[i, col]).unwrap())
            .sum::<f64>()
            / rows.len() as f64
    };
    let two_over_pi = 2.0 / std::f64::consts::PI;
    assert!((mean(0.0, 0) - 0.0).abs() < 0.03);
    assert!((mean(0.0, 1) - two_over_pi).abs() < 0.03);
    assert!((mean(1.0, 0) - 1.0).abs() < 0.03);
    assert!((mean(1.0, 1) - (0.5 - two_over_pi)).abs() < 0.03);
}

#[test]
fn circles_and_spirals_geometry_without_noise() {
    let c = circles::<f64>(100, 0.0, 0.3, 1).unwrap();
    let s = spirals::<f64>(100, 0.0, 1).unwrap();
    for i in 0..100 {
        let r = |d: &Dataset<f64>| d.x.get(&[i, 0]).unwrap().hypot(d.x.get(&[i, 1]).unwrap());
        // Class 0 is on the unit circle, class 1 on the circle of radius factor = 0.3.
        let want = if c.y.get(&[i]) == Some(0.0) { 1.0 } else { 0.3 };
        assert!((r(&c) - want).abs() < 1e-12);
        // Spiral points have radius s in [0.1, 1] (the arm parameter).
        assert!((0.1 - 1e-12..=1.0 + 1e-12).contains(&r(&s)));
    }
    // Spiral arm 1 is arm 0 negated: the same (noise-free) point set up to sign, so the sorted
    // radii of the two classes are equal (both arms have 50 points with the same s values).
    let radii = |label: f64| {
        let mut v: Vec<f64> = (0..100)
            .filter(|&i| s.y.get(&[i]) == Some(label))
            .map(|i| s.x.get(&[i, 0]).unwrap().hypot(s.x.get(&[i, 1]).unwrap()))
            .collect();
        v.sort_by(f64::total_cmp);
        v
    };
    for (a, b) in radii(0.0).iter().zip(radii(1.0)) {
        assert!((a - b).abs() < 1e-12);
    }
}

#[test]
fn xor_labels_follow_the_quadrant_sign() {
    let d = xor::<f64>(101, 0.0, 9).unwrap();
    for i in 0..101 {
        let (a, b) = (d.x.get(&[i, 0]).unwrap(), d.x.get(&[i, 1]).unwrap());
        assert!(a.abs() <= 1.0 && b.abs() <= 1.0 && a != 0.0 && b != 0.0);
        // Label 1 exactly where the signs differ (product negative).
        assert_eq!(d.y.get(&[i]).unwrap(), f64::from(u8::from(a * b < 0.0)));
    }
}

#[test]
fn generators_work_in_f32() {
    let d = two_moons::<f32>(10, 0.1, 0).unwrap();
    let e = two_moons::<f64>(10, 0.1, 0).unwrap();
    // The f32 data is the f64 data rounded, so they agree to f32 precision.
    assert!(d.x.cast::<f64>().all_close(&e.x, 1e-6));
}

// ---------------------------------------------------------------------------------------------
// CSV
// ---------------------------------------------------------------------------------------------

/// A temporary CSV file, removed when dropped.
struct TempCsv(PathBuf);

impl TempCsv {
    fn new(name: &str, contents: &str) -> Self {
        let path = std::env::temp_dir().join(format!(
            "perturb_nn_data_test_{}_{name}.csv",
            std::process::id()
        ));
        std::fs::write(&path, contents).unwrap();
        TempCsv(path)
    }
}

impl Drop for TempCsv {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn builtin_data_sets_match_the_readme() {
    // Rows, features and target names from data/README.md.
    for (name, rows, features, target) in [
        ("breast_cancer", 569, 30, "benign"),
        ("digits", 1797, 64, "digit"),
        ("diabetes", 442, 10, "progression"),
        ("iris", 150, 4, "species"),
    ] {
        let d = builtin(name).unwrap();
        assert_eq!(d.x.shape(), &[rows, features], "{name}");
        assert_eq!(d.y.shape(), &[rows], "{name}");
        assert_eq!(d.feature_names.len(), features, "{name}");
        assert_eq!(d.target_name, target, "{name}");
        // load_csv on the same file with the default target gives the same data.
        let path = perturb_nn::data::data_dir().join(format!("{name}.csv"));
        let e = load_csv(path, TargetColumn::default()).unwrap();
        assert_eq!(d.x.to_vec(), e.x.to_vec());
    }
    // iris: 50 of each species (README: 0 setosa, 1 versicolor, 2 virginica); the first row
    // is 5.1,3.5,1.4,0.2,0 (data/iris.csv line 2).
    let iris = builtin("iris").unwrap();
    for label in [0.0, 1.0, 2.0] {
        assert_eq!(count_label(&iris, label), 50);
    }
    assert_eq!(&iris.x.as_slice()[..4], &[5.1, 3.5, 1.4, 0.2]);
    // digits: labels are 0..=9 and pixels 0..=16 (README).
    let digits = builtin("digits").unwrap();
    assert!(digits
        .y
        .as_slice()
        .iter()
        .all(|&l| (0.0..=9.0).contains(&l)));
    assert!(digits
        .x
        .as_slice()
        .iter()
        .all(|&p| (0.0..=16.0).contains(&p)));
}

#[test]
fn builtin_unknown_name_lists_the_known_ones() {
    let err = builtin("mnist").unwrap_err().to_string();
    assert!(err.contains("mnist"), "{err}");
    for name in ["breast_cancer", "digits", "diabetes", "iris"] {
        assert!(err.contains(name), "{err}");
    }
}

#[test]
fn load_csv_by_name_and_index() {
    let f = TempCsv::new("select", "a, b ,c\n1,2,3\n4, 5 ,6\n");
    let by_name = load_csv(&f.0, TargetColumn::Name("b".into())).unwrap();
    assert_eq!(by_name.x.to_vec(), vec![1.0, 3.0, 4.0, 6.0]);
    assert_eq!(by_name.y.to_vec(), vec![2.0, 5.0]);
    assert_eq!(by_name.feature_names, vec!["a", "c"]);
    assert_eq!(by_name.target_name, "b");
    let by_index = load_csv(&f.0, TargetColumn::Index(0)).unwrap();
    assert_eq!(by_index.y.to_vec(), vec![1.0, 4.0]);
    assert_eq!(by_index.x.shape(), &[2, 2]);
    let last = load_csv(&f.0, TargetColumn::Last).unwrap();
    assert_eq!(last.y.to_vec(), vec![3.0, 6.0]);
}

#[test]
fn load_csv_missing_file() {
    let path = std::env::temp_dir().join("perturb_nn_data_test_does_not_exist.csv");
    let err = load_csv(&path, TargetColumn::Last).unwrap_err();
    assert!(matches!(err, DataError::MissingFile { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("does_not_exist.csv") && msg.contains("not found"),
        "{msg}"
    );
}

#[test]
fn load_csv_empty_file_and_header_only() {
    let empty = TempCsv::new("empty", "");
    let err = load_csv(&empty.0, TargetColumn::Last).unwrap_err();
    assert!(matches!(err, DataError::EmptyFile { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("_empty.csv") && msg.contains("empty"), "{msg}");

    let header_only = TempCsv::new("header_only", "a,b\n");
    let msg = load_csv(&header_only.0, TargetColumn::Last)
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("_header_only.csv") && msg.contains("no data rows"),
        "{msg}"
    );
}

#[test]
fn load_csv_ragged_row_names_line_and_counts() {
    // Line 1 is the header, line 2 the first row, line 3 the short row.
    let f = TempCsv::new("ragged", "a,b,c\n1,2,3\n4,5\n7,8,9\n");
    let err = load_csv(&f.0, TargetColumn::Last).unwrap_err();
    assert!(
        matches!(
            err,
            DataError::RaggedRow {
                line: 3,
                expected: 3,
                found: 2,
                ..
            }
        ),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("_ragged.csv") && msg.contains("line 3"),
        "{msg}"
    );
    assert!(
        msg.contains("2 fields") && msg.contains("header has 3"),
        "{msg}"
    );
}

#[test]
fn load_csv_non_numeric_names_line_column_and_text() {
    // "x5" is on line 4 (header + two rows before it), in the 2nd column, "b".
    let f = TempCsv::new("text", "a,b,c\n1,2,3\n4,5,6\n7,x5,9\n");
    let err = load_csv(&f.0, TargetColumn::Last).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("_text.csv") && msg.contains("line 4"), "{msg}");
    assert!(msg.contains("column 2") && msg.contains("(b)"), "{msg}");
    assert!(
        msg.contains("\"x5\"") && msg.contains("not a finite number"),
        "{msg}"
    );

    // An empty field and a non-finite value are rejected too.
    let f = TempCsv::new("blank", "a,b\n1,\n");
    let msg = load_csv(&f.0, TargetColumn::Last).unwrap_err().to_string();
    assert!(msg.contains("line 2") && msg.contains("column 2"), "{msg}");
    let f = TempCsv::new("nan", "a,b\nNaN,1\n");
    let msg = load_csv(&f.0, TargetColumn::Last).unwrap_err().to_string();
    assert!(
        msg.contains("column 1 (a)") && msg.contains("\"NaN\""),
        "{msg}"
    );
}

#[test]
fn load_csv_missing_target_names_it_and_lists_columns() {
    let f = TempCsv::new("target", "alpha,beta,gamma\n1,2,3\n");
    let msg = load_csv(&f.0, TargetColumn::Name("label".into()))
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("_target.csv") && msg.contains("\"label\""),
        "{msg}"
    );
    assert!(msg.contains("alpha, beta, gamma"), "{msg}");
    let msg = load_csv(&f.0, TargetColumn::Index(3))
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("#3") && msg.contains("alpha, beta, gamma"),
        "{msg}"
    );
}

/// The error of loading `text` (named "t.csv") with the last column as the target.
fn csv_err(text: &str) -> String {
    load_csv_from_reader(text.as_bytes(), "t.csv", TargetColumn::Last)
        .unwrap_err()
        .to_string()
}

#[test]
fn load_csv_rejects_a_file_without_feature_columns() {
    // C1: a target alone trained a [0, h, 1] network whose model could not be applied.
    let msg = csv_err("y\n0\n1\n1\n");
    assert!(msg.contains("t.csv") && msg.contains("line 1"), "{msg}");
    assert!(
        msg.contains("no feature columns") && msg.contains("\"y\""),
        "{msg}"
    );
}

#[test]
fn load_csv_rejects_repeated_and_empty_column_names() {
    // D4: a header "a,a,y" trained a model that no CSV file could ever be matched to.
    let msg = csv_err("a,a,y\n1,2,0\n");
    assert!(
        msg.contains("\"a\"") && msg.contains("more than once"),
        "{msg}"
    );
    assert!(msg.contains("columns 1, 2"), "{msg}");
    // Names are compared after trimming, as they are matched.
    let msg = csv_err("b,a, b ,y\n1,2,3,0\n");
    assert!(
        msg.contains("\"b\"") && msg.contains("columns 1, 3"),
        "{msg}"
    );
    let msg = csv_err("a,,y\n1,2,0\n");
    assert!(msg.contains("column 2 has an empty name"), "{msg}");
    let msg = csv_err("a,b,  \n1,2,0\n");
    assert!(msg.contains("column 3 has an empty name"), "{msg}");
}

#[test]
fn load_csv_bounds_the_length_of_a_row() {
    // H5: /dev/zero is one endless record; the reader stops after about MAX_RECORD_BYTES.
    let endless = std::io::repeat(0).take(1 << 40);
    let err = load_csv_from_reader(endless, "/dev/zero", TargetColumn::Last).unwrap_err();
    assert!(
        matches!(err, DataError::RecordTooLong { line: 1, .. }),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("/dev/zero, line 1") && msg.contains("longer than"),
        "{msg}"
    );
    // The same after a good header and row: the endless row starts on line 3.
    let endless = "a,b\n1,2\n"
        .as_bytes()
        .chain(std::io::repeat(b'7').take(1 << 40));
    let err = load_csv_from_reader(endless, "f.csv", TargetColumn::Last).unwrap_err();
    assert!(
        matches!(err, DataError::RecordTooLong { line: 3, .. }),
        "{err:?}"
    );
    // A row just under the limit is read.
    let wide = 400_000;
    let mut text = (0..wide)
        .map(|j| format!("c{j}"))
        .collect::<Vec<_>>()
        .join(",");
    text.push('\n');
    text.push_str(&vec!["1"; wide].join(","));
    let header_len = text.find('\n').unwrap() as u64;
    assert!(header_len > MAX_RECORD_BYTES / 2 && header_len < MAX_RECORD_BYTES);
    let d = load_csv_from_reader(text.as_bytes(), "wide", TargetColumn::Last).unwrap();
    assert_eq!(d.x.shape(), &[1, wide - 1]);
}

#[test]
fn load_csv_names_the_separator_of_a_semicolon_or_tab_file() {
    // U2: "... is not a finite number" with no hint.
    let msg = csv_err("a;b;y\n1.5;2;1\n");
    assert!(
        msg.contains("only one column") && msg.contains("';'"),
        "{msg}"
    );
    let msg = csv_err("a\tb\ty\n1.5\t2\t1\n");
    assert!(
        msg.contains("only one column") && msg.contains("tabs"),
        "{msg}"
    );
    let msg = load_csv_from_reader(
        "a;b;y\n1;2;1\n".as_bytes(),
        "s.csv",
        TargetColumn::Name("y".into()),
    )
    .unwrap_err()
    .to_string();
    assert!(
        msg.contains("no target column") && msg.contains("';'"),
        "{msg}"
    );
    // A header with commas but rows with semicolons.
    let msg = csv_err("a,y\n1;2,1\n");
    assert!(msg.contains("\"1;2\"") && msg.contains("';'"), "{msg}");
    // A plain bad number gets no separator note.
    let msg = csv_err("a,y\nx,1\n");
    assert!(!msg.contains("separated"), "{msg}");
}

#[test]
fn load_csv_counts_lines_in_files_with_cr_line_ends() {
    // The CSV reader counts only \n, so every row of a CR-only file was "line 1".
    let msg = csv_err("a,b\r1,2\r3,x\r");
    assert!(msg.contains("line 3, column 2 (b)"), "{msg}");
    let msg = csv_err("a,b\r1,2\r3\r");
    assert!(msg.contains("line 3: the row has 1 fields"), "{msg}");
    // Quoted line ends inside a field still count as lines.
    let msg = csv_err("a,b\n\"x\ny\",2\n3,z\n");
    assert!(msg.contains("line 2, column 1"), "{msg}");
    let msg = csv_err("a,b\n\"1\n\",2\n3,z\n");
    assert!(msg.contains("line 4, column 2"), "{msg}");
}

#[test]
fn load_csv_errors_quote_long_text_in_part() {
    // A 100,000-character name or field is cut to its first 60 characters in the message.
    let long = "n".repeat(100_000);
    let msg = csv_err(&format!("{long},y\n{long},1\n"));
    assert!(
        msg.contains(&format!("{}...", "n".repeat(60))),
        "{}",
        &msg[..200]
    );
    assert!(msg.len() < 400, "{} bytes", msg.len());
    let msg = csv_err(&format!("{long},{long}\n1,1\n"));
    assert!(
        msg.contains("more than once") && msg.len() < 400,
        "{} bytes",
        msg.len()
    );
}

#[test]
fn load_csv_of_a_directory_says_so() {
    let err = load_csv(std::env::temp_dir(), TargetColumn::Last).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, DataError::Io { .. }), "{err:?}");
    assert!(msg.contains("cannot read"), "{msg}");
}

#[test]
fn builtin_data_sets_are_compiled_in() {
    // U6: builtin() read data/ through a path fixed at build time; now the text is embedded.
    for name in BUILTIN_NAMES {
        let text = builtin_csv(name).unwrap();
        let file =
            std::fs::read_to_string(perturb_nn::data::data_dir().join(format!("{name}.csv")))
                .unwrap();
        assert_eq!(text, file, "{name}");
    }
    assert!(builtin_csv("iris.csv").is_none());
}

// ---------------------------------------------------------------------------------------------
// Split, standardize, batch
// ---------------------------------------------------------------------------------------------

/// n rows with x = (i, 10 i) and y = i, so each row's identity is visible in every part.
fn indexed(n: usize) -> Dataset<f64> {
    let x: Vec<f64> = (0..n).flat_map(|i| [i as f64, 10.0 * i as f64]).collect();
    let y: Vec<f64> = (0..n).map(|i| i as f64).collect();
    Dataset::new(
        Tensor::from_vec(x, &[n, 2]).unwrap(),
        Tensor::from_vec(y, &[n]).unwrap(),
        vec!["i".into(), "ten_i".into()],
        "id".into(),
    )
    .unwrap()
}

/// The row ids of a data set made by `indexed`, checking that x and y stayed together.
fn ids(d: &Dataset<f64>) -> Vec<usize> {
    (0..d.len())
        .map(|r| {
            let id = d.y.get(&[r]).unwrap();
            assert_eq!(d.x.get(&[r, 0]), Some(id));
            assert_eq!(d.x.get(&[r, 1]), Some(10.0 * id));
            id as usize
        })
        .collect()
}

#[test]
fn split_sizes_disjointness_and_seed() {
    let d = indexed(100);
    let (train, test) = train_test_split(&d, 0.25, 5).unwrap();
    // round(100 * 0.25) = 25 test rows, 75 train rows.
    assert_eq!((train.len(), test.len()), (75, 25));
    let mut all: Vec<usize> = ids(&train).into_iter().chain(ids(&test)).collect();
    all.sort_unstable();
    assert_eq!(
        all,
        (0..100).collect::<Vec<_>>(),
        "parts must be disjoint and cover"
    );
    // Shuffled: the test part is not simply the first or last 25 rows.
    let test_ids = ids(&test);
    assert!(test_ids.iter().any(|&i| i >= 25) && test_ids.iter().any(|&i| i < 75));
    // Seeded.
    let (_, again) = train_test_split(&d, 0.25, 5).unwrap();
    let (_, other) = train_test_split(&d, 0.25, 6).unwrap();
    assert_eq!(ids(&again), test_ids);
    assert_ne!(ids(&other), test_ids);
    assert_eq!(train.feature_names, d.feature_names);
}

#[test]
fn split_errors() {
    let d = indexed(10);
    for fraction in [0.0, 1.0, -0.2, 1.5, f64::NAN] {
        let msg = train_test_split(&d, fraction, 0).unwrap_err().to_string();
        assert!(
            msg.contains("train_test_split") && msg.contains("test_fraction"),
            "{msg}"
        );
    }
    // round(10 * 0.01) = 0 test rows; round(10 * 0.98) = 10 leaves no training rows; one row
    // can never be split.
    for (n, fraction) in [(10, 0.01), (10, 0.98), (1, 0.5)] {
        let msg = train_test_split(&indexed(n), fraction, 0)
            .unwrap_err()
            .to_string();
        assert!(msg.contains("too few rows"), "{msg}");
    }
    // Inconsistent public fields are an error, not a panic.
    let mut bad = indexed(4);
    bad.y = Tensor::zeros(&[3]);
    let msg = train_test_split(&bad, 0.5, 0).unwrap_err().to_string();
    assert!(
        msg.contains("train_test_split") && msg.contains("y must have shape"),
        "{msg}"
    );
}

fn column_stats(x: &Tensor<f64>, j: usize) -> (f64, f64) {
    let (n, d) = (x.shape()[0], x.shape()[1]);
    let col: Vec<f64> = (0..n).map(|i| x.as_slice()[i * d + j]).collect();
    let mean = col.iter().sum::<f64>() / n as f64;
    let var = col.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n as f64;
    (mean, var.sqrt())
}

#[test]
fn standardizer_fits_on_training_part_only() {
    let d = builtin("breast_cancer").unwrap();
    let (train, test) = train_test_split(&d, 0.3, 2).unwrap();
    let s = Standardizer::fit(&train.x).unwrap();
    let train_z = s.transform(&train.x).unwrap();
    let test_z = s.transform(&test.x).unwrap();
    let mut test_mean_off = 0.0_f64;
    for j in 0..d.n_features() {
        let (m, sd) = column_stats(&train_z, j);
        assert!(m.abs() < 1e-12, "feature {j}: mean {m}");
        assert!((sd - 1.0).abs() < 1e-12, "feature {j}: std {sd}");
        // The fitted statistics are the training part's, not the test part's or the whole's.
        let (train_mean, _) = column_stats(&train.x, j);
        assert!((s.mean()[j] - train_mean).abs() <= 1e-12 * train_mean.abs().max(1.0));
        test_mean_off = test_mean_off.max(column_stats(&test_z, j).0.abs());
    }
    // The test part is transformed with the training statistics, so its standardized means are
    // not all 0: a held-out 30% sample of 569 rows differs from the training means by
    // sampling error (order 1/sqrt(171) ~ 0.08 standard deviations), far above 1e-6.
    assert!(test_mean_off > 1e-6, "{test_mean_off}");
    // inverse_transform undoes transform.
    assert!(s
        .inverse_transform(&test_z)
        .unwrap()
        .all_close(&test.x, 1e-9));
}

#[test]
fn standardizer_constant_feature_and_errors() {
    // Column 1 is constant 0.1: its std is 1 (not 0), so it maps to 0 without NaN.
    let x = Tensor::from_vec(vec![1.0, 0.1, 2.0, 0.1, 3.0, 0.1], &[3, 2]).unwrap();
    let s = Standardizer::fit(&x).unwrap();
    assert_eq!(s.std()[1], 1.0);
    assert_eq!(s.mean()[1], 0.1);
    let z = s.transform(&x).unwrap();
    for i in 0..3 {
        assert_eq!(z.get(&[i, 1]), Some(0.0));
    }
    // Column 0 = 1, 2, 3: mean 2, population std sqrt(2/3).
    assert!((s.std()[0] - (2.0_f64 / 3.0).sqrt()).abs() < 1e-15);

    assert!(Standardizer::fit(&Tensor::<f64>::zeros(&[0, 2])).is_err());
    assert!(Standardizer::fit(&Tensor::<f64>::zeros(&[4])).is_err());
    let msg = s
        .transform(&Tensor::zeros(&[2, 3]))
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("Standardizer::transform") && msg.contains("(n, 2)"),
        "{msg}"
    );
    let msg = s
        .inverse_transform(&Tensor::zeros(&[2]))
        .unwrap_err()
        .to_string();
    assert!(msg.contains("Standardizer::inverse_transform"), "{msg}");
}

#[test]
fn standardizer_neither_overflows_nor_underflows() {
    // S2: sum((v - m)^2) overflowed for features of size 1e160 (std inf: the feature vanished)
    // and underflowed for 1e-200 (std 0: NaN); a column of +-1e308 had mean inf. The same data
    // at scale 1 is the reference: standardising does not depend on the scale.
    let base: [f64; 6] = [0.3, -1.2, 2.5, 0.7, -0.4, 1.9];
    let unit = Standardizer::fit(&Tensor::from_vec(base.to_vec(), &[6, 1]).unwrap()).unwrap();
    for scale in [1e160_f64, 1e-200, 1e300, 1e-310] {
        let x = Tensor::from_vec(base.iter().map(|v| v * scale).collect(), &[6, 1]).unwrap();
        let s = Standardizer::fit(&x).unwrap();
        let (m, sd) = (s.mean()[0], s.std()[0]);
        assert!(
            m.is_finite() && sd.is_finite() && sd > 0.0,
            "{scale}: {m} {sd}"
        );
        let rel = if scale < 1e-300 { 1e-9 } else { 1e-14 };
        assert!(
            (sd / scale - unit.std()[0]).abs() < rel * unit.std()[0],
            "{scale}: {sd}"
        );
        assert!((m / scale - unit.mean()[0]).abs() < rel, "{scale}: {m}");
        let z = s.transform(&x).unwrap();
        let z1 = unit
            .transform(&Tensor::from_vec(base.to_vec(), &[6, 1]).unwrap())
            .unwrap();
        assert!(z.all_close(&z1, 1e-9), "{scale}: {:?}", z.to_vec());
    }
    // Values at the ends of the range: the mean and std stay finite, and so does the
    // standardised column.
    let x = Tensor::from_vec(vec![1.7e308, -1.7e308, 1.7e308, f64::MAX], &[4, 1]).unwrap();
    let s = Standardizer::fit(&x).unwrap();
    assert!(s.mean()[0].is_finite() && s.std()[0].is_finite(), "{s:?}");
    let z = s.transform(&x).unwrap().to_vec();
    assert!(z.iter().all(|v| v.is_finite()), "{z:?}");
    // In f32 too (the sums are formed in f64).
    let x = Tensor::from_vec(vec![3e38_f32, -3e38, 1e38], &[3, 1]).unwrap();
    let s = Standardizer::fit(&x).unwrap();
    assert!(s.mean()[0].is_finite() && s.std()[0].is_finite(), "{s:?}");
}

#[test]
fn standardizer_rejects_a_column_it_cannot_standardise() {
    // A NaN or infinite value gives no mean: an error naming the column and row.
    let x = Tensor::from_vec(vec![1.0, 2.0, 3.0, f64::NAN], &[2, 2]).unwrap();
    let msg = Standardizer::fit(&x).unwrap_err().to_string();
    assert!(
        msg.contains("Standardizer::fit") && msg.contains("column 1"),
        "{msg}"
    );
    assert!(msg.contains("row 1") && msg.contains("NaN"), "{msg}");
    let names = vec!["height".to_string(), "weight".to_string()];
    let msg = Standardizer::fit_named(&x, &names).unwrap_err().to_string();
    assert!(msg.contains("\"weight\""), "{msg}");
    // f32 values whose spread is below f32's smallest positive number: std would be 0.
    let tiny = f32::from_bits(1);
    let x = Tensor::from_vec(vec![0.0_f32, tiny, 0.0, 0.0], &[4, 1]).unwrap();
    let msg = Standardizer::fit(&x).unwrap_err().to_string();
    assert!(
        msg.contains("column 0") && msg.contains("standard deviation"),
        "{msg}"
    );
    // A constant column is not an error: std 1, so it maps to 0.
    let x = Tensor::from_vec(vec![1e-300, 1e-300], &[2, 1]).unwrap();
    let s = Standardizer::fit(&x).unwrap();
    assert_eq!((s.mean()[0], s.std()[0]), (1e-300, 1.0));
}

#[test]
fn standardizer_from_saved_parts_is_checked() {
    // S2: a model file's feature_std of 0, NaN or a negative value, or a mean of inf, gave
    // silent constant predictions; from_parts lets a loader check them.
    for (mean, std, expected) in [
        (vec![0.0, 1.0], vec![1.0, 0.0], "feature 1: std 0"),
        (vec![0.0], vec![f64::NAN], "feature 0: std NaN"),
        (vec![0.0], vec![-2.0], "feature 0: std -2"),
        (vec![f64::INFINITY], vec![1.0], "feature 0: mean inf"),
        (vec![0.0], vec![f64::INFINITY], "std inf"),
        (
            vec![0.0, 0.0],
            vec![1.0],
            "2 means for 1 standard deviations",
        ),
    ] {
        let msg = Standardizer::from_parts(mean, std).unwrap_err().to_string();
        assert!(
            msg.contains("Standardizer::from_parts") && msg.contains(expected),
            "{msg}"
        );
    }
    let x = Tensor::from_vec(vec![1.0, 7.0, 3.0, -1.0], &[2, 2]).unwrap();
    let fitted = Standardizer::fit(&x).unwrap();
    let rebuilt = Standardizer::from_parts(fitted.mean().to_vec(), fitted.std().to_vec()).unwrap();
    assert_eq!(rebuilt, fitted);
}

#[test]
fn class_labels_checks_whole_numbers_below_the_cap() {
    // C3: a label of 1e9 asked for a billion output units; one >= 2^64 saturated `as usize`
    // and wrapped the class count to 0.
    let (labels, classes) = class_labels(&Tensor::vector(&[0.0_f64, 3.0, 1.0])).unwrap();
    assert_eq!((labels, classes), (vec![0, 3, 1], 4));
    let top = (MAX_CLASSES - 1) as f64;
    assert_eq!(
        class_labels(&Tensor::vector(&[top])).unwrap().1,
        MAX_CLASSES
    );
    for (bad, shown) in [
        (1e9, "1000000000"),
        (1.9e19, "19000000000000000000"),
        (MAX_CLASSES as f64, "65536"),
        (-1.0, "-1"),
        (2.5, "2.5"),
        (f64::NAN, "NaN"),
    ] {
        let msg = class_labels(&Tensor::vector(&[0.0, bad]))
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("class_labels") && msg.contains("row 1"),
            "{msg}"
        );
        assert!(msg.contains(&format!("holds {shown};")), "{msg}");
    }
    let (labels, classes) = class_labels(&Tensor::<f32>::zeros(&[0])).unwrap();
    assert_eq!((labels.len(), classes), (0, 0));
}

#[test]
fn batches_cover_every_row_once_and_reshuffle_per_epoch() {
    let d = indexed(103);
    let mut orders = Vec::new();
    for epoch in 0..3 {
        let batches = Batches::new(&d, 10, 1000 + epoch).unwrap();
        // ceil(103 / 10) = 11 batches: ten of 10 and a last one of 3.
        assert_eq!(batches.len(), 11);
        let mut seen = Vec::new();
        let mut sizes = Vec::new();
        for (x, y) in batches {
            assert_eq!(x.shape(), &[y.len(), 2]);
            sizes.push(y.len());
            let batch = Dataset::new(x, y, d.feature_names.clone(), "id".into()).unwrap();
            seen.extend(ids(&batch));
        }
        assert_eq!(sizes, [vec![10; 10], vec![3]].concat());
        let order = seen.clone();
        seen.sort_unstable();
        assert_eq!(seen, (0..103).collect::<Vec<_>>(), "epoch {epoch}");
        orders.push(order);
    }
    assert_ne!(orders[0], orders[1]);
    assert_ne!(orders[1], orders[2]);
    assert_ne!(orders[0], (0..103).collect::<Vec<_>>(), "not shuffled");
    // Same seed, same order.
    let again: Vec<usize> = Batches::new(&d, 10, 1000).unwrap().order().to_vec();
    assert_eq!(again, orders[0]);
}

#[test]
fn batches_errors_and_edge_cases() {
    let d = indexed(5);
    let msg = Batches::new(&d, 0, 0).unwrap_err().to_string();
    assert!(
        msg.contains("Batches::new") && msg.contains("batch_size"),
        "{msg}"
    );
    // A batch larger than the data set gives one batch with every row.
    let all: Vec<_> = Batches::new(&d, 64, 0).unwrap().collect();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].1.len(), 5);
    // An empty data set gives no batches.
    assert_eq!(Batches::new(&indexed(0), 4, 0).unwrap().count(), 0);
    // Inconsistent fields are an error.
    let mut bad = indexed(4);
    bad.feature_names.pop();
    assert!(Batches::new(&bad, 2, 0).is_err());
}
