//! The safetensors format: written byte for byte the same for the same tensors (the header's
//! keys in a fixed order), and read with bounds, so that a hostile or broken file costs no more
//! memory than its header says and the caller has accepted.
//!
//! A file is 8 bytes (the header's length `n`, little-endian), `n` bytes of JSON (tensor name
//! -> dtype, shape, byte range; `__metadata__` -> string entries), then the tensors' bytes.

use std::collections::BTreeMap;
use std::io::Read;

use perturb::tensor::{Element, Tensor};
use safetensors::tensor::{Metadata, SafeTensorError, SafeTensors};

use super::FileError;

/// The longest header a file may have (the limit of the safetensors format itself).
pub(crate) const MAX_HEADER: u64 = 100_000_000;
/// The most numbers a file may hold, over all its tensors: a model of
/// [`MAX_PARAMETERS`](crate::nn::MAX_PARAMETERS) with Adam's two moments and room to spare.
pub(crate) const MAX_ELEMENTS: u64 = 4 * crate::nn::MAX_PARAMETERS as u64;

mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for f64 {}
}

/// An element type a model file holds: `f32` (`"F32"`) or `f64` (`"F64"`), stored
/// little-endian.
///
/// ```
/// use perturb_nn::io::Storable;
/// assert_eq!(<f32 as Storable>::DTYPE, "F32");
/// assert_eq!(<f64 as Storable>::DTYPE, "F64");
/// ```
pub trait Storable: Element + sealed::Sealed {
    /// The type's name in a safetensors header.
    const DTYPE: &'static str;
    /// The bytes of one number.
    const SIZE: usize;

    /// Appends the number's little-endian bytes to `out`.
    ///
    /// ```
    /// use perturb_nn::io::Storable;
    /// let mut out = Vec::new();
    /// (-0.0_f32).write_le(&mut out);
    /// assert_eq!(out, (-0.0_f32).to_le_bytes());
    /// ```
    fn write_le(self, out: &mut Vec<u8>);

    /// The number held in `bytes` (little-endian; [`SIZE`](Storable::SIZE) of them).
    ///
    /// # Panics
    ///
    /// If `bytes` does not have [`SIZE`](Storable::SIZE) bytes.
    ///
    /// ```
    /// use perturb_nn::io::Storable;
    /// assert_eq!(f64::read_le(&2.5_f64.to_le_bytes()), 2.5);
    /// ```
    fn read_le(bytes: &[u8]) -> Self;
}

macro_rules! storable {
    ($t:ty, $name:literal) => {
        impl Storable for $t {
            const DTYPE: &'static str = $name;
            const SIZE: usize = std::mem::size_of::<$t>();

            fn write_le(self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }

            fn read_le(bytes: &[u8]) -> Self {
                let mut le = [0; std::mem::size_of::<$t>()];
                le.copy_from_slice(bytes);
                <$t>::from_le_bytes(le)
            }
        }
    };
}

storable!(f32, "F32");
storable!(f64, "F64");

/// The index and value of the first number of `t` that is not finite.
fn first_non_finite<T: Storable>(t: &Tensor<T>) -> Option<(usize, f64)> {
    let i = t.as_slice().iter().position(|x| !x.is_finite())?;
    Some((i, t.as_slice()[i].to_f64().unwrap_or(f64::NAN)))
}

/// A tensor of any [`Storable`] type, as [`encode`] writes it.
pub(crate) trait Stored {
    fn dtype(&self) -> &'static str;
    /// The bytes of one number.
    fn size(&self) -> usize;
    fn shape(&self) -> &[usize];
    fn len(&self) -> usize;
    fn first_non_finite(&self) -> Option<(usize, f64)>;
    /// Appends the numbers' little-endian bytes to `out`.
    fn write(&self, out: &mut Vec<u8>);
}

impl<T: Storable> Stored for Tensor<T> {
    fn dtype(&self) -> &'static str {
        T::DTYPE
    }

    fn size(&self) -> usize {
        T::SIZE
    }

    fn shape(&self) -> &[usize] {
        Tensor::shape(self)
    }

    fn len(&self) -> usize {
        Tensor::len(self)
    }

    fn first_non_finite(&self) -> Option<(usize, f64)> {
        first_non_finite(self)
    }

    fn write(&self, out: &mut Vec<u8>) {
        for &x in self.as_slice() {
            x.write_le(out);
        }
    }
}

/// The bytes of a file holding `tensors` and `metadata`: the same bytes for the same input.
/// The data is laid out wider types first (so that each number is aligned, as safetensors
/// does), otherwise in the order given. An error if a name repeats or is `__metadata__`, a
/// number is not finite, or the header would be longer than [`MAX_HEADER`] (a file that
/// could not be read back); `file` names the destination in the errors.
pub(crate) fn encode(
    file: &str,
    metadata: &BTreeMap<String, String>,
    tensors: &[(String, &dyn Stored)],
) -> Result<Vec<u8>, FileError> {
    let invalid = |reason: String| FileError::Invalid {
        file: file.to_string(),
        reason,
    };
    let mut seen = std::collections::BTreeSet::new();
    let entries: Vec<String> = metadata
        .iter()
        .map(|(k, v)| format!("{}:{}", quoted(k), quoted(v)))
        .collect();
    let mut header = format!("{{\"__metadata__\":{{{}}}", entries.join(","));
    let mut order: Vec<&(String, &dyn Stored)> = tensors.iter().collect();
    order.sort_by_key(|(_, t)| std::cmp::Reverse(t.size()));
    let mut offset = 0usize;
    for (name, t) in &order {
        if name == "__metadata__" {
            return Err(invalid(
                "a tensor cannot be named '__metadata__' (the header's metadata entry)".into(),
            ));
        }
        if !seen.insert(name) {
            return Err(invalid(format!(
                "two tensors are named '{name}'; each needs its own name"
            )));
        }
        if let Some((index, value)) = t.first_non_finite() {
            return Err(FileError::NotFinite {
                file: file.to_string(),
                tensor: name.clone(),
                index,
                value,
            });
        }
        let end = offset + t.len() * t.size();
        let shape: Vec<String> = t.shape().iter().map(usize::to_string).collect();
        header.push_str(&format!(
            ",{}:{{\"dtype\":\"{}\",\"shape\":[{}],\"data_offsets\":[{offset},{end}]}}",
            quoted(name),
            t.dtype(),
            shape.join(","),
        ));
        offset = end;
    }
    header.push('}');
    // Padded with spaces to a multiple of 8 bytes, as safetensors writes it, so that the
    // data starts aligned.
    while header.len() % 8 != 0 {
        header.push(' ');
    }
    if header.len() as u64 > MAX_HEADER {
        return Err(invalid(format!(
            "the header would take {} bytes, more than the {MAX_HEADER} a file may have, so \
             the file could not be loaded (too much metadata, or too many tensors?)",
            header.len()
        )));
    }
    let mut out = Vec::with_capacity(8 + header.len() + offset);
    out.extend_from_slice(&(header.len() as u64).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for (_, t) in order {
        t.write(&mut out);
    }
    Ok(out)
}

/// `text` as a JSON string, quoted and escaped.
fn quoted(text: &str) -> String {
    serde_json::Value::from(text).to_string()
}

/// A tensor as a header lists it.
#[derive(Debug, Clone)]
pub(crate) struct Listed {
    /// The element type's name (`F64`, `I32`, ...).
    pub dtype: String,
    pub shape: Vec<usize>,
    /// Where its bytes are, from the start of the data.
    range: (usize, usize),
}

/// A file whose header has been read and parsed (and nothing more).
pub(crate) struct Opened<R> {
    /// The file's name, for the errors.
    pub file: String,
    pub metadata: BTreeMap<String, String>,
    pub tensors: BTreeMap<String, Listed>,
    reader: R,
    /// The file's length, where known (a regular file).
    len: Option<u64>,
    /// The 8 length bytes and the header.
    head: Vec<u8>,
}

/// A safetensors error in words.
fn in_words(e: &SafeTensorError) -> String {
    match e {
        SafeTensorError::InvalidOffset(name) => {
            format!("the byte range of the tensor '{name}' does not follow the one before it")
        }
        SafeTensorError::TensorInvalidInfo => {
            "a tensor's byte range does not fit its shape and type".into()
        }
        SafeTensorError::MetadataIncompleteBuffer => {
            "the tensors in the header do not cover the data exactly".into()
        }
        SafeTensorError::ValidationOverflow => "a tensor's size overflows".into(),
        other => format!("{other:?}"),
    }
}

/// Any JSON value in which no object gives a name twice (at any depth): deserialising it fails
/// on the first repeated name, naming it.
struct Distinct;

impl<'de> serde::Deserialize<'de> for Distinct {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(Distinct)
    }
}

impl<'de> serde::de::Visitor<'de> for Distinct {
    type Value = Distinct;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<M: serde::de::MapAccess<'de>>(self, mut map: M) -> Result<Distinct, M::Error> {
        let mut seen = std::collections::BTreeSet::new();
        while let Some(name) = map.next_key::<String>()? {
            if seen.contains(&name) {
                return Err(serde::de::Error::custom(format!(
                    "the name '{name}' is given twice in one object"
                )));
            }
            map.next_value::<Distinct>()?;
            seen.insert(name);
        }
        Ok(Distinct)
    }

    fn visit_seq<S: serde::de::SeqAccess<'de>>(self, mut seq: S) -> Result<Distinct, S::Error> {
        while seq.next_element::<Distinct>()?.is_some() {}
        Ok(Distinct)
    }

    fn visit_bool<E>(self, _: bool) -> Result<Distinct, E> {
        Ok(Distinct)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Distinct, E> {
        Ok(Distinct)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Distinct, E> {
        Ok(Distinct)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Distinct, E> {
        Ok(Distinct)
    }

    fn visit_str<E>(self, _: &str) -> Result<Distinct, E> {
        Ok(Distinct)
    }

    fn visit_unit<E>(self) -> Result<Distinct, E> {
        Ok(Distinct)
    }
}

/// Up to `n` more bytes from `reader` onto `buf`, growing it only as bytes arrive; whether all
/// `n` came before the end of the file.
fn take(reader: &mut impl Read, buf: &mut Vec<u8>, n: u64, file: &str) -> Result<bool, FileError> {
    let before = buf.len();
    reader
        .by_ref()
        .take(n)
        .read_to_end(buf)
        .map_err(|source| FileError::Io {
            file: file.to_string(),
            action: "read",
            source,
        })?;
    Ok((buf.len() - before) as u64 == n)
}

impl<R: Read> Opened<R> {
    /// Reads and parses the header of the file `file` from `reader`; `len` is the file's
    /// length where known. At most [`MAX_HEADER`] bytes are read.
    pub fn new(mut reader: R, len: Option<u64>, file: &str) -> Result<Self, FileError> {
        let corrupt = |reason: String| FileError::Corrupt {
            file: file.to_string(),
            reason,
        };
        let mut head = Vec::new();
        if !take(&mut reader, &mut head, 8, file)? {
            return Err(corrupt(format!(
                "it has {} bytes, fewer than the 8 of a header length",
                head.len()
            )));
        }
        let mut n = [0; 8];
        n.copy_from_slice(&head);
        let n = u64::from_le_bytes(n);
        if n > MAX_HEADER {
            return Err(corrupt(format!(
                "the header length is {n} bytes, more than the {MAX_HEADER} a header may have"
            )));
        }
        if len.is_some_and(|len| 8 + n > len) {
            return Err(corrupt(format!(
                "the header length ({n} bytes) runs past the end of the file"
            )));
        }
        if !take(&mut reader, &mut head, n, file)? {
            return Err(corrupt("the file ends inside the header".into()));
        }
        let not_json = |e: serde_json::Error| {
            corrupt(format!(
                "the header is not the JSON of a safetensors file: {e}"
            ))
        };
        // The format disallows a name given twice, and parsers differ on which entry counts
        // (serde_json keeps the last): such a file means different tensors to different
        // readers.
        serde_json::from_slice::<Distinct>(&head[8..]).map_err(not_json)?;
        let parsed: Metadata = serde_json::from_slice(&head[8..]).map_err(not_json)?;
        let tensors = parsed
            .tensors()
            .into_iter()
            .map(|(name, info)| {
                let listed = Listed {
                    dtype: format!("{:?}", info.dtype),
                    shape: info.shape.clone(),
                    range: info.data_offsets,
                };
                (name, listed)
            })
            .collect();
        let metadata = parsed.metadata().clone().unwrap_or_default();
        Ok(Opened {
            file: file.to_string(),
            metadata: metadata.into_iter().collect(),
            tensors,
            reader,
            len,
            head,
        })
    }

    /// Reads the tensors' data, once the caller has accepted the header: every tensor must
    /// hold `F32` or `F64`, their sizes must add up to at most [`MAX_ELEMENTS`] numbers and to
    /// the data the file has, and the byte ranges must follow each other.
    pub fn read(mut self) -> Result<Contents, FileError> {
        let file = self.file.clone();
        let corrupt = |reason: String| FileError::Corrupt {
            file: file.clone(),
            reason,
        };
        let (mut elements, mut data_len) = (0u64, 0u64);
        for (name, t) in &self.tensors {
            let size = match t.dtype.as_str() {
                "F32" => 4,
                "F64" => 8,
                other => {
                    return Err(FileError::Dtype {
                        file: file.clone(),
                        what: format!("the tensor '{name}'"),
                        expected: "F32 or F64".into(),
                        found: other.into(),
                    })
                }
            };
            let n = t
                .shape
                .iter()
                .try_fold(1u64, |n, &d| n.checked_mul(d as u64))
                .and_then(|n| elements.checked_add(n))
                .filter(|&n| n <= MAX_ELEMENTS)
                .ok_or_else(|| {
                    corrupt(format!(
                        "its tensors hold more than the {MAX_ELEMENTS} numbers a file may hold"
                    ))
                })?;
            data_len += (n - elements) * size;
            elements = n;
        }
        let after_header = self.len.map(|len| len - self.head.len() as u64);
        if after_header.is_some_and(|after| after != data_len) {
            return Err(corrupt(format!(
                "the header's tensors take {data_len} bytes, the file has {} after the header",
                after_header.unwrap_or_default()
            )));
        }
        let start = self.head.len();
        let mut bytes = std::mem::take(&mut self.head);
        if !take(&mut self.reader, &mut bytes, data_len, &file)? {
            return Err(corrupt("the file ends inside the tensor data".into()));
        }
        // The byte ranges: in order, each the size of its tensor, covering the data.
        SafeTensors::deserialize(&bytes).map_err(|e| corrupt(in_words(&e)))?;
        Ok(Contents {
            file,
            bytes,
            start,
            tensors: self.tensors,
        })
    }
}

/// A file read whole and checked (by [`Opened::read`]), its tensors not yet decoded.
pub(crate) struct Contents {
    file: String,
    bytes: Vec<u8>,
    /// Where the data starts in `bytes`.
    start: usize,
    tensors: BTreeMap<String, Listed>,
}

impl Contents {
    /// The tensor `name`, of `T`s: an error if there is none, it holds another type, or a
    /// number is not finite.
    pub fn tensor<T: Storable>(&self, name: &str) -> Result<Tensor<T>, FileError> {
        let file = || self.file.clone();
        let Some(listed) = self.tensors.get(name) else {
            return Err(FileError::MissingTensor {
                file: file(),
                tensor: name.into(),
            });
        };
        if listed.dtype != T::DTYPE {
            return Err(FileError::Dtype {
                file: file(),
                what: format!("the tensor '{name}'"),
                expected: T::DTYPE.into(),
                found: listed.dtype.clone(),
            });
        }
        let (from, to) = listed.range;
        let data = &self.bytes[self.start + from..self.start + to];
        let values: Vec<T> = data.chunks_exact(T::SIZE).map(T::read_le).collect();
        let t = Tensor::from_vec(values, &listed.shape).map_err(|e| FileError::Corrupt {
            file: file(),
            reason: e.to_string(),
        })?;
        if let Some((index, value)) = first_non_finite(&t) {
            return Err(FileError::NotFinite {
                file: file(),
                tensor: name.into(),
                index,
                value,
            });
        }
        Ok(t)
    }
}
