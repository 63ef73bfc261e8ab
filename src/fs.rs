//! File-system helpers every stage shares: atomic replacement of a file, what a special file is, the
//! home directory.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use crate::layout::TMP_SUFFIX;

/// Replace `path` atomically: `write` fills a temporary file in the same directory (hidden, and
/// named with [`TMP_SUFFIX`] so input discovery counts it as skipped), which is fsynced and renamed
/// over `path`. A reader sees the old file or the new one, never a part; on failure the temporary
/// file is removed. `io_err` turns an I/O failure on a given path into the caller's error type.
pub fn write_atomic<E>(
    path: &Path,
    write: impl FnOnce(&mut File) -> Result<(), E>,
    io_err: impl Fn(&Path, io::Error) -> E,
) -> Result<(), E> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
    let name = path.file_name().map_or_else(|| "file".into(), |n| n.to_string_lossy());
    let tmp = dir.join(format!(".{name}.{}{TMP_SUFFIX}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).open(&tmp).map_err(|e| io_err(&tmp, e))?;
    let result = write(&mut f).and_then(|()| f.sync_all().map_err(|e| io_err(&tmp, e)));
    drop(f);
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        io_err(path, e)
    })
}

/// What kind of non-regular file this is, in words (`None` for a regular file).
pub fn special_kind(ft: std::fs::FileType) -> Option<&'static str> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if ft.is_fifo() {
            return Some("a named pipe (FIFO)");
        }
        if ft.is_socket() {
            return Some("a socket");
        }
        if ft.is_char_device() || ft.is_block_device() {
            return Some("a device");
        }
    }
    if ft.is_dir() {
        return Some("a directory");
    }
    if ft.is_file() || ft.is_symlink() {
        return None;
    }
    Some("a special file")
}

/// The user's home directory (`HOME`, or `USERPROFILE` on Windows).
pub fn home_dir() -> Option<PathBuf> {
    std::env::var_os("HOME").or_else(|| std::env::var_os("USERPROFILE")).map(PathBuf::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    #[test]
    fn replaces_whole_or_not_at_all() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("state");
        std::fs::write(&p, b"old").unwrap();
        let failed: io::Result<()> = write_atomic(
            &p,
            |f| {
                f.write_all(b"half")?;
                Err(io::Error::other("stop"))
            },
            |_, e| e,
        );
        assert!(failed.is_err());
        assert_eq!(std::fs::read(&p).unwrap(), b"old");
        write_atomic(&p, |f| f.write_all(b"new"), |_, e| e).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"new");
        // No temporary file is left behind either way.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
