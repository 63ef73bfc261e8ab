//! A large delivery file read a window of records at a time: inflated as a stream, its records
//! parsed as the text comes (`fast::RecordParser`, the leaves of a whole-file parse) and handed on a
//! window at a time, so that a worker holds a MB or two of its text and records, not the whole
//! file's (a 54 MB file took 54 MB of text and ~40 MB of parsed records).
//!
//! Only the shape CloudTrail delivers is read so: `{"Records":[` objects `]}`, with whitespace
//! anywhere between tokens. Anything else (another shape or key, text after the end, a file that
//! ends inside a record, a record the one-pass parser is not sure of, a record over
//! [`PENDING_LIMIT`], text that is not UTF-8, no record that looks like CloudTrail, an inflation
//! error, more than the cap) gives up ([`GiveUp`]) and the caller reads the file whole, which gives
//! the answer or the error as for any file.

use std::io::Read;

use crate::ingest::fast::RecordParser;
use crate::ingest::parse;
use crate::ingest::record::Leaves;

/// Windowed reading gave up on a file: read it whole instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GiveUp;

/// Bytes asked of the source per read.
const READ_BYTES: usize = 1 << 20;

/// Text read and not yet parsed into records, at most: a record can be this long (or the parser is
/// unsure of one and more text does not help).
const PENDING_LIMIT: usize = 32 << 20;

/// The UTF-8 byte-order mark, which a file may start with.
const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// Where the parse of the text read so far stopped.
enum Stop {
    /// A window's worth of records.
    Window,
    /// The text read ends (inside a record, or before the next token): read more.
    More,
    /// The records' `]`.
    End,
    /// Not the delivery shape.
    Bad,
}

/// Hand `each` the records of the delivery file `src` yields, in order, a window at a time (whole
/// records of about `window` bytes of text at most, or those of the text read so far). Returns the
/// bytes read from `src`. Gives up past `cap` bytes, on a read error, on any text it does not take
/// (see the module), or when `each` gives up.
pub fn for_each_window(
    src: impl Read,
    cap: u64,
    window: usize,
    mut each: impl FnMut(&[Leaves<'_>]) -> Result<(), GiveUp>,
) -> Result<u64, GiveUp> {
    let mut text = Text { src, buf: Vec::new(), len: 0, eof: false, read: 0, cap };
    let mut pos = text.prefix()?;
    pos = text.skip_ws(pos)?;
    if text.at(pos)? == Some(b']') {
        return text.suffix(pos + 1);
    }
    // Between records: a record next, or a separator after one.
    let mut after_record = false;
    let (mut any, mut cloudtrail) = (false, false);
    let mut kept: Vec<Leaves<'static>> = Vec::new();
    loop {
        let (at, stop) = {
            // The text read, to its last whole UTF-8 character (the rest comes with the next read).
            let bytes = &text.buf[..text.len];
            let valid = match std::str::from_utf8(bytes) {
                Ok(all) => all,
                // SAFETY: `valid_up_to` bytes were just checked.
                Err(e) => unsafe { std::str::from_utf8_unchecked(&bytes[..e.valid_up_to()]) },
            };
            let mut records = parse::recycle(std::mem::take(&mut kept));
            let mut parser = RecordParser::new(valid);
            let (start, mut at) = (pos, pos);
            let stop = loop {
                let next = ws(valid.as_bytes(), at);
                let Some(&b) = valid.as_bytes().get(next) else { break Stop::More };
                if after_record {
                    match b {
                        b',' => {
                            at = next + 1;
                            after_record = false;
                            continue;
                        }
                        b']' => {
                            at = next + 1;
                            break Stop::End;
                        }
                        _ => break Stop::Bad,
                    }
                }
                if b != b'{' {
                    break Stop::Bad;
                }
                match parser.record(next, &mut records) {
                    Ok(end) => {
                        at = end;
                        after_record = true;
                        if at - start >= window {
                            break Stop::Window;
                        }
                    }
                    Err(_) => break Stop::More,
                }
            };
            if !records.is_empty() {
                any = true;
                cloudtrail = cloudtrail || records.iter().any(Leaves::looks_like_cloudtrail);
                each(&records)?;
            }
            kept = parse::recycle(records);
            (at, stop)
        };
        // Forget what was parsed; positions move with the bytes kept.
        text.buf.copy_within(at..text.len, 0);
        text.len -= at;
        pos = 0;
        match stop {
            Stop::Window => {}
            Stop::More => {
                if text.len > PENDING_LIMIT || !text.fill()? {
                    return Err(GiveUp);
                }
            }
            Stop::End if any && !cloudtrail => return Err(GiveUp),
            Stop::End => return text.suffix(0),
            Stop::Bad => return Err(GiveUp),
        }
    }
}

/// The position of the first byte from `i` that is not JSON whitespace (or the end).
fn ws(s: &[u8], mut i: usize) -> usize {
    while let Some(b' ' | b'\n' | b'\t' | b'\r') = s.get(i) {
        i += 1;
    }
    i
}

/// The text read so far (from the first byte not yet forgotten) and its source.
struct Text<R> {
    src: R,
    /// The text is `buf[..len]`; the rest is space to read into (zeroed once, when it was added).
    buf: Vec<u8>,
    len: usize,
    eof: bool,
    /// Bytes read from the source in all.
    read: u64,
    cap: u64,
}

impl<R: Read> Text<R> {
    /// Read more; false at the end of the source.
    fn fill(&mut self) -> Result<bool, GiveUp> {
        if self.eof {
            return Ok(false);
        }
        if self.buf.len() - self.len < READ_BYTES / 4 {
            let grown = (self.buf.len() * 2).max(self.len + READ_BYTES);
            self.buf.resize(grown, 0);
        }
        let n = loop {
            match self.src.read(&mut self.buf[self.len..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => return Err(GiveUp),
            }
        };
        self.len += n;
        self.read += n as u64;
        if self.read > self.cap {
            return Err(GiveUp);
        }
        self.eof = n == 0;
        Ok(n > 0)
    }

    /// The byte at `i`, reading as far as needed; `None` past the end of the text.
    fn at(&mut self, i: usize) -> Result<Option<u8>, GiveUp> {
        while i >= self.len {
            if !self.fill()? {
                return Ok(None);
            }
        }
        Ok(Some(self.buf[i]))
    }

    fn skip_ws(&mut self, mut i: usize) -> Result<usize, GiveUp> {
        while let Some(b' ' | b'\n' | b'\t' | b'\r') = self.at(i)? {
            i += 1;
        }
        Ok(i)
    }

    /// `i` past `bytes` at `i`, or give up.
    fn expect(&mut self, i: usize, bytes: &[u8]) -> Result<usize, GiveUp> {
        for (k, &b) in bytes.iter().enumerate() {
            if self.at(i + k)? != Some(b) {
                return Err(GiveUp);
            }
        }
        Ok(i + bytes.len())
    }

    /// `{"Records":[` (after a byte-order mark and whitespace): the position after the `[`.
    fn prefix(&mut self) -> Result<usize, GiveUp> {
        let mut i = 0;
        if self.at(2)?.is_some() && self.buf[..self.len].starts_with(UTF8_BOM) {
            i = UTF8_BOM.len();
        }
        i = self.skip_ws(i)?;
        i = self.expect(i, b"{")?;
        i = self.skip_ws(i)?;
        i = self.expect(i, b"\"Records\"")?;
        i = self.skip_ws(i)?;
        i = self.expect(i, b":")?;
        i = self.skip_ws(i)?;
        self.expect(i, b"[")
    }

    /// After the records' `]` at `i`: `}`, then nothing but whitespace. The bytes read in all.
    fn suffix(&mut self, i: usize) -> Result<u64, GiveUp> {
        let i = self.skip_ws(i)?;
        let i = self.expect(i, b"}")?;
        let i = self.skip_ws(i)?;
        match self.at(i)? {
            None => Ok(self.read),
            Some(_) => Err(GiveUp),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A source that gives at most `step` bytes per read, to cut the text everywhere.
    struct Trickle<'a> {
        text: &'a [u8],
        step: usize,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
            let n = self.step.min(out.len()).min(self.text.len());
            out[..n].copy_from_slice(&self.text[..n]);
            self.text = &self.text[n..];
            Ok(n)
        }
    }

    /// Each record's event name and request parameters as JSON text (as `parse` leaves them), the
    /// number of windows, and the bytes read.
    type Seen = (Vec<(Option<String>, Option<String>)>, usize, u64);

    fn leaves(records: &[Leaves<'_>]) -> Vec<(Option<String>, Option<String>)> {
        let text = |leaf: crate::ingest::record::Leaf<'_>| leaf.map(|j| j.text.to_string());
        records.iter().map(|r| (text(r.event_name), text(r.request_parameters))).collect()
    }

    fn windows(text: &str, window: usize, step: usize) -> Result<Seen, GiveUp> {
        let mut records = Vec::new();
        let mut count = 0;
        let read = for_each_window(Trickle { text: text.as_bytes(), step }, u64::MAX, window, |part| {
            assert!(!part.is_empty(), "an empty window");
            records.extend(leaves(part));
            count += 1;
            Ok(())
        })?;
        Ok((records, count, read))
    }

    /// Every record comes out once, in order, with the leaves of the whole file parsed at once,
    /// however the reads cut the text (inside strings with escaped quotes and backslashes, braces
    /// inside strings, nested objects and arrays, multi-byte characters, whitespace between every
    /// token), in windows of about the size asked.
    #[test]
    fn a_delivery_file_comes_out_in_windows_of_whole_records() {
        let records: Vec<String> = (0..40)
            .map(|i| {
                format!(
                    r#"{{"eventTime":"2024-01-01T00:00:{:02}Z","eventName":"Get\"{{[x{i}","requestParameters":{{"a":[1,{{"b":"\\"}}],"c":"é}}"}},"n":{i}}}"#,
                    i % 60
                )
            })
            .collect();
        let text = format!("\u{feff} \n{{ \"Records\" :\n[ {} ]\n}}\n", records.join(" ,\n "));
        let (_, whole) = parse::parse(text.as_bytes()).unwrap();
        let expected = leaves(&whole);
        assert_eq!(expected.len(), 40);
        for step in [1, 3, 7, 64, 1 << 20] {
            for window in [1, 1000, usize::MAX] {
                let (got, count, read) = windows(&text, window, step).unwrap();
                assert_eq!(got, expected, "step {step} window {window}");
                assert_eq!(read, text.len() as u64);
                match (window, step) {
                    (1, _) => assert_eq!(count, records.len()),
                    (usize::MAX, 1048576) => assert_eq!(count, 1),
                    (1000, 1048576) => assert!((3..records.len()).contains(&count), "{count} windows of 1000 bytes"),
                    _ => assert!(count >= 1),
                }
            }
        }
        assert_eq!(windows("{\"Records\":[]}", 10, 1), Ok((Vec::new(), 0, 14)));
    }

    /// Any other text gives up, for the file to be read whole.
    #[test]
    fn anything_but_a_delivery_file_gives_up() {
        for text in [
            r#"[{"eventName":"A"}]"#,
            r#"{"eventName":"A"}"#,
            "{\"eventName\":\"A\"}\n{\"eventName\":\"B\"}",
            r#"{"Events":[{"CloudTrailEvent":"{}"}]}"#,
            r#"{"x":1,"Records":[{"eventName":"A"}]}"#,
            r#"{"Records":[{"eventName":"A"}],"x":1}"#,
            r#"{"Records":[{"eventName":"A"}]}{"Records":[]}"#,
            r#"{"Records":[{"eventName":"A"}]} x"#,
            r#"{"Records":[{"eventName":"A"},]}"#,
            r#"{"Records":[{"eventName":"A"} {"eventName":"B"}]}"#,
            r#"{"Records":["x"]}"#,
            r#"{"Records":[{"x":1}]}"#,
            r#"{"Records":[{"eventName":"A","eventName":"B"}]}"#,
            r#"{"Records":[{"eventName":"A"}"#,
            r#"{"Records":[{"eventName":"A}]}"#,
            r#"{"Records":[{"eventName":"A"}}]}"#,
            r#"{"Rec"#,
            "",
        ] {
            for step in [1, 1 << 20] {
                assert_eq!(windows(text, 1, step).map(|(r, ..)| r.len()), Err(GiveUp), "{text:?}");
            }
        }
        // Past the cap, and when the caller gives up.
        let text = br#"{"Records":[{"eventName":"A"},{"eventName":"B"}]}"#;
        assert_eq!(for_each_window(&text[..], 20, 1, |_| Ok(())), Err(GiveUp));
        assert_eq!(for_each_window(&text[..], text.len() as u64, 1, |_| Ok(())), Ok(text.len() as u64));
        assert_eq!(for_each_window(&text[..], u64::MAX, 1, |_| Err(GiveUp)), Err(GiveUp));
        // Not UTF-8, and no record that looks like CloudTrail (`parse` skips such a file).
        let latin1 = b"{\"Records\":[{\"eventName\":\"caf\xe9\"}]}";
        assert_eq!(for_each_window(&latin1[..], u64::MAX, 1, |_| Ok(())), Err(GiveUp));
        let other = br#"{"Records":[{"x":1},{"y":2}]}"#;
        assert_eq!(for_each_window(&other[..], u64::MAX, 1, |_| Ok(())), Err(GiveUp));
    }
}
