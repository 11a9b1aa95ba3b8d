//! Atomic writes: a reader, or the next run after a crash, sees the old file or the new one,
//! never a mixture.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use super::FileError;

/// A fresh temporary name next to `path`, in the same folder (so that the rename stays on one
/// file system): `.NAME.tmp-PID-N`.
fn temporary(path: &Path) -> PathBuf {
    static COUNT: AtomicUsize = AtomicUsize::new(0);
    let n = COUNT.fetch_add(1, Ordering::Relaxed);
    let name = path
        .file_name()
        .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
    path.with_file_name(format!(".{name}.tmp-{}-{n}", std::process::id()))
}

/// The file a write to `path` replaces: where `path` is a symbolic link, the file it points
/// to (as an ordinary write through the link would), so that the link stays a link; else
/// `path` itself (a dangling link is replaced by the file).
fn destination(path: &Path) -> PathBuf {
    match std::fs::symlink_metadata(path) {
        Ok(info) if info.file_type().is_symlink() => {
            std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
        }
        _ => path.to_path_buf(),
    }
}

/// Writes `bytes` to `path` atomically: first to a temporary file in the same folder, which is
/// flushed to the disk (`fsync`) and then renamed over `path` (over the file it points to, if
/// `path` is a symbolic link), with the old file's permissions. A crash or a full disk at any
/// point leaves the previous file whole; on an error the temporary file is removed. The model
/// files and checkpoints of this module are written this way.
///
/// ```
/// let dir = std::env::temp_dir().join(format!("perturb-doc-atomic-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let path = dir.join("notes.txt");
/// perturb_nn::io::write_atomic(&path, b"first").unwrap();
/// perturb_nn::io::write_atomic(&path, b"second").unwrap();
/// assert_eq!(std::fs::read(&path).unwrap(), b"second");
/// // A folder that does not exist: an error naming the file, and nothing written.
/// let err = perturb_nn::io::write_atomic(&dir.join("no/such/f"), b"x").unwrap_err();
/// assert!(err.to_string().contains("no/such/f"), "{err}");
/// std::fs::remove_dir_all(&dir).unwrap();
/// ```
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), FileError> {
    write_with(path, |f| f.write_all(bytes))
}

/// A new temporary file beside `path`, created for this write only: a name that exists
/// already (another writer's temporary file, or a link planted in a shared folder to make us
/// write through it) is skipped, never opened.
fn create_temporary(path: &Path) -> std::io::Result<(PathBuf, std::fs::File)> {
    let mut taken = 0;
    loop {
        let tmp = temporary(path);
        let created = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp);
        match created {
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && taken < 10_000 => taken += 1,
            other => return other.map(|f| (tmp, f)),
        }
    }
}

/// [`write_atomic`], the temporary file's contents written by `write`.
fn write_with(
    path: &Path,
    write: impl FnOnce(&mut std::fs::File) -> std::io::Result<()>,
) -> Result<(), FileError> {
    let shown = path.display().to_string();
    let path = &destination(path);
    let fail = |source| FileError::Io {
        file: shown.clone(),
        action: "write",
        source,
    };
    let (tmp, mut f) = create_temporary(path).map_err(fail)?;
    let written = (|| {
        // The new file keeps the old one's permissions (a private model stays private); on a
        // file system without them (FAT, some network shares) this may fail, harmlessly.
        if let Some(old) = std::fs::metadata(path).ok().filter(|m| m.is_file()) {
            f.set_permissions(old.permissions()).ok();
        }
        write(&mut f)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)
    })();
    if let Err(source) = written {
        std::fs::remove_file(&tmp).ok();
        return Err(fail(source));
    }
    // The rename reaches the disk with the folder's entry; where a folder cannot be opened or
    // synced (some systems), the file is still whole.
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    std::fs::File::open(parent).and_then(|d| d.sync_all()).ok();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_failing_halfway_leaves_the_old_file_and_no_temporary() {
        let dir = std::env::temp_dir().join(format!("perturb-atomic-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("model.safetensors");
        write_atomic(&path, b"old").unwrap();
        // As a full disk would: half the bytes reach the temporary file, then an error.
        let err = write_with(&path, |f| {
            f.write_all(b"ne")?;
            Err(std::io::Error::other("the disk is full"))
        })
        .unwrap_err();
        assert!(err.to_string().contains("the disk is full"), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), b"old");
        let names: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
        assert_eq!(names.len(), 1, "{names:?}");
        write_atomic(&path, b"new").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn temporary_names_sit_beside_the_file_and_differ() {
        let (a, b) = (
            temporary(Path::new("out/m.safetensors")),
            temporary(Path::new("out/m.safetensors")),
        );
        assert_ne!(a, b);
        assert_eq!(a.parent(), Some(Path::new("out")));
        assert!(a
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with(".m.safetensors.tmp-"));
    }
}
