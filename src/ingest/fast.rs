//! The one-pass parser of record files: `{"Records":[...]}` as CloudTrail delivers to S3, a JSON
//! array of records, or JSON Lines. It checks the whole text as JSON and fills each record's
//! [`Leaves`] as it goes, nested objects (`userIdentity`, `tlsDetails`, ...) included, where the serde
//! parser captures those objects whole and parses them a second time (`Leaves::of`).
//!
//! It takes only what it is sure of. Anything else (a JSON error, a duplicate field, an escaped key
//! where a field name is looked up, a record or nested object that is not an object, deep nesting,
//! the Event-history shape) makes it give up on the file ([`Unsure`]), and `parse` hands the file to
//! serde, which gives the answer or the error with its line and column. So for every file it takes,
//! its leaves are serde's: `tests` here, the parse tests and the fuzz target compare the two.

use crate::ingest::parse::Shape;
use crate::ingest::record::{Json, Leaf, Leaves};

/// The fast parser gave up on a file: serde decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unsure;

type Step<T> = Result<T, Unsure>;

/// Nesting deeper than this is left to serde (whose limit, 128, counts the same containers).
const MAX_DEPTH: u32 = 100;

/// The records of `body` (the file's text, starting at its first `[` or `{`), or [`Unsure`].
pub fn parse(body: &str) -> Result<(Shape, Vec<Leaves<'_>>), Unsure> {
    let mut p = Parser { text: body, s: body.as_bytes(), i: 0, depth: 0 };
    // Records are about a kilobyte: fewer copies of the vector as it grows, at most 0.7 of the text.
    let mut records = Vec::with_capacity(body.len() / 1024);
    let shape = match p.s.first() {
        Some(b'[') => {
            p.records(&mut records)?;
            Shape::Array
        }
        Some(b'{') => p.envelope_or_lines(&mut records)?,
        _ => return Err(Unsure),
    };
    p.ws();
    if p.i != p.s.len() {
        return Err(Unsure);
    }
    Ok((shape, records))
}

struct Parser<'a> {
    text: &'a str,
    s: &'a [u8],
    i: usize,
    depth: u32,
}

impl<'a> Parser<'a> {
    fn ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\t' | b'\r') = self.s.get(self.i) {
            self.i += 1;
        }
    }

    fn peek(&self) -> Step<u8> {
        self.s.get(self.i).copied().ok_or(Unsure)
    }

    fn eat(&mut self, b: u8) -> Step<()> {
        if self.s.get(self.i) == Some(&b) {
            self.i += 1;
            Ok(())
        } else {
            Err(Unsure)
        }
    }

    fn enter(&mut self) -> Step<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(Unsure);
        }
        Ok(())
    }

    /// `{"Records":[...]}` with no other key, or a stream of records (JSON Lines) whose first has
    /// neither `Records` nor `Events` (serde reads the first object as an envelope).
    fn envelope_or_lines(&mut self, records: &mut Vec<Leaves<'a>>) -> Step<Shape> {
        let start = self.i;
        self.eat(b'{')?;
        self.ws();
        if self.s.get(self.i) == Some(&b'"') && self.key()? == b"Records" {
            self.ws();
            self.eat(b':')?;
            self.ws();
            self.enter()?;
            self.records(records)?;
            self.ws();
            self.eat(b'}')?;
            return Ok(Shape::Records);
        }
        self.i = start;
        loop {
            self.ws();
            if self.i == self.s.len() {
                return Ok(Shape::Lines);
            }
            let before = records.len();
            records.push(self.record()?);
            if before == 0 && self.first_is_envelope(start)? {
                return Err(Unsure);
            }
        }
    }

    /// Whether the object at `start` has a `Records` or `Events` key at its top level.
    fn first_is_envelope(&mut self, start: usize) -> Step<bool> {
        let end = self.i;
        self.i = start + 1;
        let mut found = false;
        self.depth += 1;
        self.object_fields(|p, key| {
            found |= key == b"Records" || key == b"Events";
            p.value()
        })?;
        self.depth -= 1;
        debug_assert_eq!(self.i, end);
        self.i = end;
        Ok(found)
    }

    /// `[` records `]`, each an object.
    fn records(&mut self, records: &mut Vec<Leaves<'a>>) -> Step<()> {
        self.eat(b'[')?;
        self.ws();
        if self.s.get(self.i) == Some(&b']') {
            self.i += 1;
            return Ok(());
        }
        loop {
            self.ws();
            records.push(self.record()?);
            self.ws();
            match self.peek()? {
                b',' => self.i += 1,
                b']' => {
                    self.i += 1;
                    return Ok(());
                }
                _ => return Err(Unsure),
            }
        }
    }

    /// The fields of the object starting at `self.i` (after `{`), each handed to `field` positioned
    /// at its value. Keys are looked up as written: an escaped key is left to serde.
    fn object_fields(&mut self, mut field: impl FnMut(&mut Self, &'a [u8]) -> Step<()>) -> Step<()> {
        self.ws();
        if self.s.get(self.i) == Some(&b'}') {
            self.i += 1;
            return Ok(());
        }
        loop {
            self.ws();
            let key = self.key()?;
            self.ws();
            self.eat(b':')?;
            self.ws();
            field(self, key)?;
            self.ws();
            match self.peek()? {
                b',' => self.i += 1,
                b'}' => {
                    self.i += 1;
                    return Ok(());
                }
                _ => return Err(Unsure),
            }
        }
    }

    /// One record: an object. A field named twice is an error to serde.
    fn record(&mut self) -> Step<Leaves<'a>> {
        self.eat(b'{')?;
        self.enter()?;
        let mut l = Leaves::default();
        let mut seen = 0u32;
        self.object_fields(|p, key| {
            let (bit, slot): (u32, &mut Leaf<'a>) = match key {
                b"eventVersion" => (0, &mut l.event_version),
                b"eventTime" => (1, &mut l.event_time),
                b"eventSource" => (2, &mut l.event_source),
                b"eventName" => (3, &mut l.event_name),
                b"awsRegion" => (4, &mut l.aws_region),
                b"sourceIPAddress" => (5, &mut l.source_ip),
                b"userAgent" => (6, &mut l.user_agent),
                b"errorCode" => (7, &mut l.error_code),
                b"errorMessage" => (8, &mut l.error_message),
                b"requestID" => (9, &mut l.request_id),
                b"eventID" => (10, &mut l.event_id),
                b"readOnly" => (11, &mut l.read_only),
                b"resources" => (12, &mut l.resources),
                b"eventType" => (13, &mut l.event_type),
                b"managementEvent" => (14, &mut l.management_event),
                b"recipientAccountId" => (15, &mut l.recipient_account_id),
                b"sharedEventID" => (16, &mut l.shared_event_id),
                b"vpcEndpointId" => (17, &mut l.vpc_endpoint_id),
                b"eventCategory" => (18, &mut l.event_category),
                b"CloudTrailEvent" => (19, &mut l.cloudtrail_event),
                b"userIdentity" => {
                    once(&mut seen, 20)?;
                    return p.user_identity(&mut l);
                }
                b"requestParameters" => (21, &mut l.request_parameters),
                b"responseElements" => {
                    once(&mut seen, 22)?;
                    let (whole, inner) = p.object_with(b"ConsoleLogin")?;
                    (l.response_elements, l.console_login) = (whole, inner);
                    return Ok(());
                }
                b"additionalEventData" => {
                    once(&mut seen, 23)?;
                    let (whole, inner) = p.object_with(b"MFAUsed")?;
                    (l.additional_event_data, l.mfa_used) = (whole, inner);
                    return Ok(());
                }
                b"tlsDetails" => {
                    once(&mut seen, 24)?;
                    l.tls_version = p.object_with(b"tlsVersion")?.1;
                    return Ok(());
                }
                _ => return p.value(),
            };
            once(&mut seen, bit)?;
            *slot = p.leaf()?;
            Ok(())
        })?;
        self.depth -= 1;
        Ok(l)
    }

    /// `userIdentity`: an object gives its leaves; anything else none (as serde's lenient `nested`).
    fn user_identity(&mut self, l: &mut Leaves<'a>) -> Step<()> {
        if self.peek()? != b'{' {
            return self.value();
        }
        self.i += 1;
        self.enter()?;
        let mut seen = 0u32;
        self.object_fields(|p, key| {
            let (bit, slot): (u32, &mut Leaf<'a>) = match key {
                b"type" => (0, &mut l.identity_type),
                b"principalId" => (1, &mut l.principal_id),
                b"arn" => (2, &mut l.arn),
                b"accountId" => (3, &mut l.account_id),
                b"accessKeyId" => (4, &mut l.access_key_id),
                b"userName" => (5, &mut l.user_name),
                b"invokedBy" => (6, &mut l.invoked_by),
                b"sessionContext" => {
                    once(&mut seen, 7)?;
                    return p.session_context(l);
                }
                b"onBehalfOf" => {
                    once(&mut seen, 8)?;
                    return p.fields_of(&mut [
                        ("userId", &mut l.on_behalf_of_user_id),
                        ("identityStoreArn", &mut l.on_behalf_of_identity_store_arn),
                    ]);
                }
                _ => return p.value(),
            };
            once(&mut seen, bit)?;
            *slot = p.leaf()?;
            Ok(())
        })?;
        self.depth -= 1;
        Ok(())
    }

    /// `userIdentity.sessionContext`: `null` or an object (anything else is left to serde).
    fn session_context(&mut self, l: &mut Leaves<'a>) -> Step<()> {
        if self.null()? {
            return Ok(());
        }
        self.eat(b'{')?;
        self.enter()?;
        let mut seen = 0u32;
        self.object_fields(|p, key| match key {
            b"sessionIssuer" => {
                once(&mut seen, 0)?;
                p.fields_of(&mut [
                    ("type", &mut l.issuer_type),
                    ("principalId", &mut l.issuer_principal_id),
                    ("arn", &mut l.issuer_arn),
                    ("userName", &mut l.issuer_user_name),
                ])
            }
            b"attributes" => {
                once(&mut seen, 1)?;
                p.fields_of(&mut [
                    ("creationDate", &mut l.creation_date),
                    ("mfaAuthenticated", &mut l.mfa_authenticated),
                ])
            }
            b"sourceIdentity" => {
                once(&mut seen, 2)?;
                l.source_identity = p.leaf()?;
                Ok(())
            }
            _ => p.value(),
        })?;
        self.depth -= 1;
        Ok(())
    }

    /// A nested object of leaves (`sessionIssuer`, ...): `null`, or an object whose keys named in
    /// `fields` fill their leaf (each at most once); anything else is left to serde.
    fn fields_of(&mut self, fields: &mut [(&str, &mut Leaf<'a>)]) -> Step<()> {
        if self.null()? {
            return Ok(());
        }
        self.eat(b'{')?;
        self.enter()?;
        let mut seen = 0u32;
        self.object_fields(|p, key| {
            let Some(n) = fields.iter().position(|(name, _)| name.as_bytes() == key) else { return p.value() };
            once(&mut seen, n as u32)?;
            *fields[n].1 = p.leaf()?;
            Ok(())
        })?;
        self.depth -= 1;
        Ok(())
    }

    /// A value kept whole (`responseElements`, ...) and, when it is an object, its field `name`.
    fn object_with(&mut self, name: &[u8]) -> Step<(Leaf<'a>, Leaf<'a>)> {
        let start = self.i;
        if self.peek()? != b'{' {
            return Ok((self.leaf()?, None));
        }
        self.i += 1;
        self.enter()?;
        let mut inner = None;
        let mut seen = false;
        self.object_fields(|p, key| {
            if key != name {
                return p.value();
            }
            if std::mem::replace(&mut seen, true) {
                return Err(Unsure);
            }
            inner = p.leaf()?;
            Ok(())
        })?;
        self.depth -= 1;
        Ok((Some(Json::new(&self.text[start..self.i])), inner))
    }

    /// `null` (consumed: `true`), or not (nothing consumed).
    fn null(&mut self) -> Step<bool> {
        if self.peek()? != b'n' {
            return Ok(false);
        }
        self.literal(b"null")?;
        Ok(true)
    }

    /// Any value as its JSON text; `None` for `null`.
    fn leaf(&mut self) -> Step<Leaf<'a>> {
        let start = self.i;
        match self.peek()? {
            b'"' => {
                let escaped = self.string()?;
                let text = &self.text[start..self.i];
                Ok(Some(if escaped { Json::new(text) } else { Json::plain_string(text) }))
            }
            _ if self.null()? => Ok(None),
            _ => {
                self.value()?;
                Ok(Some(Json::new(&self.text[start..self.i])))
            }
        }
    }

    /// A key: a string without escapes (an escaped key may name a field once unescaped: serde's).
    fn key(&mut self) -> Step<&'a [u8]> {
        let start = self.i + 1;
        if self.string()? {
            return Err(Unsure);
        }
        Ok(&self.s[start..self.i - 1])
    }

    /// Skips one value, checking it.
    fn value(&mut self) -> Step<()> {
        match self.peek()? {
            b'"' => self.string().map(drop),
            b'{' => {
                self.i += 1;
                self.enter()?;
                self.ws();
                if self.s.get(self.i) == Some(&b'}') {
                    self.i += 1;
                } else {
                    loop {
                        self.ws();
                        // Keys of a value skipped are never looked up: escapes are fine.
                        self.string()?;
                        self.ws();
                        self.eat(b':')?;
                        self.ws();
                        self.value()?;
                        self.ws();
                        match self.peek()? {
                            b',' => self.i += 1,
                            b'}' => {
                                self.i += 1;
                                break;
                            }
                            _ => return Err(Unsure),
                        }
                    }
                }
                self.depth -= 1;
                Ok(())
            }
            b'[' => {
                self.i += 1;
                self.enter()?;
                self.ws();
                if self.s.get(self.i) == Some(&b']') {
                    self.i += 1;
                } else {
                    loop {
                        self.ws();
                        self.value()?;
                        self.ws();
                        match self.peek()? {
                            b',' => self.i += 1,
                            b']' => {
                                self.i += 1;
                                break;
                            }
                            _ => return Err(Unsure),
                        }
                    }
                }
                self.depth -= 1;
                Ok(())
            }
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            b'-' | b'0'..=b'9' => self.number(),
            _ => Err(Unsure),
        }
    }

    fn literal(&mut self, word: &[u8]) -> Step<()> {
        if self.s[self.i..].starts_with(word) {
            self.i += word.len();
            Ok(())
        } else {
            Err(Unsure)
        }
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`
    fn number(&mut self) -> Step<()> {
        if self.s[self.i] == b'-' {
            self.i += 1;
        }
        match self.peek()? {
            b'0' => self.i += 1,
            b'1'..=b'9' => self.digits(),
            _ => return Err(Unsure),
        }
        if self.s.get(self.i) == Some(&b'.') {
            self.i += 1;
            self.some_digits()?;
        }
        if let Some(b'e' | b'E') = self.s.get(self.i) {
            self.i += 1;
            if let Some(b'+' | b'-') = self.s.get(self.i) {
                self.i += 1;
            }
            self.some_digits()?;
        }
        // serde reads `01` as 0 then fails on the 1; so does the container here, but say it now.
        if self.s.get(self.i).is_some_and(u8::is_ascii_digit) {
            return Err(Unsure);
        }
        Ok(())
    }

    fn digits(&mut self) {
        while self.s.get(self.i).is_some_and(u8::is_ascii_digit) {
            self.i += 1;
        }
    }

    fn some_digits(&mut self) -> Step<()> {
        let start = self.i;
        self.digits();
        if self.i == start {
            return Err(Unsure);
        }
        Ok(())
    }

    /// Skips a string (at its `"`), checking it as serde does: no control characters, only JSON's
    /// escapes. Returns whether it had an escape.
    fn string(&mut self) -> Step<bool> {
        self.eat(b'"')?;
        let s = self.s;
        let mut i = self.i;
        let mut escaped = false;
        loop {
            i = special(s, i);
            match s.get(i) {
                Some(b'"') => {
                    self.i = i + 1;
                    return Ok(escaped);
                }
                Some(b'\\') => {
                    escaped = true;
                    match s.get(i + 1) {
                        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => i += 2,
                        Some(b'u') if s.get(i + 2..i + 6).is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) => {
                            i += 6
                        }
                        _ => return Err(Unsure),
                    }
                }
                _ => return Err(Unsure),
            }
        }
    }
}

/// Marks field `bit` as seen; a second time is serde's "duplicate field".
fn once(seen: &mut u32, bit: u32) -> Step<()> {
    if *seen & (1 << bit) != 0 {
        return Err(Unsure);
    }
    *seen |= 1 << bit;
    Ok(())
}

const LOW: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = 0x8080_8080_8080_8080;

/// The index of the first `"`, `\` or control character (below 0x20) at or after `i`, or `s.len()`.
/// Sixteen bytes at a time with SSE2 (part of every x86-64 processor), else eight as a word.
#[inline]
fn special(s: &[u8], mut i: usize) -> usize {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{
            __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_min_epu8, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8,
        };
        while let Some(chunk) = s.get(i..i + 16) {
            // SAFETY: SSE2 is in the x86-64 baseline; the load reads the 16 bytes of `chunk`,
            // unaligned loads allowed.
            let mask = unsafe {
                let v = _mm_loadu_si128(chunk.as_ptr().cast::<__m128i>());
                let quote = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'"' as i8));
                let backslash = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\\' as i8));
                // v <= 0x1f (unsigned): min(v, 0x1f) == v.
                let control = _mm_cmpeq_epi8(_mm_min_epu8(v, _mm_set1_epi8(0x1f)), v);
                _mm_movemask_epi8(_mm_or_si128(_mm_or_si128(quote, backslash), control))
            };
            if mask != 0 {
                return i + mask.trailing_zeros() as usize;
            }
            i += 16;
        }
    }
    while let Some(chunk) = s.get(i..i + 8) {
        let flags = word_flags(u64::from_le_bytes(chunk.try_into().unwrap_or([0; 8])));
        if flags != 0 {
            return i + (flags.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while let Some(&b) = s.get(i) {
        if b == b'"' || b == b'\\' || b < 0x20 {
            return i;
        }
        i += 1;
    }
    s.len()
}

/// The high bit of each byte of `w` that is a quote, a backslash or below 0x20, and maybe of bytes
/// above such a byte (borrows): the lowest flag is always a true one.
#[inline]
fn word_flags(w: u64) -> u64 {
    let quote = w ^ (LOW * u64::from(b'"'));
    let backslash = w ^ (LOW * u64::from(b'\\'));
    let flags = (quote.wrapping_sub(LOW) & !quote)
        | (backslash.wrapping_sub(LOW) & !backslash)
        | (w.wrapping_sub(LOW * 0x20) & !w);
    flags & HIGH
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The serde parser's leaves for `text` (its shape), or its error.
    fn by_serde(text: &str) -> Result<(Shape, Vec<Leaves<'_>>), String> {
        crate::ingest::parse::parse_with_serde(text).map_err(|e| e.to_string())
    }

    /// Both parsers on `text`: the fast one must agree with serde whenever it answers.
    fn agree(text: &str) -> Option<(Shape, usize)> {
        let text = crate::ingest::parse::body(text.as_bytes()).expect("JSON text");
        let fast = parse(text);
        if let Ok(fast) = &fast {
            assert_eq!(Ok(fast.clone()), by_serde(text), "{text}");
        }
        fast.ok().map(|(shape, r)| (shape, r.len()))
    }

    /// Every file under `dir`, recursively.
    fn files_under(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("testdata") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                files_under(&path, out);
            } else {
                out.push(path);
            }
        }
    }

    #[test]
    fn agrees_with_serde_on_every_test_file_and_takes_the_delivery_files() {
        let mut files = Vec::new();
        files_under(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata"), &mut files);
        let (mut taken, mut delivery) = (0, 0);
        for path in &files {
            let data = std::fs::read(path).expect("test file");
            let data = match crate::ingest::decode::gunzip(&data, 1 << 30) {
                Ok(inflated) if data.starts_with(&[0x1f, 0x8b]) => inflated,
                _ => data,
            };
            let Ok(text) = crate::ingest::parse::body(&data) else { continue };
            let is_delivery = path.to_string_lossy().contains("/CloudTrail/") && text.starts_with("{\"Records\"");
            delivery += usize::from(is_delivery);
            if let Ok(fast) = parse(text) {
                taken += 1;
                let serde = crate::ingest::parse::parse_with_serde(text).map_err(|e| e.to_string());
                assert_eq!(Ok(fast), serde, "{}", path.display());
            } else {
                assert!(!is_delivery, "a delivery file left to serde: {}", path.display());
            }
        }
        assert!(delivery >= 55 && taken >= delivery, "{taken} files taken, {delivery} delivery files");
    }

    #[test]
    fn special_finds_the_first_quote_backslash_or_control() {
        let long = format!("{}\\{}\"{}", "x".repeat(37), "é".repeat(20), "\u{1f}".repeat(3));
        for text in
            ["", "abc", "abcdefgh", "abcdefghij\"", "a\\", "0123456789abcdef\u{1}x", "é\"", "\x7f\u{80}ÿ\"", &long]
        {
            let want = text.bytes().position(|b| b == b'"' || b == b'\\' || b < 0x20).unwrap_or(text.len());
            for start in 0..=text.len() {
                let want = text.bytes().skip(start).position(|b| b == b'"' || b == b'\\' || b < 0x20);
                assert_eq!(special(text.as_bytes(), start), want.map_or(text.len(), |w| w + start), "{text:?} {start}");
            }
            assert_eq!(special(text.as_bytes(), 0), want);
        }
    }

    #[test]
    fn takes_the_delivery_shapes_and_agrees_with_serde() {
        let rec = r#"{"eventVersion":"1.08","userIdentity":{"type":"AssumedRole","principalId":"P:s",
            "arn":"arn:aws:sts::1:assumed-role/R/s","accountId":"1","sessionContext":{"sessionIssuer":
            {"type":"Role","arn":"arn:aws:iam::1:role/R","userName":"R"},"attributes":{"creationDate":
            "2023-07-10T12:00:00Z","mfaAuthenticated":"false"},"sourceIdentity":"me"},"onBehalfOf":
            {"userId":"u","identityStoreArn":"arn:aws:identitystore::1:identitystore/d"}},
            "eventTime":"2023-07-10T12:11:15Z","eventSource":"signin.amazonaws.com","eventName":"ConsoleLogin",
            "responseElements":{"ConsoleLogin":"Success","x":[1,-2.5e+3,{"ConsoleLogin":0}]},
            "additionalEventData":{"MFAUsed":"No","x":{"a\u00e9\n":"\"q\" \\ \/ \b\f\n\r\t \u00E9"}},
            "tlsDetails":{"tlsVersion":"TLSv1.2"},"readOnly":false,"managementEvent":true,
            "requestParameters":null,"resources":[{"ARN":"a"}],"unknown":{"deep":[[[]]],"n":0.5}}"#;
        assert_eq!(agree(&format!("{{\"Records\":[{rec},{rec}]}}")), Some((Shape::Records, 2)));
        assert_eq!(agree(" { \"Records\" : [ ] } \n"), Some((Shape::Records, 0)));
        assert_eq!(agree(&format!("[{rec}, {{}}]")), Some((Shape::Array, 2)));
        assert_eq!(agree(&format!("{rec}\n{rec}{rec}\n")), Some((Shape::Lines, 3)));
        assert_eq!(agree("[]"), Some((Shape::Array, 0)));
    }

    #[test]
    fn nested_objects_of_other_types_are_read_as_serde_reads_them() {
        for ui in [r#""a string""#, "[1]", "5", "null", "{}", r#"{"sessionContext":null}"#] {
            let text = format!(r#"[{{"eventTime":"t","userIdentity":{ui},"tlsDetails":"x","responseElements":[]}}]"#);
            assert_eq!(agree(&text), Some((Shape::Array, 1)), "{ui}");
        }
    }

    #[test]
    fn gives_up_on_what_serde_must_decide() {
        let unsure = [
            // Not JSON, or not as serde reads it.
            r#"{"Records":[{"eventName":"A"}"#,
            r#"{"Records":[{"eventName":"A"},]}"#,
            r#"{"Records":[{"eventName":"A",}]}"#,
            r#"{"Records":[{"eventName":01}]}"#,
            r#"{"Records":[{"eventName":1.}]}"#,
            r#"{"Records":[{"eventName":-}]}"#,
            r#"{"Records":[{"eventName":"a\x"}]}"#,
            r#"{"Records":[{"eventName":"a\u12"}]}"#,
            "{\"Records\":[{\"eventName\":\"a\u{1}\"}]}",
            r#"{"Records":[{"eventName":tru}]}"#,
            r#"{"Records":[]} {}"#,
            // A duplicate field, an escaped key, a record that is not an object.
            r#"{"Records":[{"eventName":"A","eventName":"B"}]}"#,
            r#"{"Records":[{"userIdentity":{"arn":"a","arn":"b"}}]}"#,
            r#"{"Records":[{"tlsDetails":{"tlsVersion":"a","tlsVersion":"b"}}]}"#,
            r#"{"Records":[{"event\u004eame":"A"}]}"#,
            r#"{"Records":[{"additionalEventData":{"MFAUse\u0064":"A"}}]}"#,
            r#"{"Records":[["a"]]}"#,
            r#"{"Records":[{"userIdentity":{"sessionContext":[]}}]}"#,
            // Shapes serde reads another way.
            r#"{"Records":[],"other":1}"#,
            r#"{"Events":[{"CloudTrailEvent":"{}"}]}"#,
            r#"{"eventName":"A","Records":null}"#,
        ];
        for text in unsure {
            assert_eq!(parse(text).map(|_| ()), Err(Unsure), "{text}");
        }
        let deep = format!("[{{\"eventTime\":\"t\",\"x\":{}{}}}]", "[".repeat(120), "]".repeat(120));
        assert_eq!(parse(&deep).map(|_| ()), Err(Unsure));
        let shallow = format!("[{{\"eventTime\":\"t\",\"x\":{}{}}}]", "[".repeat(90), "]".repeat(90));
        assert_eq!(agree(&shallow), Some((Shape::Array, 1)));
    }
}
