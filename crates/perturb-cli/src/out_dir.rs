//! The output folder of `perturb train`: checked before training, and written so that a crash
//! or a full disk never leaves a half-written file in place of a good one.
//!
//! Every file is first written under a temporary name in the same folder (`.NAME.tmp-PID-N.EXT`,
//! the extension kept so that the picture encoders know the format), flushed to the disk, and
//! then renamed over the target: a reader sees the old file or the new one, never a mixture.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The name of the model file in the folder.
pub const MODEL: &str = "model.safetensors";

/// Creates `dir` (and its parents) and checks that files can be written there and that
/// `MODEL` is not a folder: a mistake in `--out` is found before training, not after.
pub fn prepare(dir: &Path) -> Result<(), String> {
    let shown = dir.display();
    if dir.exists() && !dir.is_dir() {
        return Err(format!("--out {shown} is a file, not a folder"));
    }
    std::fs::create_dir_all(dir)
        .map_err(|e| format!("--out {shown}: cannot create the folder: {e}"))?;
    for name in [
        MODEL,
        "loss.png",
        "loss.svg",
        "boundary.png",
        "boundary.svg",
    ] {
        let path = dir.join(name);
        if path.is_dir() {
            return Err(format!(
                "--out {shown}: {} is a folder; the run would write a file there",
                path.display()
            ));
        }
    }
    let probe = temporary(&dir.join("write-probe"));
    let written = std::fs::File::create(&probe).and_then(|mut f| f.write_all(b"perturb"));
    std::fs::remove_file(&probe).ok();
    written.map_err(|e| format!("--out {shown}: cannot write to the folder: {e}"))
}

/// A fresh temporary name next to `path`: `.STEM.tmp-PID-N.EXT`.
fn temporary(path: &Path) -> PathBuf {
    static COUNT: AtomicUsize = AtomicUsize::new(0);
    let n = COUNT.fetch_add(1, Ordering::Relaxed);
    let stem = path
        .file_stem()
        .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
    let ext = path
        .extension()
        .map_or_else(String::new, |e| format!(".{}", e.to_string_lossy()));
    path.with_file_name(format!(".{stem}.tmp-{}-{n}{ext}", std::process::id()))
}

/// Writes `path` atomically: `write` writes the file at the temporary path it is given, which
/// is then flushed to the disk and renamed over `path`. On any error the temporary file is
/// removed and `path` is as it was.
pub fn write_atomic(
    path: &Path,
    write: impl FnOnce(&Path) -> Result<(), String>,
) -> Result<(), String> {
    let tmp = temporary(path);
    let result = write(&tmp).and_then(|()| {
        let sync = |p: &Path| std::fs::File::open(p).and_then(|f| f.sync_all());
        sync(&tmp)
            .and_then(|()| std::fs::rename(&tmp, path))
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        // The rename itself reaches the disk with the folder's entry; where folders cannot
        // be opened or synced, the file is still whole.
        if let Some(parent) = path.parent() {
            sync(if parent.as_os_str().is_empty() {
                Path::new(".")
            } else {
                parent
            })
            .ok();
        }
        Ok(())
    });
    if result.is_err() {
        std::fs::remove_file(&tmp).ok();
    }
    result
}

/// Writes `bytes` to `path` atomically (see [`write_atomic`]).
pub fn write_bytes(path: &Path, bytes: &[u8]) -> Result<(), String> {
    write_atomic(path, |tmp| {
        std::fs::write(tmp, bytes).map_err(|e| format!("cannot write {}: {e}", path.display()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("perturb-out-dir-{name}-{}", std::process::id()));
        std::fs::remove_dir_all(&dir).ok();
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_failed_write_leaves_the_old_file_and_no_temporary() {
        let dir = scratch("failed");
        let path = dir.join(MODEL);
        write_bytes(&path, b"old").unwrap();
        let err = write_atomic(&path, |tmp| {
            std::fs::write(tmp, b"half").unwrap();
            Err("the disk is full".into())
        })
        .unwrap_err();
        assert_eq!(err, "the disk is full");
        assert_eq!(std::fs::read(&path).unwrap(), b"old");
        let names: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
        assert_eq!(names.len(), 1, "{names:?}");
        write_bytes(&path, b"new").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn temporary_names_keep_the_extension_and_differ() {
        let a = temporary(Path::new("out/boundary.png"));
        let b = temporary(Path::new("out/boundary.png"));
        assert_ne!(a, b);
        assert_eq!(a.extension().unwrap(), "png");
        assert_eq!(a.parent().unwrap(), Path::new("out"));
    }

    #[test]
    fn prepare_refuses_a_file_and_a_folder_in_place_of_the_model() {
        let dir = scratch("prepare");
        std::fs::write(dir.join("afile"), b"x").unwrap();
        assert!(prepare(&dir.join("afile"))
            .unwrap_err()
            .contains("is a file"));
        assert!(prepare(&dir.join("afile/sub")).is_err());
        std::fs::create_dir_all(dir.join("m").join(MODEL)).unwrap();
        assert!(prepare(&dir.join("m")).unwrap_err().contains("is a folder"));
        prepare(&dir.join("new/deeper")).unwrap();
        assert!(dir.join("new/deeper").is_dir());
        assert_eq!(
            std::fs::read_dir(dir.join("new/deeper")).unwrap().count(),
            0
        );
        std::fs::remove_dir_all(&dir).ok();
    }
}
