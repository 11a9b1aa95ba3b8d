//! Property tests of the CSV reader (`load_csv_from_reader`) on hostile input: arbitrary bytes,
//! random tables of junk (headers with empty, repeated or quoted names, ragged rows, huge and
//! non-finite numbers, `;` and tab separators, quotes, BOMs, CR/CRLF line ends) and endless
//! streams. Whatever the input, the reader must not panic, must not allocate without bound, and
//! must give either an error naming the source or a data set that is consistent; a clean table
//! must load exactly.
//!
//! Case counts: 256 for each property on finite inputs, 64 for the endless streams (each reads
//! about `MAX_RECORD_BYTES` before it stops).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::Read;

use perturb_nn::data::{load_csv_from_reader, DataError, Dataset, TargetColumn, MAX_RECORD_BYTES};
use proptest::prelude::*;

// ---- a per-thread peak-allocation counter ------------------------------------------------------

/// The system allocator, counting the bytes live on each thread and their peak.
struct Counting;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn track(delta: isize) {
    let _ = LIVE.try_with(|live| {
        let now = live.get() + delta;
        live.set(now);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
    });
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        track(layout.size() as isize);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        track(-(layout.size() as isize));
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        track(new_size as isize - layout.size() as isize);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// `f()` and the most bytes it had allocated at once on this thread, beyond what was live
/// before.
fn peak_during<R>(f: impl FnOnce() -> R) -> (R, usize) {
    let base = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(base));
    let out = f();
    let peak = PEAK.with(Cell::get) - base;
    (out, peak.max(0) as usize)
}

// ---- helpers ------------------------------------------------------------------------------------

const SOURCE: &str = "junk.csv";

/// Checks what any load must satisfy: an error names the source; a data set has consistent
/// shapes, at least one row and one feature, unique non-empty names and finite values.
fn check_outcome(result: &Result<Dataset<f64>, DataError>) -> Result<(), TestCaseError> {
    match result {
        Err(e) => {
            let msg = e.to_string();
            prop_assert!(msg.contains(SOURCE), "error without the source: {msg}");
        }
        Ok(d) => {
            let (n, f) = (d.len(), d.n_features());
            prop_assert!(n >= 1 && f >= 1, "{:?}", d.x.shape());
            prop_assert_eq!(d.x.shape(), &[n, f][..]);
            prop_assert_eq!(d.y.shape(), &[n][..]);
            prop_assert_eq!(d.feature_names.len(), f);
            let mut names: Vec<&str> = d.feature_names.iter().map(String::as_str).collect();
            names.push(&d.target_name);
            prop_assert!(names.iter().all(|s| !s.is_empty() && s.trim() == *s));
            names.sort_unstable();
            names.dedup();
            prop_assert_eq!(names.len(), f + 1, "repeated names");
            let values = d.x.as_slice().iter().chain(d.y.as_slice());
            prop_assert!(values.into_iter().all(|v| v.is_finite()));
        }
    }
    Ok(())
}

/// Loads `bytes` with the last column as the target, recording the peak allocation.
fn load(bytes: &[u8]) -> (Result<Dataset<f64>, DataError>, usize) {
    peak_during(|| load_csv_from_reader(bytes, SOURCE, TargetColumn::Last))
}

/// The bytes that matter to a CSV reader and a number parser, for denser junk.
const ALPHABET: &[u8] = b",;\t|\n\r\" 0123456789.eE+-xnaifNI\xef\xbb\xbf\xff\x00";

fn junk_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..600),
        prop::collection::vec(prop::sample::select(ALPHABET), 0..600),
    ]
}

fn cell() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => any::<f64>().prop_map(|v| format!("{v}")),
        3 => any::<f64>().prop_map(|v| format!("{v:e}")),
        6 => (-1000i64..1000).prop_map(|v| v.to_string()),
        1 => prop::sample::select(vec![
            "1e400",
            "-1e-400",
            "1e308",
            "-1.7976931348623157e308",
            "5e-324",
            "",
            " 3 ",
            "\"4\"",
            "\"1,5\"",
            "\"a\"\"b\"",
            "abc",
            "1;2",
            "1\t2",
            "0x10",
            "1_000",
            "\u{feff}1",
            "NaN",
            "inf",
            "-infinity",
            "+.5",
            "1.",
            ".",
            "-",
            "é",
            "\"",
        ])
        .prop_map(str::to_string),
        1 => "[ -~]{0,8}",
    ]
}

fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => "[a-z]{1,4}",
        1 => prop::sample::select(vec!["", " ", "a", "a ", "\"q,uoted\"", "\"\"", "é", "y"])
            .prop_map(str::to_string),
        1 => "[ -~]{0,6}",
    ]
}

/// A random table as text: header and rows of junk cells, joined by a random separator and
/// line end, maybe with a BOM and without a final line end.
fn junk_table() -> impl Strategy<Value = String> {
    (0usize..6)
        .prop_flat_map(|width| {
            // Rows mostly as wide as the header, some ragged.
            let row = prop_oneof![
                6 => prop::collection::vec(cell(), width),
                1 => prop::collection::vec(cell(), 0..7),
            ];
            (
                prop::collection::vec(name(), width),
                prop::collection::vec(row, 0..8),
                prop::sample::select(vec![",", ",", ",", ",", ";", "\t"]),
                prop::sample::select(vec!["\n", "\r\n", "\r"]),
                any::<bool>(),
                any::<bool>(),
            )
        })
        .prop_map(|(header, rows, sep, end, bom, final_end)| {
            let mut text = String::new();
            if bom {
                text.push('\u{feff}');
            }
            let lines: Vec<String> = std::iter::once(header)
                .chain(rows)
                .map(|cells| cells.join(sep))
                .collect();
            text.push_str(&lines.join(end));
            if final_end {
                text.push_str(end);
            }
            text
        })
}

/// A clean table: unique names, finite numbers printed to round-trip (some with spaces, some
/// quoted), a random target column, maybe a BOM and CRLF line ends.
type Clean = (Vec<String>, Vec<Vec<f64>>, usize, String);

fn clean_table() -> impl Strategy<Value = Clean> {
    (2usize..6, 1usize..10)
        .prop_flat_map(|(width, rows)| {
            let value = prop_oneof![
                -1e6..1e6_f64,
                any::<f64>().prop_filter("finite", |v| v.is_finite()),
                (-100i32..100).prop_map(f64::from),
            ];
            (
                Just(width),
                prop::collection::vec(prop::collection::vec(value, width), rows),
                0..width,
                prop::collection::vec(0u8..4, width * (rows + 1)),
                any::<bool>(),
                any::<bool>(),
            )
        })
        .prop_map(|(width, table, target, styles, bom, crlf)| {
            let style = |k: usize, text: String| match styles[k] {
                0 => text,
                1 => format!(" {text} "),
                2 => format!("\"{text}\""),
                _ => format!("\" {text}\""),
            };
            let names: Vec<String> = (0..width).map(|j| format!("col{j}")).collect();
            let mut lines = vec![names
                .iter()
                .enumerate()
                .map(|(j, n)| style(j, n.clone()))
                .collect::<Vec<_>>()
                .join(",")];
            for (i, row) in table.iter().enumerate() {
                let cells: Vec<String> = row
                    .iter()
                    .enumerate()
                    .map(|(j, v)| style((i + 1) * width + j, format!("{v:?}")))
                    .collect();
                lines.push(cells.join(","));
            }
            let mut text = if bom {
                "\u{feff}".to_string()
            } else {
                String::new()
            };
            text.push_str(&lines.join(if crlf { "\r\n" } else { "\n" }));
            text.push('\n');
            (names, table, target, text)
        })
}

/// `prefix`, then `pattern` repeated for ever.
struct Endless {
    prefix: Vec<u8>,
    pattern: Vec<u8>,
    at: usize,
}

impl Read for Endless {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        for b in buf.iter_mut() {
            *b = match self.prefix.get(self.at) {
                Some(&byte) => byte,
                None => self.pattern[(self.at - self.prefix.len()) % self.pattern.len()],
            };
            self.at += 1;
        }
        Ok(buf.len())
    }
}

/// No load, however hostile, holds more than this at once. The worst case is a row of empty
/// fields, where the CSV reader keeps an 8-byte bound per 1-byte field and doubles its
/// buffers: 16 times `MAX_RECORD_BYTES` (64 MiB, measured by the test below).
const PEAK_LIMIT: usize = 17 * MAX_RECORD_BYTES as usize;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_bytes_give_an_error_or_a_consistent_data_set(bytes in junk_bytes()) {
        let (result, peak) = load(&bytes);
        check_outcome(&result)?;
        // Small input, small memory: nothing is sized from the content.
        prop_assert!(peak < 1 << 20, "peak {peak} bytes for {} bytes of input", bytes.len());
    }

    #[test]
    fn junk_tables_give_an_error_or_a_consistent_data_set(text in junk_table()) {
        let (result, peak) = load(text.as_bytes());
        check_outcome(&result)?;
        prop_assert!(peak < 1 << 20, "peak {peak} bytes for {} bytes of input", text.len());
        // A header of one column with ';' or tabs in it gets the separator hint.
        if let Err(DataError::BadHeader { message, .. }) = &result {
            if message.contains("only one column") && (message.contains(';') || message.contains('\t')) {
                prop_assert!(message.contains("separated by"), "{message}");
            }
        }
    }

    #[test]
    fn clean_tables_load_exactly((names, table, target, text) in clean_table()) {
        let d = load_csv_from_reader(text.as_bytes(), SOURCE, TargetColumn::Index(target))
            .map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        let width = names.len();
        prop_assert_eq!(d.len(), table.len());
        prop_assert_eq!(&d.target_name, &names[target]);
        let features: Vec<&String> = names.iter().enumerate().filter(|(j, _)| *j != target).map(|(_, n)| n).collect();
        prop_assert_eq!(d.feature_names.iter().collect::<Vec<_>>(), features);
        let x: Vec<f64> = table.iter().flat_map(|row| {
            row.iter().enumerate().filter(|(j, _)| *j != target).map(|(_, v)| *v).collect::<Vec<_>>()
        }).collect();
        let y: Vec<f64> = table.iter().map(|row| row[target]).collect();
        prop_assert_eq!(d.x.to_vec(), x);
        prop_assert_eq!(d.y.to_vec(), y);
        prop_assert_eq!(d.x.shape(), &[table.len(), width - 1][..]);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// A stream whose last record never ends (no line end, or an open quote) stops with
    /// `RecordTooLong` after a bounded amount of memory.
    #[test]
    fn endless_records_stop_at_the_limit(
        (prefix, pattern) in prop_oneof![
            (
                prop::sample::select(vec!["", "a,b\n", "a,b\n1,2\n"]),
                prop::collection::vec(prop::sample::select(&b",;\t| 0123456789.e-x\xff\x00"[..]), 1..40),
            ),
            (
                prop::sample::select(vec!["\"", "a,b\n\"", "a,b\n1,2\n\""]),
                prop::collection::vec(prop::sample::select(&b",;\t|\n\r 0123456789.e-x\xff\x00"[..]), 1..40),
            ),
        ]
    ) {
        let reader = Endless { prefix: prefix.as_bytes().to_vec(), pattern, at: 0 };
        let (result, peak) = peak_during(|| load_csv_from_reader(reader, SOURCE, TargetColumn::Last));
        prop_assert!(
            matches!(result, Err(DataError::RecordTooLong { .. })),
            "{result:?}"
        );
        prop_assert!(result.unwrap_err().to_string().contains(SOURCE));
        prop_assert!(peak < PEAK_LIMIT, "peak {peak} bytes");
    }
}

/// The worst endless streams for memory: a row of empty fields (the reader keeps 8 bytes per
/// field) and a quoted field of line ends.
#[test]
fn endless_worst_cases_stay_within_the_peak_limit() {
    for (prefix, pattern) in [("", ","), ("a,b\n", ","), ("\"", "\n"), ("a,b\n\"", "\r\n")] {
        let reader = Endless {
            prefix: prefix.as_bytes().to_vec(),
            pattern: pattern.as_bytes().to_vec(),
            at: 0,
        };
        let (result, peak) =
            peak_during(|| load_csv_from_reader(reader, SOURCE, TargetColumn::Last));
        assert!(
            matches!(result, Err(DataError::RecordTooLong { .. })),
            "{result:?}"
        );
        assert!(
            peak < PEAK_LIMIT,
            "{prefix:?} {pattern:?}: peak {peak} bytes"
        );
    }
}
