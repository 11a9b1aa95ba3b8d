//! Data sets: seeded toy generators, CSV loading, the bundled real data sets, splitting,
//! standardization and shuffled mini-batches.
//!
//! **Shape convention.** A [`Dataset`] holds features `x` of shape `(n, d)` (one row per example)
//! and targets `y` of shape `(n)` (one value per example, a class label or a regression target).
//! Reshape `y` to `(n, 1)` with [`Tensor::reshape`] where a model wants a column.
//!
//! Everything random takes a `seed`: the same seed gives the same data, shuffle or batches.
//!
//! ```
//! use perturb_nn::data::{train_test_split, two_moons, Batches, Dataset, Standardizer};
//!
//! let data: Dataset<f64> = two_moons(100, 0.1, 7).unwrap();
//! let (train, test) = train_test_split(&data, 0.2, 1).unwrap();
//! assert_eq!((train.len(), test.len()), (80, 20));
//! let scaler = Standardizer::fit(&train.x).unwrap();
//! let x_train = scaler.transform(&train.x).unwrap();
//! let batches = Batches::new(&Dataset { x: x_train, ..train }, 32, 0).unwrap();
//! let sizes: Vec<usize> = batches.map(|(x, _)| x.shape()[0]).collect();
//! assert_eq!(sizes, vec![32, 32, 16]);
//! ```

use std::cell::Cell;
use std::f64::consts::PI;
use std::fmt;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use perturb::tensor::{Element, Tensor};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

/// What went wrong while making, loading or slicing a data set. Each message names the
/// operation or file and the cause.
///
/// ```
/// let err = perturb_nn::data::builtin("mnist").unwrap_err();
/// assert!(err.to_string().contains("iris"));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DataError {
    /// The file does not exist.
    #[error("{path}: file not found")]
    MissingFile {
        /// The file asked for.
        path: String,
    },
    /// The file exists but could not be read.
    #[error("{path}: cannot read the file: {source}")]
    Io {
        /// The file asked for.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file has no header row.
    #[error("{path}: the file is empty (expected a header row)")]
    EmptyFile {
        /// The file.
        path: String,
    },
    /// The file has a header row but no data rows.
    #[error("{path}: the file has a header row but no data rows")]
    NoRows {
        /// The file.
        path: String,
    },
    /// The CSV reader failed (for example on text that is not UTF-8).
    #[error("{path}, line {line}: {message}")]
    Csv {
        /// The file.
        path: String,
        /// The 1-based line where reading stopped.
        line: u64,
        /// The reader's message.
        message: String,
    },
    /// A row has a different number of fields from the header.
    #[error("{path}, line {line}: the row has {found} fields but the header has {expected}")]
    RaggedRow {
        /// The file.
        path: String,
        /// The 1-based line of the row.
        line: u64,
        /// The number of fields in the header.
        expected: usize,
        /// The number of fields in the row.
        found: usize,
    },
    /// A field is not a finite number.
    #[error(
        "{path}, line {line}, column {column} ({column_name}): \"{text}\" is not a finite \
         number{hint}"
    )]
    NonNumeric {
        /// The file.
        path: String,
        /// The 1-based line of the row.
        line: u64,
        /// The 1-based column.
        column: usize,
        /// The column's header.
        column_name: String,
        /// The field's text (its first 60 characters).
        text: String,
        /// A note on the likely cause (a file separated by `;` or tabs), or empty.
        hint: String,
    },
    /// A row (CSV record) is longer than [`MAX_RECORD_BYTES`]: not a CSV file, or one with no
    /// line ends.
    #[error(
        "{path}, line {line}: a row longer than {limit} bytes; is this a CSV file with one row \
         per line?"
    )]
    RecordTooLong {
        /// The file.
        path: String,
        /// The 1-based line where the row starts.
        line: u64,
        /// The limit, [`MAX_RECORD_BYTES`].
        limit: u64,
    },
    /// The header row is unusable: an empty or repeated column name, a name that is not UTF-8,
    /// or no column besides the target.
    #[error("{path}, line 1 (the header): {message}")]
    BadHeader {
        /// The file.
        path: String,
        /// What is wrong, naming the column(s).
        message: String,
    },
    /// The target column asked for is not in the header.
    #[error("{path}: no target column {column}; the columns are: {available}{hint}")]
    MissingTarget {
        /// The file.
        path: String,
        /// The column asked for (a quoted name or `#index`).
        column: String,
        /// The header's columns, comma-separated (the first 20 of a longer header).
        available: String,
        /// A note on the likely cause (a file separated by `;` or tabs), or empty.
        hint: String,
    },
    /// [`builtin`] was asked for a data set it does not have.
    #[error("builtin: unknown data set \"{name}\"; the known ones are: {known}")]
    UnknownBuiltin {
        /// The name asked for.
        name: String,
        /// The known names, comma-separated.
        known: String,
    },
    /// A label that its task does not allow ([`class_labels`], [`check_binary_labels`]).
    #[error("{op}: row {row} holds {value}; {rule}")]
    BadLabel {
        /// The function that was called.
        op: &'static str,
        /// The 0-based row of the first bad label.
        row: usize,
        /// The label.
        value: f64,
        /// What the labels must be.
        rule: String,
    },
    /// An argument is out of range, or a tensor has the wrong shape.
    #[error("{op}: {message}")]
    InvalidArgument {
        /// The function that was called.
        op: &'static str,
        /// What was wrong.
        message: String,
    },
    /// A tensor could not be built.
    #[error(transparent)]
    Tensor(#[from] perturb::Error),
}

fn invalid(op: &'static str, message: impl Into<String>) -> DataError {
    DataError::InvalidArgument {
        op,
        message: message.into(),
    }
}

/// A data set: features `x` of shape `(n, d)`, targets `y` of shape `(n)`, and their names.
///
/// The fields are public; functions that take a data set check that the shapes agree and return
/// an error if they do not. [`Dataset::new`] checks them up front.
///
/// ```
/// use perturb::tensor::Tensor;
/// use perturb_nn::data::Dataset;
///
/// let x = Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0], &[2, 2]).unwrap();
/// let y = Tensor::vector(&[0.0, 1.0]);
/// let d = Dataset::new(x, y, vec!["a".into(), "b".into()], "label".into()).unwrap();
/// assert_eq!((d.len(), d.n_features()), (2, 2));
/// ```
#[derive(Clone)]
pub struct Dataset<T> {
    /// Features, `(n, d)`.
    pub x: Tensor<T>,
    /// Targets, `(n)`.
    pub y: Tensor<T>,
    /// One name per feature column (`d` names).
    pub feature_names: Vec<String>,
    /// The target's name.
    pub target_name: String,
}

impl<T: Element> fmt::Debug for Dataset<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dataset")
            .field("x", &self.x)
            .field("y", &self.y)
            .field("feature_names", &self.feature_names)
            .field("target_name", &self.target_name)
            .finish()
    }
}

impl<T: Element> Dataset<T> {
    /// A data set, after checking that `x` is `(n, d)`, `y` is `(n)` and there are `d` names.
    ///
    /// ```
    /// use perturb::tensor::Tensor;
    /// use perturb_nn::data::Dataset;
    /// let x = Tensor::<f64>::zeros(&[3, 2]);
    /// let bad = Dataset::new(x, Tensor::zeros(&[2]), vec!["a".into(), "b".into()], "y".into());
    /// assert!(bad.unwrap_err().to_string().contains("Dataset::new"));
    /// ```
    pub fn new(
        x: Tensor<T>,
        y: Tensor<T>,
        feature_names: Vec<String>,
        target_name: String,
    ) -> Result<Self, DataError> {
        let d = Dataset {
            x,
            y,
            feature_names,
            target_name,
        };
        d.check("Dataset::new")?;
        Ok(d)
    }

    /// The number of examples, `n` (the length of the first axis of `x`; 0 if `x` is not 2-D).
    ///
    /// ```
    /// let d: perturb_nn::data::Dataset<f64> = perturb_nn::data::xor(8, 0.0, 0).unwrap();
    /// assert_eq!(d.len(), 8);
    /// ```
    pub fn len(&self) -> usize {
        match self.x.shape() {
            [n, _] => *n,
            _ => 0,
        }
    }

    /// Whether there are no examples.
    ///
    /// ```
    /// let d: perturb_nn::data::Dataset<f32> = perturb_nn::data::xor(0, 0.0, 0).unwrap();
    /// assert!(d.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The number of features, `d` (0 if `x` is not 2-D).
    ///
    /// ```
    /// let d: perturb_nn::data::Dataset<f64> = perturb_nn::data::circles(10, 0.0, 0.5, 0).unwrap();
    /// assert_eq!(d.n_features(), 2);
    /// ```
    pub fn n_features(&self) -> usize {
        match self.x.shape() {
            [_, d] => *d,
            _ => 0,
        }
    }

    /// Checks the shapes, naming `op` in the error.
    fn check(&self, op: &'static str) -> Result<(usize, usize), DataError> {
        let (n, d) = match self.x.shape() {
            [n, d] => (*n, *d),
            s => return Err(invalid(op, format!("x must be (n, d), found shape {s:?}"))),
        };
        if self.y.shape() != [n] {
            return Err(invalid(
                op,
                format!(
                    "y must have shape [{n}] to match x {:?}, found {:?}",
                    self.x.shape(),
                    self.y.shape()
                ),
            ));
        }
        if self.feature_names.len() != d {
            return Err(invalid(
                op,
                format!(
                    "{} feature names for {d} features",
                    self.feature_names.len()
                ),
            ));
        }
        Ok((n, d))
    }

    /// The rows `rows` (in that order) as a new data set; the indices are known to be in range.
    fn select(&self, rows: &[usize], d: usize) -> Result<Self, DataError> {
        let (xs, ys) = (self.x.as_slice(), self.y.as_slice());
        let mut x = Vec::with_capacity(rows.len() * d);
        let mut y = Vec::with_capacity(rows.len());
        for &r in rows {
            x.extend_from_slice(&xs[r * d..(r + 1) * d]);
            y.push(ys[r]);
        }
        Ok(Dataset {
            x: Tensor::from_vec(x, &[rows.len(), d])?,
            y: Tensor::from_vec(y, &[rows.len()])?,
            feature_names: self.feature_names.clone(),
            target_name: self.target_name.clone(),
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Generators
// ---------------------------------------------------------------------------------------------

/// A standard normal sample (Box-Muller).
fn normal(rng: &mut StdRng) -> f64 {
    let u1: f64 = 1.0 - rng.random::<f64>(); // in (0, 1], so ln is finite
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (2.0 * PI * u2).cos()
}

/// The most rows the generators ([`two_moons`], [`circles`], [`spirals`], [`xor`]) make:
/// 2^26, about 67 million (some 5 GB while generating). More is an error, not an allocation
/// abort (or, for `usize::MAX`, a capacity-overflow panic).
///
/// ```
/// use perturb_nn::data::{xor, Dataset, MAX_GENERATED_ROWS};
/// assert!(xor::<f32>(MAX_GENERATED_ROWS + 1, 0.1, 0).is_err());
/// assert!(xor::<f32>(usize::MAX, 0.1, 0).unwrap_err().to_string().contains("xor"));
/// ```
pub const MAX_GENERATED_ROWS: usize = 1 << 26;

/// Checks a generator's row count and noise.
fn check_noise(op: &'static str, n: usize, noise: f64) -> Result<(), DataError> {
    if n > MAX_GENERATED_ROWS {
        return Err(invalid(
            op,
            format!("{n} rows asked for; at most {MAX_GENERATED_ROWS} are made"),
        ));
    }
    if noise.is_finite() && noise >= 0.0 {
        Ok(())
    } else {
        Err(invalid(
            op,
            format!("noise must be finite and >= 0, got {noise}"),
        ))
    }
}

/// Builds a 2-feature data set from points and labels: adds N(0, noise^2) to each coordinate,
/// then shuffles the rows, all from one generator seeded with `seed`.
fn finish<T: Element>(
    mut points: Vec<([f64; 2], f64)>,
    noise: f64,
    seed: u64,
) -> Result<Dataset<T>, DataError> {
    let mut rng = StdRng::seed_from_u64(seed);
    for (p, _) in points.iter_mut() {
        p[0] += noise * normal(&mut rng);
        p[1] += noise * normal(&mut rng);
    }
    points.shuffle(&mut rng);
    let n = points.len();
    let x: Vec<f64> = points.iter().flat_map(|(p, _)| *p).collect();
    let y: Vec<f64> = points.iter().map(|(_, l)| *l).collect();
    Ok(Dataset {
        x: Tensor::from_vec(x, &[n, 2])?.cast(),
        y: Tensor::from_vec(y, &[n])?.cast(),
        feature_names: vec!["x0".into(), "x1".into()],
        target_name: "label".into(),
    })
}

/// `k` evenly spaced values from `start` to `end`, both included (`start` alone when `k == 1`).
fn linspace(start: f64, end: f64, k: usize) -> impl Iterator<Item = f64> {
    let step = if k > 1 {
        (end - start) / (k - 1) as f64
    } else {
        0.0
    };
    (0..k).map(move |i| start + step * i as f64)
}

/// Two interleaving half circles, as scikit-learn's `make_moons`: `n / 2` points (rounded down)
/// of class 0 on the upper half circle `(cos t, sin t)`, `t` in `[0, pi]`, and the rest of class 1
/// on `(1 - cos t, 0.5 - sin t)`; each coordinate gets Gaussian noise of standard deviation
/// `noise`, and the rows are shuffled. An error if `noise` is negative or not finite, or `n` is over [`MAX_GENERATED_ROWS`].
///
/// ```
/// use perturb_nn::data::{two_moons, Dataset};
/// let d: Dataset<f64> = two_moons(200, 0.0, 3).unwrap();
/// assert_eq!(d.x.shape(), &[200, 2]);
/// // Without noise, every class-0 point is on the unit circle.
/// for i in 0..200 {
///     let (a, b) = (d.x.get(&[i, 0]).unwrap(), d.x.get(&[i, 1]).unwrap());
///     if d.y.get(&[i]) == Some(0.0) {
///         assert!((a * a + b * b - 1.0).abs() < 1e-12);
///     }
/// }
/// ```
pub fn two_moons<T: Element>(n: usize, noise: f64, seed: u64) -> Result<Dataset<T>, DataError> {
    check_noise("two_moons", n, noise)?;
    let n_out = n / 2;
    let n_in = n - n_out;
    let mut points = Vec::with_capacity(n);
    points.extend(linspace(0.0, PI, n_out).map(|t| ([t.cos(), t.sin()], 0.0)));
    points.extend(linspace(0.0, PI, n_in).map(|t| ([1.0 - t.cos(), 0.5 - t.sin()], 1.0)));
    finish(points, noise, seed)
}

/// Two concentric circles, as scikit-learn's `make_circles`: `n / 2` points (rounded down) of
/// class 0 on the unit circle and the rest of class 1 on the circle of radius `factor`, evenly
/// spaced in angle; Gaussian noise of standard deviation `noise` on each coordinate; shuffled.
/// An error if `factor` is not in `(0, 1)` `noise` is negative or not finite, or `n` is over [`MAX_GENERATED_ROWS`].
///
/// ```
/// use perturb_nn::data::{circles, Dataset};
/// let d: Dataset<f64> = circles(10, 0.0, 0.5, 0).unwrap();
/// let r = (d.x.get(&[0, 0]).unwrap().powi(2) + d.x.get(&[0, 1]).unwrap().powi(2)).sqrt();
/// let expected = if d.y.get(&[0]) == Some(0.0) { 1.0 } else { 0.5 };
/// assert!((r - expected).abs() < 1e-12);
/// assert!(circles::<f64>(10, 0.0, 1.5, 0).is_err());
/// ```
pub fn circles<T: Element>(
    n: usize,
    noise: f64,
    factor: f64,
    seed: u64,
) -> Result<Dataset<T>, DataError> {
    check_noise("circles", n, noise)?;
    if !(factor > 0.0 && factor < 1.0) {
        return Err(invalid(
            "circles",
            format!("factor must be in (0, 1), got {factor}"),
        ));
    }
    let n_out = n / 2;
    let n_in = n - n_out;
    let ring = |k: usize, r: f64, label: f64| {
        (0..k).map(move |i| {
            let t = 2.0 * PI * i as f64 / k as f64;
            ([r * t.cos(), r * t.sin()], label)
        })
    };
    let points = ring(n_out, 1.0, 0.0)
        .chain(ring(n_in, factor, 1.0))
        .collect();
    finish(points, noise, seed)
}

/// Two interleaved spiral arms: `n / 2` points (rounded down) of class 0 at
/// `(s cos 3 pi s, s sin 3 pi s)` for `s` evenly spaced in `[0.1, 1]` (one and a half turns), and
/// the rest of class 1 on the same arm rotated by half a turn (negated); Gaussian noise of
/// standard deviation `noise` on each coordinate; shuffled. An error if `noise` is negative or
/// not finite, or `n` is over [`MAX_GENERATED_ROWS`].
///
/// ```
/// use perturb_nn::data::{spirals, Dataset};
/// let d: Dataset<f32> = spirals(50, 0.05, 1).unwrap();
/// assert_eq!(d.x.shape(), &[50, 2]);
/// assert_eq!(d.y.as_slice().iter().filter(|&&l| l == 1.0).count(), 25);
/// ```
pub fn spirals<T: Element>(n: usize, noise: f64, seed: u64) -> Result<Dataset<T>, DataError> {
    check_noise("spirals", n, noise)?;
    let n0 = n / 2;
    let n1 = n - n0;
    let arm = |k: usize, sign: f64, label: f64| {
        linspace(0.1, 1.0, k).map(move |s| {
            let t = 3.0 * PI * s;
            ([sign * s * t.cos(), sign * s * t.sin()], label)
        })
    };
    let points = arm(n0, 1.0, 0.0).chain(arm(n1, -1.0, 1.0)).collect();
    finish(points, noise, seed)
}

/// The XOR problem: points uniform in the four quadrants of `[-1, 1]^2` in turn (so the
/// quadrants, and the classes, are balanced to within one point), labelled 1 where the two
/// coordinates have different signs and 0 where they have the same sign (labels are set before
/// the noise); Gaussian noise of standard deviation `noise` on each coordinate; shuffled. An
/// error if `noise` is negative or not finite, or `n` is over [`MAX_GENERATED_ROWS`].
///
/// ```
/// use perturb_nn::data::{xor, Dataset};
/// let d: Dataset<f64> = xor(100, 0.0, 5).unwrap();
/// for i in 0..100 {
///     let prod = d.x.get(&[i, 0]).unwrap() * d.x.get(&[i, 1]).unwrap();
///     assert_eq!(d.y.get(&[i]).unwrap(), if prod < 0.0 { 1.0 } else { 0.0 });
/// }
/// ```
pub fn xor<T: Element>(n: usize, noise: f64, seed: u64) -> Result<Dataset<T>, DataError> {
    check_noise("xor", n, noise)?;
    // The quadrant positions use their own generator, so that `finish` draws noise and the
    // shuffle from a fresh one (both are seeded from `seed`).
    let mut rng = StdRng::seed_from_u64(seed ^ 0x9e37_79b9_7f4a_7c15);
    // Quadrant signs in turn: (+,+) and (-,-) are class 0, (-,+) and (+,-) class 1. Magnitudes
    // are in (0, 1] so that no point lies on an axis.
    const SIGNS: [(f64, f64, f64); 4] = [
        (1.0, 1.0, 0.0),
        (-1.0, 1.0, 1.0),
        (-1.0, -1.0, 0.0),
        (1.0, -1.0, 1.0),
    ];
    let points = (0..n)
        .map(|i| {
            let (sa, sb, label) = SIGNS[i % 4];
            let a = 1.0 - rng.random::<f64>();
            let b = 1.0 - rng.random::<f64>();
            ([sa * a, sb * b], label)
        })
        .collect();
    finish(points, noise, seed)
}

// ---------------------------------------------------------------------------------------------
// CSV
// ---------------------------------------------------------------------------------------------

/// Which column of a CSV file is the target.
///
/// ```
/// use perturb_nn::data::TargetColumn;
/// assert_eq!(TargetColumn::default(), TargetColumn::Last);
/// let by_name = TargetColumn::Name("species".into());
/// assert_eq!(by_name.to_string(), "\"species\"");
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum TargetColumn {
    /// The last column (the default).
    #[default]
    Last,
    /// The column with this header.
    Name(String),
    /// The column at this 0-based index.
    Index(usize),
}

impl fmt::Display for TargetColumn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TargetColumn::Last => write!(f, "(last)"),
            TargetColumn::Name(name) => write!(f, "\"{name}\""),
            TargetColumn::Index(i) => write!(f, "#{i} (0-based)"),
        }
    }
}

/// The longest row (CSV record, header included) that [`load_csv`] and
/// [`load_csv_from_reader`] accept, in bytes: 4 MiB, room for about 200,000 numeric columns. A
/// longer one is an error rather than an unbounded allocation (`/dev/zero`, or a binary file,
/// is one endless record). Reading one record needs at most about 16 times this (a row of
/// empty fields: the CSV reader keeps 8 bytes per field, and doubles its buffers).
///
/// ```
/// assert_eq!(perturb_nn::data::MAX_RECORD_BYTES, 4 << 20);
/// ```
pub const MAX_RECORD_BYTES: u64 = 4 << 20;

/// Loads a CSV file with a header row into a data set of `f64`: the `target` column becomes `y`,
/// every other column (in file order) a feature. Every field must be a finite number
/// (surrounding spaces are allowed). The file is read as a stream straight into the numbers'
/// buffer: loading needs about the memory of the loaded numbers (8 bytes each), not of the text.
///
/// Errors name the file and the cause: a missing or unreadable file, an empty file or one with
/// no data rows, a header with an empty or repeated column name or with no column besides the
/// target, a row with a different number of fields from the header (with its line and both
/// counts) or longer than [`MAX_RECORD_BYTES`], a field that is not a number (with its line,
/// column number and name, and text), and a target column that is not in the header (with the
/// header's columns). Where the file seems to be separated by `;`, tabs or `|` rather than
/// commas, the error says so.
///
/// ```
/// use perturb_nn::data::{load_csv, TargetColumn};
/// let path = std::env::temp_dir().join("perturb_nn_doc_load_csv.csv");
/// std::fs::write(&path, "a,label,b\n1,0,2\n3,1,4\n").unwrap();
/// let d = load_csv(&path, TargetColumn::Name("label".into())).unwrap();
/// assert_eq!(d.x.to_vec(), vec![1.0, 2.0, 3.0, 4.0]);
/// assert_eq!(d.y.to_vec(), vec![0.0, 1.0]);
/// assert_eq!(d.feature_names, vec!["a", "b"]);
/// let err = load_csv(&path, TargetColumn::Name("class".into())).unwrap_err();
/// assert!(err.to_string().contains("a, label, b"));
/// # std::fs::remove_file(&path).ok();
/// ```
pub fn load_csv(path: impl AsRef<Path>, target: TargetColumn) -> Result<Dataset<f64>, DataError> {
    to_dataset(CsvReader::open(path)?, target)
}

/// [`load_csv`] on any byte stream: `source` names it in errors (a file name, `"stdin"`, ...).
/// The stream is read once, in order, through a buffer; the same checks and errors as
/// [`load_csv`] apply.
///
/// ```
/// use perturb_nn::data::{load_csv_from_reader, TargetColumn};
/// let text = "x, y\n1, 2\n3, 4\n";
/// let d = load_csv_from_reader(text.as_bytes(), "inline", TargetColumn::Last).unwrap();
/// assert_eq!((d.x.to_vec(), d.y.to_vec()), (vec![1.0, 3.0], vec![2.0, 4.0]));
/// let err = load_csv_from_reader("a;b\n1;2\n".as_bytes(), "semi", TargetColumn::Last)
///     .unwrap_err()
///     .to_string();
/// assert!(err.contains("semi") && err.contains("';'"), "{err}");
/// ```
pub fn load_csv_from_reader(
    reader: impl std::io::Read,
    source: &str,
    target: TargetColumn,
) -> Result<Dataset<f64>, DataError> {
    to_dataset(CsvReader::new(reader, source)?, target)
}

/// The data set of a CSV file whose header has been read: the target column as `y`, every
/// other column a feature.
fn to_dataset<R: std::io::Read>(
    csv: CsvReader<R>,
    target: TargetColumn,
) -> Result<Dataset<f64>, DataError> {
    let (path, header) = (csv.path.clone(), csv.header.clone());
    let width = header.len();
    let t = target_index(&path, &header, &target)?;
    if width == 1 {
        return Err(DataError::BadHeader {
            path,
            message: format!(
                "only one column (\"{}\") was found, the target, so there are no feature \
                 columns{}",
                excerpt(header[0].as_bytes()),
                separator_hint(header[0].as_bytes(), width)
            ),
        });
    }
    let (mut x, mut y) = (Vec::new(), Vec::new());
    let every: Vec<usize> = (0..width).collect();
    let rows = csv.read_columns(&every, |j, value| {
        if j == t {
            y.push(value);
        } else {
            x.push(value);
        }
    })?;
    x.shrink_to_fit();
    y.shrink_to_fit();
    let mut feature_names = header;
    let target_name = feature_names.remove(t);
    Ok(Dataset {
        x: Tensor::from_vec(x, &[rows, width - 1])?,
        y: Tensor::from_vec(y, &[rows])?,
        feature_names,
        target_name,
    })
}

/// A CSV file with a header row, read once as a stream: [`new`](Self::new) reads and checks
/// the header as [`load_csv`] does, [`read_columns`](Self::read_columns) then reads the
/// numbers of the columns asked for, straight into the caller's buffers, with [`load_csv`]'s
/// checks and errors (ragged rows, fields that are not finite numbers, rows longer than
/// [`MAX_RECORD_BYTES`], no data rows). For a program that needs only some columns of a file,
/// or a file without a target column (new data to predict on).
///
/// ```
/// use perturb_nn::data::CsvReader;
/// let text = "a, note, b\n1, x, 2\n3, y, 4\n";
/// let csv = CsvReader::new(text.as_bytes(), "inline").unwrap();
/// assert_eq!(csv.header(), ["a", "note", "b"]);
/// let mut b_then_a = Vec::new();
/// let rows = csv.read_columns(&[2, 0], |_, v| b_then_a.push(v)).unwrap();
/// assert_eq!((rows, b_then_a), (2, vec![2.0, 1.0, 4.0, 3.0]));
/// let csv = CsvReader::new(text.as_bytes(), "inline").unwrap();
/// let err = csv.read_columns(&[1], |_, _| {}).unwrap_err().to_string();
/// assert!(err.contains("inline, line 2, column 2 (note): \" x\" is not a finite number"), "{err}");
/// ```
pub struct CsvReader<R> {
    path: String,
    reader: csv::Reader<Bounded<R>>,
    limit: Rc<Cell<u64>>,
    header: Vec<String>,
}

impl CsvReader<std::fs::File> {
    /// Opens the file `path` and reads its header; an error names the file (not found, not
    /// readable, a folder, or a header [`new`](Self::new) refuses).
    ///
    /// ```
    /// let err = perturb_nn::data::CsvReader::open("no/such.csv").err().unwrap();
    /// assert_eq!(err.to_string(), "no/such.csv: file not found");
    /// ```
    pub fn open(path: impl AsRef<Path>) -> Result<Self, DataError> {
        let path = path.as_ref();
        let name = path.display().to_string();
        let file = std::fs::File::open(path).map_err(|source| {
            if source.kind() == std::io::ErrorKind::NotFound {
                DataError::MissingFile { path: name.clone() }
            } else {
                DataError::Io {
                    path: name.clone(),
                    source,
                }
            }
        })?;
        Self::new(file, &name)
    }
}

impl<R: std::io::Read> CsvReader<R> {
    /// Reads the header of the CSV text in `reader` (`source` names it in errors): an error if
    /// there is none, or a name is empty, repeated or not UTF-8.
    ///
    /// ```
    /// use perturb_nn::data::CsvReader;
    /// let err = CsvReader::new("a,a\n1,2\n".as_bytes(), "t.csv").err().unwrap().to_string();
    /// assert!(err.contains("t.csv, line 1 (the header)"), "{err}");
    /// ```
    pub fn new(reader: R, source: &str) -> Result<Self, DataError> {
        let path = source.to_string();
        // The reader may pull at most MAX_RECORD_BYTES past the end of the last complete
        // record (plus room for the CSV reader's own buffer), so that no record grows without
        // bound.
        let limit = Rc::new(Cell::new(RECORD_ALLOWANCE));
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(true)
            .from_reader(Bounded {
                inner: reader,
                read: 0,
                limit: Rc::clone(&limit),
            });
        let header = read_header(
            &path,
            reader.byte_headers().map_err(|e| csv_error(&path, e, 1))?,
        )?;
        limit.set(reader.position().byte() + RECORD_ALLOWANCE);
        Ok(CsvReader {
            path,
            reader,
            limit,
            header,
        })
    }

    /// The header's column names, trimmed.
    ///
    /// ```
    /// let csv = perturb_nn::data::CsvReader::new(" x , y\n1,2\n".as_bytes(), "t").unwrap();
    /// assert_eq!(csv.header(), ["x", "y"]);
    /// ```
    pub fn header(&self) -> &[String] {
        &self.header
    }

    /// Reads every data row: each must have as many fields as the header, and its fields in
    /// `columns` (0-based, in that order) must be finite numbers, given to `each(k, value)` for
    /// `columns[k]`; the other fields are not parsed. Returns the number of rows (an error if
    /// there is none, or if a column is not in the header).
    ///
    /// ```
    /// let csv = perturb_nn::data::CsvReader::new("x,y\n1,2\n3\n".as_bytes(), "t").unwrap();
    /// let err = csv.read_columns(&[0], |_, _| {}).unwrap_err().to_string();
    /// assert_eq!(err, "t, line 3: the row has 1 fields but the header has 2");
    /// ```
    pub fn read_columns(
        mut self,
        columns: &[usize],
        mut each: impl FnMut(usize, f64),
    ) -> Result<usize, DataError> {
        let (path, header) = (&self.path, &self.header);
        let width = header.len();
        if let Some(&j) = columns.iter().find(|&&j| j >= width) {
            return Err(invalid(
                "CsvReader::read_columns",
                format!("column {j} asked for, but {path} has {width} columns"),
            ));
        }
        let mut rows = 0usize;
        let mut record = csv::ByteRecord::new();
        loop {
            let next_line = line_of(self.reader.position());
            match self.reader.read_byte_record(&mut record) {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => return Err(csv_error(path, e, next_line)),
            }
            self.limit
                .set(self.reader.position().byte() + RECORD_ALLOWANCE);
            let line = record.position().map_or(next_line, line_of);
            if record.len() != width {
                return Err(DataError::RaggedRow {
                    path: path.clone(),
                    line,
                    expected: width,
                    found: record.len(),
                });
            }
            for (k, &j) in columns.iter().enumerate() {
                let field = &record[j];
                let value = parse_number(field).ok_or_else(|| DataError::NonNumeric {
                    path: path.clone(),
                    line,
                    column: j + 1,
                    column_name: excerpt(header[j].as_bytes()),
                    text: excerpt(field),
                    hint: separator_hint(field, width),
                })?;
                each(k, value);
            }
            rows += 1;
        }
        if rows == 0 {
            return Err(DataError::NoRows { path: path.clone() });
        }
        Ok(rows)
    }
}

impl<R> fmt::Debug for CsvReader<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CsvReader")
            .field("path", &self.path)
            .field("header", &self.header)
            .finish_non_exhaustive()
    }
}

/// How far the CSV reader may read past the last complete record: the record limit plus its
/// own buffer (8 KiB) with room to spare.
const RECORD_ALLOWANCE: u64 = MAX_RECORD_BYTES + (64 << 10);

/// A reader that fails once it has read up to `limit` bytes (a shared, movable bound), so that
/// one endless CSV record cannot take all memory.
struct Bounded<R> {
    inner: R,
    read: u64,
    limit: Rc<Cell<u64>>,
}

/// The error [`Bounded`] returns at its limit.
#[derive(Debug)]
struct RecordTooLong;

impl fmt::Display for RecordTooLong {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a row longer than {MAX_RECORD_BYTES} bytes")
    }
}

impl std::error::Error for RecordTooLong {}

impl<R: std::io::Read> std::io::Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let allowed = self.limit.get().saturating_sub(self.read);
        if allowed == 0 {
            return Err(std::io::Error::other(RecordTooLong));
        }
        let n = buf
            .len()
            .min(usize::try_from(allowed).unwrap_or(usize::MAX));
        let got = self.inner.read(&mut buf[..n])?;
        self.read += got as u64;
        Ok(got)
    }
}

/// The 1-based line where a record starts. The CSV reader counts `\n` only, so in a file with
/// CR-only line ends every record would be on line 1; a record cannot start before line
/// `record + 1`.
fn line_of(position: &csv::Position) -> u64 {
    position.line().max(position.record() + 1)
}

/// The data error for a CSV reader error met while reading the record that starts at `line`.
fn csv_error(path: &str, e: csv::Error, line: u64) -> DataError {
    let line = e.position().map_or(line, line_of);
    if !e.is_io_error() {
        return DataError::Csv {
            path: path.to_string(),
            line,
            message: e.to_string(),
        };
    }
    match e.into_kind() {
        csv::ErrorKind::Io(source)
            if source
                .get_ref()
                .is_some_and(|inner| inner.is::<RecordTooLong>()) =>
        {
            DataError::RecordTooLong {
                path: path.to_string(),
                line,
                limit: MAX_RECORD_BYTES,
            }
        }
        csv::ErrorKind::Io(source) => DataError::Io {
            path: path.to_string(),
            source,
        },
        kind => DataError::Csv {
            path: path.to_string(),
            line,
            message: format!("{kind:?}"),
        },
    }
}

/// The header's names, trimmed, after checking that there is one, that every name is UTF-8
/// text and not empty, and that no name appears twice (a model trained on such a file could
/// never be matched to a file's columns again).
fn read_header(path: &str, header: &csv::ByteRecord) -> Result<Vec<String>, DataError> {
    if header.is_empty() {
        return Err(DataError::EmptyFile {
            path: path.to_string(),
        });
    }
    let bad = |message: String| DataError::BadHeader {
        path: path.to_string(),
        message,
    };
    let mut names = Vec::with_capacity(header.len());
    for (j, field) in header.iter().enumerate() {
        let name = std::str::from_utf8(field).map_err(|_| {
            bad(format!(
                "the name of column {} is not UTF-8 text (\"{}\"); save the file as UTF-8",
                j + 1,
                excerpt(field)
            ))
        })?;
        let name = name.trim();
        if name.is_empty() {
            return Err(bad(format!(
                "column {} has an empty name; every column needs a name",
                j + 1
            )));
        }
        names.push(name.to_string());
    }
    let mut sorted: Vec<(&str, usize)> = names.iter().map(String::as_str).zip(1..).collect();
    sorted.sort_unstable();
    if let Some(pair) = sorted.windows(2).find(|w| w[0].0 == w[1].0) {
        let name = pair[0].0;
        let columns: Vec<String> = sorted
            .iter()
            .filter(|(n, _)| *n == name)
            .map(|(_, j)| j.to_string())
            .collect();
        return Err(bad(format!(
            "the column name \"{}\" appears more than once (columns {}); every column needs \
             its own name",
            excerpt(name.as_bytes()),
            columns.join(", ")
        )));
    }
    Ok(names)
}

/// The 0-based index of the target column, or an error listing the header's columns.
fn target_index(path: &str, header: &[String], target: &TargetColumn) -> Result<usize, DataError> {
    let width = header.len();
    let found = match target {
        TargetColumn::Last => Some(width - 1),
        TargetColumn::Name(col) => header.iter().position(|h| h == col.trim()),
        TargetColumn::Index(i) => (*i < width).then_some(*i),
    };
    found.ok_or_else(|| DataError::MissingTarget {
        path: path.to_string(),
        column: target.to_string(),
        available: list_columns(header),
        hint: if width == 1 {
            separator_hint(header[0].as_bytes(), width)
        } else {
            String::new()
        },
    })
}

/// The header's columns, comma-separated: the first 20 and a count of the rest.
fn list_columns(header: &[String]) -> String {
    const SHOWN: usize = 20;
    let mut list = header
        .iter()
        .take(SHOWN)
        .map(|h| excerpt(h.as_bytes()))
        .collect::<Vec<_>>()
        .join(", ");
    if header.len() > SHOWN {
        list.push_str(&format!(", ... ({} columns in all)", header.len()));
    }
    list
}

/// A field's value if it is a finite number (surrounding spaces allowed).
fn parse_number(field: &[u8]) -> Option<f64> {
    std::str::from_utf8(field)
        .ok()?
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
}

/// A field's text for an error message: lossy UTF-8, at most 60 characters, control
/// characters escaped (`\u{1b}`: a file's bytes must not reach a terminal as an escape
/// sequence through a message).
fn excerpt(field: &[u8]) -> String {
    const SHOWN: usize = 60;
    let text = String::from_utf8_lossy(field);
    let mut out: String = text
        .chars()
        .take(SHOWN)
        .map(|c| match c.is_control() {
            true => format!("\\u{{{:x}}}", u32::from(c)),
            false => c.to_string(),
        })
        .collect();
    if text.chars().nth(SHOWN).is_some() {
        out.push_str("...");
    }
    out
}

/// If `text` (a header name or a field) holds `;`, tabs or `|`, a note that the file seems to
/// use that separator; empty otherwise.
fn separator_hint(text: &[u8], width: usize) -> String {
    let counts = [(b';', "';'"), (b'\t', "tabs"), (b'|', "'|'")]
        .map(|(byte, name)| (text.iter().filter(|&&b| b == byte).count(), name));
    match counts.iter().max_by_key(|(count, _)| *count) {
        Some((count, name)) if *count > 0 => format!(
            " (only {width} column{} found: the file seems to be separated by {name}, but \
             only commas separate columns here)",
            if width == 1 { " was" } else { "s were" }
        ),
        _ => String::new(),
    }
}

/// The names [`builtin`] knows.
///
/// ```
/// assert_eq!(perturb_nn::data::BUILTIN_NAMES.len(), 4);
/// ```
pub const BUILTIN_NAMES: [&str; 4] = ["breast_cancer", "digits", "diabetes", "iris"];

/// The bundled data sets' CSV text, compiled into the library, in [`BUILTIN_NAMES`] order.
const BUILTIN_CSV: [&str; 4] = [
    include_str!("../../../data/breast_cancer.csv"),
    include_str!("../../../data/digits.csv"),
    include_str!("../../../data/diabetes.csv"),
    include_str!("../../../data/iris.csv"),
];

/// The CSV text of the bundled data set `name` (one of [`BUILTIN_NAMES`]), or `None`. The
/// text is compiled into the library, so it is there wherever the program is installed.
///
/// ```
/// let iris = perturb_nn::data::builtin_csv("iris").unwrap();
/// assert!(iris.starts_with("sepal_length_cm,"));
/// assert!(perturb_nn::data::builtin_csv("mnist").is_none());
/// ```
pub fn builtin_csv(name: &str) -> Option<&'static str> {
    let k = BUILTIN_NAMES.iter().position(|&n| n == name)?;
    Some(BUILTIN_CSV[k])
}

/// The folder of the bundled data sets in the source checkout this library was built from
/// (`data/` at the workspace root). The path is fixed at build time and need not exist where
/// the program runs (after `cargo install`, for example): use [`builtin`] or [`builtin_csv`],
/// which do not read it, to get the data.
///
/// ```
/// assert!(perturb_nn::data::data_dir().ends_with("data"));
/// ```
pub fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data")
}

/// Loads one of the bundled real data sets by name (see [`BUILTIN_NAMES`] and `data/README.md`
/// for their provenance); the target is the last column. An unknown name is an error listing the
/// known ones. The data are compiled into the library ([`builtin_csv`]); no file is read.
///
/// ```
/// let iris = perturb_nn::data::builtin("iris").unwrap();
/// assert_eq!(iris.x.shape(), &[150, 4]);
/// assert_eq!(iris.target_name, "species");
/// ```
pub fn builtin(name: &str) -> Result<Dataset<f64>, DataError> {
    let text = builtin_csv(name).ok_or_else(|| DataError::UnknownBuiltin {
        name: name.to_string(),
        known: BUILTIN_NAMES.join(", "),
    })?;
    load_csv_from_reader(text.as_bytes(), name, TargetColumn::Last)
}

/// The most classes [`class_labels`] accepts: labels run from 0 to `MAX_CLASSES - 1`.
///
/// ```
/// assert_eq!(perturb_nn::data::MAX_CLASSES, 65_536);
/// ```
pub const MAX_CLASSES: usize = 65_536;

/// The class indices of a multi-class target (the labels 0, 1, 2, ... as `usize`, ready for
/// [`softmax_cross_entropy`](crate::loss::softmax_cross_entropy)) and the number of classes,
/// `1 + the largest label`. An error names the first row whose label is not a whole number
/// from 0 to [`MAX_CLASSES`]` - 1` (a label of `1e9` would ask for a billion output units).
///
/// ```
/// use perturb::tensor::Tensor;
/// use perturb_nn::data::class_labels;
/// let (labels, classes) = class_labels(&Tensor::vector(&[2.0_f64, 0.0, 1.0, 2.0])).unwrap();
/// assert_eq!((labels, classes), (vec![2, 0, 1, 2], 3));
/// let err = class_labels(&Tensor::vector(&[0.0_f64, 1.5])).unwrap_err().to_string();
/// assert!(err.contains("row 1") && err.contains("1.5"), "{err}");
/// assert!(class_labels(&Tensor::vector(&[1e9_f64])).is_err());
/// ```
pub fn class_labels<T: Element>(y: &Tensor<T>) -> Result<(Vec<usize>, usize), DataError> {
    let whole = |v: f64| v >= 0.0 && v.fract() == 0.0 && v < MAX_CLASSES as f64;
    first_bad_label("class_labels", y, whole, || {
        format!(
            "class labels must be whole numbers from 0 to {}",
            MAX_CLASSES - 1
        )
    })?;
    let labels: Vec<usize> = y
        .as_slice()
        .iter()
        .map(|v| v.to_f64().map_or(0, |v| v as usize))
        .collect();
    let classes = labels.iter().max().map_or(0, |&m| m + 1);
    Ok((labels, classes))
}

/// Whether `v` is a label of a binary task: 0 or 1 (what
/// [`logistic_nll`](crate::loss::logistic_nll) and [`check_binary_labels`] accept).
pub(crate) fn is_binary_label(v: f64) -> bool {
    v == 0.0 || v == 1.0
}

/// Checks that every label of a binary target is 0 or 1, as
/// [`logistic_nll`](crate::loss::logistic_nll) needs: an error names the first row that is not
/// (with `2 y - 1`, a label of 2 would act as a heavier 1 and 0.5 would carry no gradient).
/// Check the labels of a data set with it before training, where the row still means
/// something to the user.
///
/// ```
/// use perturb::tensor::Tensor;
/// use perturb_nn::data::{check_binary_labels, DataError};
/// assert!(check_binary_labels(&Tensor::vector(&[0.0_f64, 1.0, 1.0])).is_ok());
/// let err = check_binary_labels(&Tensor::vector(&[1.0_f64, 2.0])).unwrap_err();
/// assert!(matches!(err, DataError::BadLabel { row: 1, value, .. } if value == 2.0));
/// assert!(err.to_string().contains("row 1 holds 2; binary labels must be 0 or 1"), "{err}");
/// ```
pub fn check_binary_labels<T: Element>(y: &Tensor<T>) -> Result<(), DataError> {
    first_bad_label("check_binary_labels", y, is_binary_label, || {
        "binary labels must be 0 or 1".to_string()
    })
}

/// A [`DataError::BadLabel`] at the first label of `y` that is not `ok`, with `rule` saying
/// what the labels must be.
fn first_bad_label<T: Element>(
    op: &'static str,
    y: &Tensor<T>,
    ok: impl Fn(f64) -> bool,
    rule: impl Fn() -> String,
) -> Result<(), DataError> {
    let values = y.as_slice().iter().map(|v| v.to_f64().unwrap_or(f64::NAN));
    match values.enumerate().find(|&(_, v)| !ok(v)) {
        None => Ok(()),
        Some((row, value)) => Err(DataError::BadLabel {
            op,
            row,
            value,
            rule: rule(),
        }),
    }
}

// ---------------------------------------------------------------------------------------------
// Splitting, standardizing, batching
// ---------------------------------------------------------------------------------------------

/// Splits a data set into `(train, test)` after shuffling the rows with `seed`; the test part has
/// `round(n * test_fraction)` rows. An error if `test_fraction` is not in `(0, 1)`, if either
/// part would be empty, or if the data set's shapes disagree.
///
/// ```
/// use perturb_nn::data::{train_test_split, xor, Dataset};
/// let d: Dataset<f64> = xor(10, 0.1, 0).unwrap();
/// let (train, test) = train_test_split(&d, 0.3, 42).unwrap();
/// assert_eq!((train.len(), test.len()), (7, 3));
/// assert!(train_test_split(&d, 1.0, 42).is_err());
/// ```
pub fn train_test_split<T: Element>(
    data: &Dataset<T>,
    test_fraction: f64,
    seed: u64,
) -> Result<(Dataset<T>, Dataset<T>), DataError> {
    const OP: &str = "train_test_split";
    let (n, d) = data.check(OP)?;
    if !(test_fraction > 0.0 && test_fraction < 1.0) {
        return Err(invalid(
            OP,
            format!("test_fraction must be in (0, 1), got {test_fraction:?}"),
        ));
    }
    let n_test = (n as f64 * test_fraction).round() as usize;
    if n_test == 0 || n_test >= n {
        return Err(invalid(
            OP,
            format!(
                "too few rows: {n} rows with test_fraction {test_fraction:?} leave {n_test} for \
                 testing and {} for training; each part needs at least one",
                n.saturating_sub(n_test)
            ),
        ));
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut StdRng::seed_from_u64(seed));
    let (test, train) = order.split_at(n_test);
    Ok((data.select(train, d)?, data.select(test, d)?))
}

/// Per-feature standardization, `(x - mean) / std`, with the mean and (population) standard
/// deviation of each column of the data it was fitted on. Fit it on the training part only and
/// apply it to both parts.
///
/// A constant column (all values equal) is kept, not an error: it gets its value as mean and
/// std 1, so it maps to 0 (it carries no information, and nothing divides by 0). The sums are
/// formed in `f64` on the column scaled by a power of two near its largest magnitude, so they
/// neither overflow nor underflow anywhere in the range of finite numbers (`1e160`, `1e-200`,
/// `+-1e308`), and the results are those of the plain formulas wherever those do not overflow.
///
/// ```
/// use perturb::tensor::Tensor;
/// use perturb_nn::data::Standardizer;
/// let x = Tensor::from_vec(vec![1.0, 5.0, 3.0, 5.0], &[2, 2]).unwrap();
/// let s = Standardizer::fit(&x).unwrap();
/// assert_eq!(s.mean(), &[2.0, 5.0]);
/// assert_eq!(s.std(), &[1.0, 1.0]); // column 0: |1 - 2| = |3 - 2| = 1; column 1 is constant
/// assert_eq!(s.transform(&x).unwrap().to_vec(), vec![-1.0, 0.0, 1.0, 0.0]);
/// // The same data at 1e200 standardises the same.
/// let big = Tensor::from_vec(vec![1e200, 5.0, 3e200, 5.0], &[2, 2]).unwrap();
/// let z = Standardizer::fit(&big).unwrap().transform(&big).unwrap();
/// assert_eq!(z.to_vec(), vec![-1.0, 0.0, 1.0, 0.0]);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Standardizer<T> {
    mean: Vec<T>,
    std: Vec<T>,
}

impl<T: Element> Standardizer<T> {
    /// Fits the per-column mean and standard deviation of `x`, `(n, d)` with `n >= 1`. An error
    /// names the column (0-based) if it holds a value that is not finite (and the row), or if
    /// its values differ but their standard deviation is 0 in `T` (an `f32` column whose spread
    /// is below `f32`'s smallest positive number).
    ///
    /// ```
    /// use perturb::tensor::Tensor;
    /// let empty = Tensor::<f64>::zeros(&[0, 3]);
    /// assert!(perturb_nn::data::Standardizer::fit(&empty).is_err());
    /// let inf = Tensor::from_vec(vec![1.0, f64::INFINITY], &[2, 1]).unwrap();
    /// let err = perturb_nn::data::Standardizer::fit(&inf).unwrap_err().to_string();
    /// assert!(err.contains("column 0, row 1"), "{err}");
    /// ```
    pub fn fit(x: &Tensor<T>) -> Result<Self, DataError> {
        Self::fit_named(x, &[])
    }

    /// [`fit`](Self::fit), with the columns' names for its errors: `names` has one name per
    /// column (a data set's `feature_names`), or is empty.
    ///
    /// ```
    /// use perturb::tensor::Tensor;
    /// use perturb_nn::data::Standardizer;
    /// let x = Tensor::from_vec(vec![1.0, f64::NAN], &[1, 2]).unwrap();
    /// let err = Standardizer::fit_named(&x, &["a".into(), "b".into()]).unwrap_err();
    /// assert!(err.to_string().contains("column 1 (\"b\")"), "{err}");
    ///
    /// // A regression target, as a column: targets of size 1e200 standardise as at size 1.
    /// let y = Tensor::vector(&[1e200, 3e200]);
    /// let s = Standardizer::fit_named(&y.reshape(&[2, 1]).unwrap(), &["price".into()]).unwrap();
    /// assert_eq!((s.mean(), s.std()), (&[2e200][..], &[1e200][..]));
    /// ```
    pub fn fit_named(x: &Tensor<T>, names: &[String]) -> Result<Self, DataError> {
        const OP: &str = "Standardizer::fit";
        let (n, d) = match x.shape() {
            [n, d] if *n > 0 => (*n, *d),
            s => {
                return Err(invalid(
                    OP,
                    format!("x must be (n, d) with n >= 1, got {s:?}"),
                ))
            }
        };
        if !names.is_empty() && names.len() != d {
            return Err(invalid(
                OP,
                format!("{} names for {d} columns", names.len()),
            ));
        }
        let xs = x.as_slice();
        let mut mean = Vec::with_capacity(d);
        let mut std = Vec::with_capacity(d);
        for j in 0..d {
            let column = (0..n).map(|i| xs[i * d + j].to_f64().unwrap_or(f64::NAN));
            let name = names
                .get(j)
                .map_or(String::new(), |name| format!(" (\"{name}\")"));
            let (m, s) =
                mean_std(column).map_err(|why| invalid(OP, format!("column {j}{name}{why}")))?;
            let (m, s) = (T::from_f64(m), T::from_f64(s));
            match (m, s) {
                (Some(m), Some(s)) if m.is_finite() && s.is_finite() && s > T::zero() => {
                    mean.push(m);
                    std.push(s);
                }
                _ => {
                    return Err(invalid(
                        OP,
                        format!(
                            "column {j}{name}: the values differ, but their standard deviation \
                             is 0 at this precision; rescale the column"
                        ),
                    ))
                }
            }
        }
        Ok(Standardizer { mean, std })
    }

    /// One mean and one standard deviation for every column, from all the values of `x`
    /// `(n, d)`: the scaling of an image, whose pixels share one scale (standardising each pixel
    /// apart would blow up the nearly constant ones at the border). Constant data get a
    /// deviation of 1, as a constant column does in [`fit`](Self::fit); a value that is not
    /// finite is an error naming its row and column.
    ///
    /// ```
    /// use perturb::tensor::Tensor;
    /// use perturb_nn::data::Standardizer;
    /// let x = Tensor::from_vec(vec![0.0, 2.0, 4.0, 6.0], &[2, 2]).unwrap();
    /// let s = Standardizer::fit_pooled(&x).unwrap();
    /// assert_eq!(s.mean(), &[3.0, 3.0]);
    /// assert_eq!(s.std(), &[5.0_f64.sqrt(); 2]);
    /// assert_eq!(Standardizer::fit_pooled(&Tensor::<f64>::ones(&[3, 4])).unwrap().std(), &[1.0; 4]);
    /// assert!(Standardizer::fit_pooled(&Tensor::from_vec(vec![1.0, f64::NAN], &[1, 2]).unwrap()).is_err());
    /// ```
    pub fn fit_pooled(x: &Tensor<T>) -> Result<Self, DataError> {
        const OP: &str = "Standardizer::fit_pooled";
        let d = match x.shape() {
            [n, d] if *n > 0 => *d,
            s => {
                return Err(invalid(
                    OP,
                    format!("x must be (n, d) with n >= 1, got {s:?}"),
                ))
            }
        };
        let values = x.as_slice().iter().map(|v| v.to_f64().unwrap_or(f64::NAN));
        if let Some(i) = values.clone().position(|v| !v.is_finite()) {
            let (row, column) = (i / d, i % d);
            return Err(invalid(
                OP,
                format!("row {row}, column {column}: the value is not finite"),
            ));
        }
        let (mean, std) = mean_std(values).map_err(|why| invalid(OP, why))?;
        let elem = |v: f64| T::from_f64(v).unwrap_or_else(T::nan);
        Self::from_parts(vec![elem(mean); d], vec![elem(std); d])
    }

    /// A standardizer from saved means and standard deviations (one per feature, for example
    /// from a model file), after checking them: as many of each, every mean finite and every
    /// std finite and > 0. An error names the first feature that fails, so that a damaged file
    /// cannot turn every input into NaN or 0.
    ///
    /// ```
    /// use perturb::tensor::Tensor;
    /// use perturb_nn::data::Standardizer;
    /// let s = Standardizer::from_parts(vec![1.0, 2.0], vec![2.0, 0.5]).unwrap();
    /// let x = Tensor::from_vec(vec![3.0, 2.5], &[1, 2]).unwrap();
    /// assert_eq!(s.transform(&x).unwrap().to_vec(), vec![1.0, 1.0]);
    /// let err = Standardizer::from_parts(vec![1.0, 2.0], vec![2.0, 0.0]).unwrap_err();
    /// assert!(err.to_string().contains("feature 1: std 0"), "{err}");
    /// assert!(Standardizer::from_parts(vec![f64::INFINITY], vec![1.0]).is_err());
    /// assert!(Standardizer::from_parts(vec![0.0], vec![1.0, 1.0]).is_err());
    /// ```
    pub fn from_parts(mean: Vec<T>, std: Vec<T>) -> Result<Self, DataError> {
        const OP: &str = "Standardizer::from_parts";
        if mean.len() != std.len() {
            return Err(invalid(
                OP,
                format!("{} means for {} standard deviations", mean.len(), std.len()),
            ));
        }
        for (j, (&m, &s)) in mean.iter().zip(&std).enumerate() {
            if !m.is_finite() {
                return Err(invalid(OP, format!("feature {j}: mean {m} is not finite")));
            }
            if !(s.is_finite() && s > T::zero()) {
                return Err(invalid(
                    OP,
                    format!("feature {j}: std {s} is not a finite number > 0"),
                ));
            }
        }
        Ok(Standardizer { mean, std })
    }

    /// The fitted per-feature means.
    ///
    /// ```
    /// use perturb::tensor::Tensor;
    /// let x = Tensor::from_vec(vec![0.0_f32, 2.0], &[2, 1]).unwrap();
    /// assert_eq!(perturb_nn::data::Standardizer::fit(&x).unwrap().mean(), &[1.0]);
    /// ```
    pub fn mean(&self) -> &[T] {
        &self.mean
    }

    /// The fitted per-feature standard deviations (1 for a constant feature).
    ///
    /// ```
    /// use perturb::tensor::Tensor;
    /// let x = Tensor::from_vec(vec![0.0_f32, 2.0], &[2, 1]).unwrap();
    /// assert_eq!(perturb_nn::data::Standardizer::fit(&x).unwrap().std(), &[1.0]);
    /// ```
    pub fn std(&self) -> &[T] {
        &self.std
    }

    /// `f(v, mean, std)` for every element `v` of `x`, `(m, d)`; an error naming the row and
    /// column where `f` gives `None` (a finite value whose result a float cannot hold).
    fn apply(
        &self,
        op: &'static str,
        x: &Tensor<T>,
        f: impl Fn(T, T, T) -> Option<T>,
    ) -> Result<Tensor<T>, DataError> {
        let d = self.mean.len();
        match x.shape() {
            [_, cols] if *cols == d => {}
            s => {
                return Err(invalid(
                    op,
                    format!("x must be (n, {d}) as fitted, got {s:?}"),
                ))
            }
        }
        let mut data = Vec::with_capacity(x.len());
        for (k, &v) in x.as_slice().iter().enumerate() {
            let (m, s) = (self.mean[k % d], self.std[k % d]);
            let Some(r) = f(v, m, s) else {
                let e = |t: T| t.to_f64().unwrap_or(f64::NAN);
                return Err(invalid(
                    op,
                    format!(
                        "row {}, column {}: the value {:e} (with mean {:e} and std {:e}) gives a \
                         result too large for the number type; it is far outside the data \
                         the standardizer was fitted on",
                        k / d,
                        k % d,
                        e(v),
                        e(m),
                        e(s)
                    ),
                ));
            };
            data.push(r);
        }
        Ok(Tensor::from_vec(data, x.shape())?)
    }

    /// `(x - mean) / std`, column by column; `x` must be `(m, d)` with the fitted `d`. An
    /// error names the row and column of a finite value whose result is too large for `T`
    /// (a value 1e10 in a column fitted with std 1e-300), rather than an infinity for the model.
    ///
    /// ```
    /// use perturb::tensor::Tensor;
    /// let s = perturb_nn::data::Standardizer::fit(&Tensor::from_vec(vec![0.0, 2.0], &[2, 1]).unwrap()).unwrap();
    /// assert_eq!(s.transform(&Tensor::from_vec(vec![3.0], &[1, 1]).unwrap()).unwrap().to_vec(), vec![2.0]);
    /// assert!(s.transform(&Tensor::zeros(&[1, 2])).is_err());
    /// assert!(s.transform(&Tensor::from_vec(vec![1e308], &[1, 1]).unwrap()).is_ok());
    /// let tiny = Tensor::from_vec(vec![1e-300, 2e-300], &[2, 1]).unwrap();
    /// let s = perturb_nn::data::Standardizer::fit(&tiny).unwrap();
    /// let err = s.transform(&Tensor::from_vec(vec![1e10], &[1, 1]).unwrap()).unwrap_err();
    /// assert!(err.to_string().contains("row 0, column 0"), "{err}");
    /// ```
    pub fn transform(&self, x: &Tensor<T>) -> Result<Tensor<T>, DataError> {
        self.apply("Standardizer::transform", x, |v, m, s| {
            let z = (v - m) / s;
            // v - m overflows only where both are near the largest number; then divide first.
            let z = if z.is_finite() || !v.is_finite() {
                z
            } else {
                v / s - m / s
            };
            (z.is_finite() || !v.is_finite()).then_some(z)
        })
    }

    /// `x * std + mean`, column by column: undoes [`transform`](Self::transform), also where
    /// `x * std` alone would overflow (the data's extremes near the largest float). An error
    /// names the row and column of a finite value whose result is too large for `T`.
    ///
    /// ```
    /// use perturb::tensor::Tensor;
    /// let x = Tensor::from_vec(vec![1.0, 4.0, 2.0, 8.0], &[2, 2]).unwrap();
    /// let s = perturb_nn::data::Standardizer::fit(&x).unwrap();
    /// let back = s.inverse_transform(&s.transform(&x).unwrap()).unwrap();
    /// assert!(back.all_close(&x, 1e-12));
    /// // Values at +-1.7e308 come back, although -1.73 * std (1.47e308) overflows.
    /// let big = Tensor::from_vec(vec![1.7e308, 1.7e308, 1.7e308, -1.7e308], &[4, 1]).unwrap();
    /// let s = perturb_nn::data::Standardizer::fit(&big).unwrap();
    /// let back = s.inverse_transform(&s.transform(&big).unwrap()).unwrap();
    /// assert!(back.all_close(&big, 1e-12), "{:?}", back.to_vec());
    /// assert!(s.inverse_transform(&Tensor::from_vec(vec![10.0], &[1, 1]).unwrap()).is_err());
    /// ```
    pub fn inverse_transform(&self, x: &Tensor<T>) -> Result<Tensor<T>, DataError> {
        self.apply("Standardizer::inverse_transform", x, |v, m, s| {
            let r = v * s + m;
            // v * s overflows first where the result is near the largest number; then halve
            // both terms (exact at these sizes) and double the sum.
            let two = T::one() + T::one();
            let r = if r.is_finite() || !v.is_finite() {
                r
            } else {
                (v * (s / two) + m / two) * two
            };
            (r.is_finite() || !v.is_finite()).then_some(r)
        })
    }
}

/// The mean and population standard deviation of a non-empty column, or `(value, 1)` for a
/// constant one; an error (the text after the column's name) at a value that is not finite.
///
/// Two passes over the column scaled by `scale`, a power of two with every `|v| / scale` below
/// 2: dividing and multiplying by it is exact, so the sums cannot overflow or underflow and
/// the results are those of the unscaled formulas wherever these are finite.
fn mean_std(column: impl Iterator<Item = f64> + Clone) -> Result<(f64, f64), String> {
    let mut largest = 0.0_f64;
    for (i, v) in column.clone().enumerate() {
        if !v.is_finite() {
            return Err(format!(
                ", row {i}: the value {v} is not finite, so the column has no mean"
            ));
        }
        largest = largest.max(v.abs());
    }
    let mut values = column.clone();
    let first = values.next().unwrap_or(0.0);
    if values.all(|v| v == first) {
        return Ok((first, 1.0));
    }
    // The leading power of two of `largest` (its exponent bits alone); 2^-1022 for a
    // subnormal one, which scales it up exactly.
    let scale = f64::from_bits(largest.to_bits() & 0x7ff0_0000_0000_0000).max(f64::MIN_POSITIVE);
    let count = column.clone().count() as f64;
    let mean = column.clone().map(|v| v / scale).sum::<f64>() / count;
    let var = column
        .map(|v| (v / scale - mean) * (v / scale - mean))
        .sum::<f64>()
        / count;
    Ok((mean * scale, var.sqrt() * scale))
}

/// Shuffled mini-batches `(x_batch, y_batch)` of one epoch, `(b, d)` and `(b)`: the rows are
/// shuffled with `seed`, then cut into batches of `batch_size` (the last may be smaller). Every
/// row appears exactly once. Use a different seed per epoch (for example `base_seed + epoch`)
/// for a different order each epoch.
///
/// ```
/// use perturb_nn::data::{xor, Batches, Dataset};
/// let d: Dataset<f64> = xor(10, 0.0, 0).unwrap();
/// for epoch in 0..3 {
///     let rows: usize = Batches::new(&d, 4, 100 + epoch).unwrap().map(|(_, y)| y.len()).sum();
///     assert_eq!(rows, 10);
/// }
/// assert!(Batches::new(&d, 0, 0).is_err());
/// ```
#[derive(Clone)]
pub struct Batches<T> {
    x: Tensor<T>,
    y: Tensor<T>,
    d: usize,
    order: Vec<usize>,
    batch_size: usize,
    next: usize,
}

impl<T: Element> Batches<T> {
    /// The batches of one epoch over `data`. An error if `batch_size` is 0 or the data set's
    /// shapes disagree.
    ///
    /// ```
    /// use perturb_nn::data::{circles, Batches, Dataset};
    /// let d: Dataset<f32> = circles(5, 0.0, 0.5, 0).unwrap();
    /// assert_eq!(Batches::new(&d, 2, 9).unwrap().len(), 3);
    /// ```
    pub fn new(data: &Dataset<T>, batch_size: usize, seed: u64) -> Result<Self, DataError> {
        const OP: &str = "Batches::new";
        let (n, d) = data.check(OP)?;
        if batch_size == 0 {
            return Err(invalid(OP, "batch_size must be at least 1"));
        }
        let mut order: Vec<usize> = (0..n).collect();
        order.shuffle(&mut StdRng::seed_from_u64(seed));
        Ok(Batches {
            x: data.x.clone(),
            y: data.y.clone(),
            d,
            order,
            batch_size,
            next: 0,
        })
    }

    /// The row order of this epoch (indices into the data set).
    ///
    /// ```
    /// use perturb_nn::data::{xor, Batches, Dataset};
    /// let d: Dataset<f64> = xor(6, 0.0, 0).unwrap();
    /// let mut order = Batches::new(&d, 4, 1).unwrap().order().to_vec();
    /// order.sort();
    /// assert_eq!(order, vec![0, 1, 2, 3, 4, 5]);
    /// ```
    pub fn order(&self) -> &[usize] {
        &self.order
    }
}

impl<T: Element> fmt::Debug for Batches<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Batches")
            .field("rows", &self.order.len())
            .field("batch_size", &self.batch_size)
            .field("next", &self.next)
            .finish()
    }
}

impl<T: Element> Iterator for Batches<T> {
    type Item = (Tensor<T>, Tensor<T>);

    fn next(&mut self) -> Option<Self::Item> {
        let rows = self.order.get(self.next..)?;
        if rows.is_empty() {
            return None;
        }
        let rows = &rows[..rows.len().min(self.batch_size)];
        self.next += rows.len();
        let d = self.d;
        let (xs, ys) = (self.x.as_slice(), self.y.as_slice());
        let mut x = Vec::with_capacity(rows.len() * d);
        let mut y = Vec::with_capacity(rows.len());
        for &r in rows {
            x.extend_from_slice(&xs[r * d..(r + 1) * d]);
            y.push(ys[r]);
        }
        // The lengths match the shapes by construction, so these cannot fail.
        let x = Tensor::from_vec(x, &[rows.len(), d]).ok()?;
        let y = Tensor::from_vec(y, &[rows.len()]).ok()?;
        Some((x, y))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.order.len().saturating_sub(self.next);
        let k = left.div_ceil(self.batch_size);
        (k, Some(k))
    }
}

impl<T: Element> ExactSizeIterator for Batches<T> {}
