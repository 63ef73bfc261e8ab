//! Reading one input file into memory as JSON text: memory-mapped when plain, inflated when gzipped
//! (detected by the magic bytes, not the name). Inflation uses libdeflate (see README: ~1.3 GB/s per core
//! here against ~1.0 for flate2 + zlib-rs), member by member so that multi-member gzip files lose
//! nothing, and stops at a per-file cap on decompressed bytes so a gzip bomb cannot exhaust memory.
//!
//! Hostile input (#13): the output buffer grows geometrically from what was really written, never
//! from a member's or the file's claimed size, and is never zero-filled, so the time is linear in the
//! decompressed bytes however many members a file has. Past [`PRIVATE_BYTES`] a buffer needs the one
//! process-wide token: at most one file at a time holds more, so concurrent bombs cost the cap once,
//! not once per thread. Only regular files are read: a FIFO is opened non-blocking and refused, as
//! opening it for reading would wait for a writer forever.

use std::fs::File;
use std::io::Read;
use std::ops::Deref;
use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};

/// The bytes of one file, ready to parse: mapped, or in the caller's reusable buffer.
pub enum Content<'a> {
    Mapped(memmap2::Mmap),
    Buffer(&'a [u8]),
}

impl Deref for Content<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Content::Mapped(m) => m,
            Content::Buffer(v) => v,
        }
    }
}

/// Why a file could not be turned into text. The message is shown to users next to the file name.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("cannot read: {0}")]
    Io(#[from] std::io::Error),
    #[error("empty file")]
    Empty,
    #[error("corrupt gzip: {0}")]
    Gzip(String),
    #[error("truncated gzip: the file ends inside a compressed stream (incomplete download?)")]
    TruncatedGzip,
    #[error("decompressed size exceeds the cap of {cap} bytes (gzip bomb? raise --max-file-mb)")]
    TooLarge { cap: u64 },
    #[error("{0} archive: unpack it first")]
    Archive(&'static str),
    /// Not a regular file (a FIFO, a socket, a device, a directory): never read.
    #[error("{0}, not a regular file: not read")]
    NotRegular(&'static str),
}

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
/// Files at most this size are read into memory; larger ones are memory-mapped.
const MMAP_THRESHOLD: u64 = 256 * 1024;
/// Decompression space a worker keeps from file to file and grows without asking: CloudTrail
/// delivery files are a few MB. Past it a buffer takes the process-wide token ([`DecodeBuffer`]).
pub const PRIVATE_BYTES: usize = 64 << 20;
/// The smallest output space offered to the inflater.
const MIN_SPACE: usize = 64 << 10;
/// Deflate's largest possible expansion (258 bytes from 2 bits): a trailing ISIZE claiming more than
/// this many times the file's size is a lie, not a size to reserve.
const MAX_RATIO: usize = 1032;

/// Held by the one buffer allowed past [`PRIVATE_BYTES`].
static LARGE: Mutex<()> = Mutex::new(());

/// A worker's decompression buffer, reused from file to file (fresh memory per file costs the
/// kernel's page zeroing, which measured more than the inflating itself on many small files). It
/// keeps at most `private` bytes between files; to grow past that it waits for the process-wide
/// token, which [`DecodeBuffer::release`] gives back (with the space) once the file is done.
pub struct DecodeBuffer {
    bytes: Vec<u8>,
    private: usize,
    large: Option<MutexGuard<'static, ()>>,
}

impl Default for DecodeBuffer {
    fn default() -> Self {
        DecodeBuffer::with_private(PRIVATE_BYTES)
    }
}

impl DecodeBuffer {
    /// A buffer that keeps `private` bytes without the token (tests use a small one).
    pub fn with_private(private: usize) -> Self {
        DecodeBuffer { bytes: Vec::new(), private, large: None }
    }

    /// The file's bytes are no longer needed: give back the space past `private` and the token.
    pub fn release(&mut self) {
        if self.bytes.capacity() > self.private {
            self.bytes = Vec::new();
        }
        self.large = None;
    }

    /// The space held now (for tests and accounting).
    pub fn capacity(&self) -> usize {
        self.bytes.capacity()
    }

    /// Whether this buffer holds the token (it is past `private`).
    pub fn holds_token(&self) -> bool {
        self.large.is_some()
    }

    /// Make room for `total` bytes in all (taking the token first when that is past `private`).
    fn reserve_total(&mut self, total: usize) {
        if total <= self.bytes.capacity() {
            return;
        }
        if total > self.private && self.large.is_none() {
            // Waiting is safe: a holder never waits for anything while it holds the token.
            self.large = Some(LARGE.lock().unwrap_or_else(PoisonError::into_inner));
        }
        self.bytes.reserve_exact(total - self.bytes.len());
    }
}

/// Open `path` for reading without ever blocking: a FIFO opened for reading waits for a writer, so
/// it is opened non-blocking and refused once `fstat` says what it is.
fn open_regular(path: &Path) -> Result<(File, u64), DecodeError> {
    let mut opts = std::fs::OpenOptions::new();
    opts.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.custom_flags(libc::O_NONBLOCK);
    }
    let file = opts.open(path)?;
    let meta = file.metadata()?;
    if let Some(kind) = crate::fs::special_kind(meta.file_type()) {
        return Err(DecodeError::NotRegular(kind));
    }
    Ok((file, meta.len()))
}

/// The bytes of `path` mapped, and whether they are gzipped, when its text is at least `from` bytes
/// (a gzip file's trailing ISIZE, when deflate could produce it from a file that size; a plain
/// file's length): a file to read a window at a time (`ingest::window`). `None` for any other file,
/// and for one that cannot be opened, read or mapped: reading it whole says why. Only a file that
/// is large is mapped (its first two and last four bytes are read to tell).
pub fn map_if_large(path: &Path, from: u64) -> Option<(memmap2::Mmap, bool)> {
    use std::os::unix::fs::FileExt;
    let (file, len) = open_regular(path).ok()?;
    if len < 4 || len.saturating_mul(MAX_RATIO as u64) < from {
        return None;
    }
    let (mut magic, mut isize) = ([0u8; 2], [0u8; 4]);
    file.read_exact_at(&mut magic, 0).ok()?;
    file.read_exact_at(&mut isize, len - 4).ok()?;
    let gzip = magic == GZIP_MAGIC;
    let size = if gzip { u64::from(u32::from_le_bytes(isize)) } else { len };
    if size < from || (gzip && size > len.saturating_mul(MAX_RATIO as u64)) {
        return None;
    }
    // SAFETY: as in `read_content`: read-only, and dropped before the caller is done with the file.
    let map = unsafe { memmap2::Mmap::map(&file) }.ok()?;
    Some((map, gzip))
}

/// Read `path` and return its JSON text, inflating gzip. `cap` bounds the decompressed size. `buf` is
/// reused from file to file; call [`DecodeBuffer::release`] when done with the content.
pub fn read_content<'a>(path: &Path, cap: u64, buf: &'a mut DecodeBuffer) -> Result<Content<'a>, DecodeError> {
    buf.release();
    let (mut file, len) = open_regular(path)?;
    if len == 0 {
        return Err(DecodeError::Empty);
    }
    if len > MMAP_THRESHOLD {
        // SAFETY: the map is read-only and dropped before this function's caller returns; a file
        // truncated underneath us by another process is the documented risk of mmap that we accept for
        // archives at rest (a copied or pulled tree is not written to while we read it).
        let map = unsafe { memmap2::Mmap::map(&file)? };
        if map.starts_with(&GZIP_MAGIC) {
            gunzip_into(&map, cap, buf)?;
            return Ok(Content::Buffer(&buf.bytes));
        }
        check_plain(&map, cap)?;
        return Ok(Content::Mapped(map));
    }
    let mut raw = Vec::with_capacity(len as usize);
    file.read_to_end(&mut raw)?;
    if raw.starts_with(&GZIP_MAGIC) {
        gunzip_into(&raw, cap, buf)?;
    } else {
        check_plain(&raw, cap)?;
        buf.bytes.clear();
        buf.bytes.extend_from_slice(&raw);
    }
    Ok(Content::Buffer(&buf.bytes))
}

/// Plain bytes pass if small enough and not another kind of archive.
fn check_plain(raw: &[u8], cap: u64) -> Result<(), DecodeError> {
    if raw.len() as u64 > cap {
        return Err(DecodeError::TooLarge { cap });
    }
    match raw.get(..4) {
        Some([b'P', b'K', 3, 4]) => Err(DecodeError::Archive("zip")),
        Some([0x28, 0xb5, 0x2f, 0xfd]) => Err(DecodeError::Archive("zstd")),
        Some([b'B', b'Z', b'h', _]) => Err(DecodeError::Archive("bzip2")),
        _ => Ok(()),
    }
}

/// Inflate every gzip member of `data` into a new buffer of at most `cap` bytes.
pub fn gunzip(data: &[u8], cap: u64) -> Result<Vec<u8>, DecodeError> {
    let mut out = DecodeBuffer::default();
    gunzip_into(data, cap, &mut out)?;
    Ok(std::mem::take(&mut out.bytes))
}

/// Inflate every gzip member of `data` into `out` (emptied first), at most `cap` bytes.
///
/// Each member is offered all the space left; when it does not fit, the whole buffer doubles (within
/// the cap) and that member is inflated again. Doublings are at most log2(cap / 64 KiB), each retry
/// costs at most the space it was offered, so the work is linear in the output whatever the number
/// of members. The trailing ISIZE (the last member's size mod 2^32: the whole size for the
/// single-member files CloudTrail writes) is only a first reservation, believed when deflate could
/// produce it from a file this size, and never written to before the inflater fills it.
pub fn gunzip_into(data: &[u8], cap: u64, out: &mut DecodeBuffer) -> Result<(), DecodeError> {
    out.release();
    out.bytes.clear();
    let limit = usize::try_from(cap).unwrap_or(usize::MAX);
    let claimed = match data.len().checked_sub(4) {
        Some(at) => u32::from_le_bytes(data[at..].try_into().expect("4 bytes")) as usize,
        None => 0,
    };
    let first = if claimed <= data.len().saturating_mul(MAX_RATIO) { claimed } else { 0 };
    out.reserve_total(first.max(MIN_SPACE).min(limit));
    let mut inflater = Inflater::new();
    let mut rest = data;
    while !rest.is_empty() {
        if !rest.starts_with(&GZIP_MAGIC) {
            // Zero padding after the last member is written by some tools; anything else is corrupt.
            if rest.iter().all(|&b| b == 0) {
                break;
            }
            return Err(DecodeError::Gzip(format!(
                "{} bytes of trailing garbage after the last gzip member",
                rest.len()
            )));
        }
        loop {
            let len = out.bytes.len();
            let room = limit - len;
            let offer = (out.bytes.capacity() - len).min(room);
            let spare = &mut out.bytes.spare_capacity_mut()[..offer];
            match inflater.member(rest, spare) {
                Ok((used_in, written)) => {
                    // SAFETY: libdeflate initialised the first `written` bytes of the spare space.
                    unsafe { out.bytes.set_len(len + written) };
                    rest = &rest[used_in..];
                    break;
                }
                Err(Inflate::NoRoom) if offer >= room => return Err(DecodeError::TooLarge { cap }),
                Err(Inflate::NoRoom) => {
                    // offer < room, so capacity < limit: doubling (within the limit) makes progress.
                    let grown = out.bytes.capacity().max(MIN_SPACE).saturating_mul(2).min(limit);
                    out.reserve_total(grown);
                }
                Err(Inflate::Bad) => return Err(diagnose(rest)),
            }
        }
    }
    Ok(())
}

/// libdeflate only says "bad data"; flate2 tells a truncated file from a corrupt one.
fn diagnose(member: &[u8]) -> DecodeError {
    let mut sink = [0u8; 64 * 1024];
    let mut dec = flate2::read::GzDecoder::new(member);
    loop {
        match dec.read(&mut sink) {
            Ok(0) => return DecodeError::Gzip("checksum or length mismatch".into()),
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return DecodeError::TruncatedGzip,
            Err(e) => return DecodeError::Gzip(e.to_string()),
        }
    }
}

enum Inflate {
    NoRoom,
    Bad,
}

/// A libdeflate decompressor; `libdeflate_gzip_decompress_ex` reports how much input a member used,
/// which the safe `libdeflater` wrapper hides (and without it a second member would be dropped silently).
struct Inflater(*mut libdeflate_sys::libdeflate_decompressor);

impl Inflater {
    fn new() -> Self {
        // SAFETY: plain constructor; a null return (out of memory) is checked below.
        let ptr = unsafe { libdeflate_sys::libdeflate_alloc_decompressor() };
        assert!(!ptr.is_null(), "libdeflate: out of memory");
        Inflater(ptr)
    }

    /// Inflate the first member of `input` into `out`: (input bytes used, output bytes written).
    /// `out` may be uninitialised: libdeflate only writes to it (and reads back what it wrote).
    fn member(&mut self, input: &[u8], out: &mut [std::mem::MaybeUninit<u8>]) -> Result<(usize, usize), Inflate> {
        let mut used_in = 0usize;
        let mut written = 0usize;
        // SAFETY: pointers and lengths come from live slices; libdeflate writes at most `out.len()`
        // bytes and never reads output it has not written.
        let rc = unsafe {
            libdeflate_sys::libdeflate_gzip_decompress_ex(
                self.0,
                input.as_ptr().cast(),
                input.len(),
                out.as_mut_ptr().cast(),
                out.len(),
                &mut used_in,
                &mut written,
            )
        };
        match rc {
            libdeflate_sys::libdeflate_result_LIBDEFLATE_SUCCESS => Ok((used_in, written)),
            libdeflate_sys::libdeflate_result_LIBDEFLATE_INSUFFICIENT_SPACE => Err(Inflate::NoRoom),
            _ => Err(Inflate::Bad),
        }
    }
}

impl Drop for Inflater {
    fn drop(&mut self) {
        // SAFETY: allocated by libdeflate_alloc_decompressor and freed once.
        unsafe { libdeflate_sys::libdeflate_free_decompressor(self.0) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn inflates_single_and_multi_member() {
        let one = gz(b"{\"Records\":[]}");
        assert_eq!(gunzip(&one, 1 << 20).unwrap(), b"{\"Records\":[]}");
        let mut two = gz(b"hello ");
        two.extend(gz(b"world"));
        assert_eq!(gunzip(&two, 1 << 20).unwrap(), b"hello world");
    }

    #[test]
    fn rejects_a_lying_size_trailer() {
        let data = vec![b'x'; 100_000];
        let mut g = gz(&data);
        let n = g.len();
        g[n - 4..].copy_from_slice(&10u32.to_le_bytes()); // lie in ISIZE
                                                          // The ISIZE check inside libdeflate rejects the member: reported as corrupt, not silently cut.
        assert!(gunzip(&g, 1 << 20).is_err());
    }

    #[test]
    fn truncated_and_bomb_are_errors() {
        let g = gz(&vec![b'a'; 50_000]);
        let cut = &g[..g.len() / 2];
        assert!(matches!(gunzip(cut, 1 << 20), Err(DecodeError::TruncatedGzip)));
        assert!(matches!(gunzip(&g, 1000), Err(DecodeError::TooLarge { cap: 1000 })));
    }

    /// 5,000 one-line members, then a last member whose trailer claims ~4 GiB (#13): each member used
    /// to get a zero-filled buffer of the claimed size (up to the cap), minutes of memset for a small
    /// file. Now the space follows what was written: it stays small, and the lie is reported.
    #[test]
    fn a_lying_last_member_costs_nothing_before_it() {
        let mut data = Vec::new();
        for i in 0..5_000 {
            data.extend(gz(format!("{{\"n\":{i}}}\n").as_bytes()));
        }
        let mut last = gz(b"{\"n\":-1}\n");
        let n = last.len();
        last[n - 4..].copy_from_slice(&0xFFFF_FFF0u32.to_le_bytes());
        data.extend(last);
        let mut buf = DecodeBuffer::default();
        let cap = 8 << 20;
        assert!(matches!(gunzip_into(&data, cap, &mut buf), Err(DecodeError::Gzip(_))));
        assert!(buf.capacity() <= 1 << 20, "buffer grew to {} bytes for ~60 KB of output", buf.capacity());
    }

    /// The same many members and a real last member of 4 MiB: everything is read, in order, and the
    /// buffer is at most twice the output (it doubles), not a claimed size per member.
    #[test]
    fn many_members_and_a_large_last_one_read_whole() {
        let mut data = Vec::new();
        let mut want = Vec::new();
        for i in 0..5_000 {
            let line = format!("{{\"n\":{i}}}\n");
            data.extend(gz(line.as_bytes()));
            want.extend_from_slice(line.as_bytes());
        }
        let big = vec![b' '; 4 << 20];
        data.extend(gz(&big));
        want.extend_from_slice(&big);
        let mut buf = DecodeBuffer::default();
        gunzip_into(&data, 1 << 30, &mut buf).unwrap();
        assert!(buf.bytes == want, "the members' bytes, in order");
        assert!(buf.capacity() <= 2 * want.len() + MIN_SPACE, "{} bytes held for {}", buf.capacity(), want.len());
    }

    /// A buffer past its private space holds the process-wide token (no other buffer can grow past
    /// its own meanwhile), and gives back both the space and the token on release (#13: concurrent
    /// bombs cost the cap once, not once per thread).
    #[test]
    fn growing_past_the_private_space_takes_the_token() {
        let mut buf = DecodeBuffer::with_private(1 << 20);
        let data = gz(&vec![b'a'; 4 << 20]);
        gunzip_into(&data, 16 << 20, &mut buf).unwrap();
        assert_eq!(buf.bytes.len(), 4 << 20);
        assert!(buf.holds_token());
        assert!(LARGE.try_lock().is_err(), "the token is held while the content is in use");
        buf.release();
        assert!(!buf.holds_token());
        assert!(buf.capacity() <= 1 << 20);
        // A small file needs no token.
        gunzip_into(&gz(b"small"), 16 << 20, &mut buf).unwrap();
        assert!(!buf.holds_token());
    }

    #[test]
    fn refuses_archives() {
        assert!(matches!(check_plain(b"PK\x03\x04rest", 100), Err(DecodeError::Archive("zip"))));
        assert!(matches!(check_plain(b"[]", 1), Err(DecodeError::TooLarge { cap: 1 })));
    }
}
