//! File-system helpers every stage shares: atomic replacement of a file, what a special file is, the
//! home directory.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

/// Suffix of the temporary name a file is written to before it is renamed into place (`pull`'s
/// downloads, the store, state files); input discovery counts such files as skipped.
pub const TMP_SUFFIX: &str = ".trailscope-tmp";

/// Replace `path` atomically: `write` fills a temporary file in the same directory (hidden, and
/// named with [`TMP_SUFFIX`] so input discovery counts it as skipped), which is fsynced and renamed
/// over `path`. A reader sees the old file or the new one, never a part; on failure the temporary
/// file is removed. `io_err` turns an I/O failure on a given path into the caller's error type.
///
/// The file is written through a buffer: serde's writers write a token at a time, and a store's
/// manifest listing 26 k input files was hundreds of thousands of system calls (`scan --store` over
/// many tiny files spent most of its time in the kernel).
pub fn write_atomic<E>(
    path: &Path,
    write: impl FnOnce(&mut io::BufWriter<File>) -> Result<(), E>,
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
    let f = std::fs::OpenOptions::new().write(true).create_new(true).open(&tmp).map_err(|e| io_err(&tmp, e))?;
    let mut w = io::BufWriter::with_capacity(256 << 10, f);
    let result = write(&mut w).and_then(|()| {
        let f = w.into_inner().map_err(|e| io_err(&tmp, e.into_error()))?;
        f.sync_all().map_err(|e| io_err(&tmp, e))
    });
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

/// A path as trailscope prints it (stderr, tables, JSON, CSV) and keys it (the store's manifests):
/// unambiguous and harmless (#13). Bytes that are not UTF-8 are written `\xNN`, a backslash `\\`,
/// and control characters (a newline, ESC, ...) and the characters that reorder or break lines
/// are escaped as in [`printable`]; everything else is the name itself. Two different paths never
/// print alike, and no name can start a line of its own or send an escape sequence to a terminal.
pub fn display_path(path: &Path) -> String {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        let bytes = path.as_os_str().as_bytes();
        // Most paths are printable ASCII without a backslash, which prints as itself: copied whole
        // (this runs once or twice per input file; char by char it was 5% of a question's CPU over
        // many small files).
        if bytes.iter().all(|&b| (0x20..0x7f).contains(&b) && b != b'\\') {
            return String::from_utf8(bytes.to_vec()).expect("ASCII is UTF-8");
        }
        let mut out = String::new();
        for chunk in bytes.utf8_chunks() {
            for c in chunk.valid().chars() {
                if c == '\\' {
                    out.push_str("\\\\");
                } else {
                    push_printable(c, &mut out);
                }
            }
            for b in chunk.invalid() {
                out.push_str(&format!("\\x{b:02x}"));
            }
        }
        out
    }
    #[cfg(not(unix))]
    {
        printable(&path.to_string_lossy()).into_owned()
    }
}

/// Text with its control characters written as visible escapes (`\x1b`, `\x0a`, `\u{202e}`): C0
/// and C1 controls, DEL, the line and paragraph separators and the bidirectional controls, which
/// could forge a line or drive a terminal (ANSI/OSC sequences) when printed raw.
pub fn printable(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.chars().any(needs_escape) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        push_printable(c, &mut out);
    }
    std::borrow::Cow::Owned(out)
}

fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{2028}' | '\u{2029}' | '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

fn push_printable(c: char, out: &mut String) {
    if !needs_escape(c) {
        out.push(c);
    } else if (c as u32) < 0x80 {
        out.push_str(&format!("\\x{:02x}", c as u32));
    } else {
        out.push_str(&format!("\\u{{{:x}}}", c as u32));
    }
}

/// The user's home directory (`HOME`, or `USERPROFILE` on Windows).
pub fn home_dir() -> Option<PathBuf> {
    std::env::var_os("HOME").or_else(|| std::env::var_os("USERPROFILE")).map(PathBuf::from)
}

/// A temporary directory removed when dropped (also on error and unwinding).
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    /// A new directory under `$TMPDIR` (or `/tmp`), named by process and time so runs never share one.
    pub fn new() -> crate::error::Result<TempDir> {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let dir = std::env::temp_dir().join(format!(".trailscope-spill-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| crate::error::Error::io(&dir, e))?;
        Ok(TempDir(dir))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    #[test]
    #[cfg(unix)]
    fn paths_print_unambiguously() {
        use std::os::unix::ffi::OsStrExt;
        let p = |b: &[u8]| display_path(Path::new(std::ffi::OsStr::from_bytes(b)));
        assert_eq!(p(b"testdata/s3/a.json.gz"), "testdata/s3/a.json.gz");
        assert_eq!(p(b"d/\xff.json"), "d/\\xff.json");
        assert_ne!(p(b"d/\xff.json"), p(b"d/\xfe.json"));
        // A backslash is escaped, so a name spelling an escape is not the byte it spells.
        assert_eq!(p(b"d/\\xff.json"), "d/\\\\xff.json");
        assert_ne!(p(b"d/\\xff.json"), p(b"d/\xff.json"));
        assert_eq!(p(b"a\nb\x1b[31m"), "a\\x0ab\\x1b[31m");
        assert_eq!(p("caf\u{e9}\u{202e}".as_bytes()), "caf\u{e9}\\u{202e}");
        assert_eq!(printable("ok \\ fine"), "ok \\ fine");
        // Every byte alone, after a printable prefix: the whole-copy path and the char-by-char one
        // print the same (a byte that is not printable ASCII, or a backslash, takes the second).
        for b in 0..=255u8 {
            let name = [b"AWSLogs/123/x-".as_slice(), &[b]].concat();
            let want: String = match b {
                b'\\' => "\\\\".into(),
                0x20..=0x7e => (b as char).to_string(),
                _ => format!("\\x{b:02x}"),
            };
            assert_eq!(p(&name), format!("AWSLogs/123/x-{want}"), "byte {b:#x}");
        }
        assert_eq!(printable("\x1b]0;title\x07"), "\\x1b]0;title\\x07");
    }

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
