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
    let mut records = Vec::new();
    let shape = parse_into(body, &mut records)?;
    Ok((shape, records))
}

/// [`parse`] into `records` (emptied first, its space reused): on [`Unsure`], what it holds is
/// meaningless.
pub fn parse_into<'a>(body: &'a str, records: &mut Vec<Leaves<'a>>) -> Result<Shape, Unsure> {
    let mut p = Parser { text: body, s: body.as_bytes(), i: 0, depth: 0, next: [[NOTHING; MAX_NAMES + 2]; OBJECTS] };
    // Records are about a kilobyte: fewer copies of the vector as it grows, at most 0.7 of the text.
    records.clear();
    records.reserve(body.len() / 1024);
    let shape = match p.s.first() {
        Some(b'[') => {
            p.records(records)?;
            Shape::Array
        }
        Some(b'{') => p.envelope_or_lines(records)?,
        _ => return Err(Unsure),
    };
    p.ws();
    if p.i != p.s.len() {
        return Err(Unsure);
    }
    Ok(shape)
}

/// A delivery file's records parsed one at a time, each from its `{` (`ingest::window`, which reads
/// the file's text a piece at a time and handles what is between the records): the leaves of
/// [`parse`], record by record.
pub struct RecordParser<'a> {
    p: Parser<'a>,
}

impl<'a> RecordParser<'a> {
    pub fn new(text: &'a str) -> Self {
        RecordParser {
            p: Parser { text, s: text.as_bytes(), i: 0, depth: 1, next: [[NOTHING; MAX_NAMES + 2]; OBJECTS] },
        }
    }

    /// Parse the record starting with `{` at `at` (at the depth of `{"Records":[`'s records) into
    /// `records`; the position after it. On [`Unsure`] (the text may also end inside the record),
    /// `records` is left as it was.
    pub fn record(&mut self, at: usize, records: &mut Vec<Leaves<'a>>) -> Result<usize, Unsure> {
        let before = records.len();
        self.p.i = at;
        self.p.depth = 1;
        match self.p.record(records) {
            Ok(()) => Ok(self.p.i),
            Err(e) => {
                records.truncate(before);
                Err(e)
            }
        }
    }
}

struct Parser<'a> {
    text: &'a str,
    s: &'a [u8],
    i: usize,
    depth: u32,
    /// Per kind of object read by name (`RECORD`, ...), the field expected after each field
    /// ([`Parser::named_fields`]).
    next: [Next; OBJECTS],
}

/// The most names [`Parser::named_fields`] looks up in one object.
const MAX_NAMES: usize = 30;
/// No field expected (nothing learned yet).
const NOTHING: u8 = u8::MAX;

/// For each field of an object (by its index in the names; then "another key" and "the object's
/// start"), the field that followed it last in this file.
type Next = [u8; MAX_NAMES + 2];

/// A field name as written before its value (`"name":`, at most 32 bytes), compared whole with the
/// text at a position in two 16-byte words.
struct Name {
    bytes: [u8; 32],
    len: usize,
    /// The bytes of each word that belong to the name.
    masks: [u128; 2],
}

impl Name {
    const fn new(written: &[u8]) -> Name {
        assert!(written.len() <= 32 && written.len() >= 4);
        let mut bytes = [0; 32];
        let mut i = 0;
        while i < written.len() {
            bytes[i] = written[i];
            i += 1;
        }
        let len = written.len();
        Name { bytes, len, masks: [low_bytes(len), low_bytes(len.saturating_sub(16))] }
    }

    /// The name without its quotes and colon.
    fn key(&self) -> &[u8] {
        &self.bytes[1..self.len - 2]
    }

    /// Whether `s` has this name at `i`.
    #[inline]
    fn is_at(&self, s: &[u8], i: usize) -> bool {
        let Some(window) = s.get(i..i + 32) else { return s[i..].starts_with(&self.bytes[..self.len]) };
        let word = |bytes: &[u8], at: usize| u128::from_le_bytes(bytes[at..at + 16].try_into().unwrap_or([0; 16]));
        ((word(window, 0) ^ word(&self.bytes, 0)) & self.masks[0])
            | ((word(window, 16) ^ word(&self.bytes, 16)) & self.masks[1])
            == 0
    }
}

/// A mask of the low `n` bytes of a 16-byte word (all of them from 16).
const fn low_bytes(n: usize) -> u128 {
    if n >= 16 {
        u128::MAX
    } else {
        (1 << (8 * n)) - 1
    }
}

/// The kinds of object whose fields are read by name: a record, and the nested objects of its
/// `userIdentity`. Each has its names (`RECORD_NAMES`, ...) and its learned order.
const RECORD: usize = 0;
const IDENTITY: usize = 1;
const SESSION_CONTEXT: usize = 2;
const SESSION_ISSUER: usize = 3;
const ATTRIBUTES: usize = 4;
const ON_BEHALF_OF: usize = 5;
const OBJECTS: usize = 6;

/// The record fields `record` reads, by index, as CloudTrail writes them before their value.
const RECORD_NAMES: [Name; 25] = [
    Name::new(b"\"eventVersion\":"),
    Name::new(b"\"eventTime\":"),
    Name::new(b"\"eventSource\":"),
    Name::new(b"\"eventName\":"),
    Name::new(b"\"awsRegion\":"),
    Name::new(b"\"sourceIPAddress\":"),
    Name::new(b"\"userAgent\":"),
    Name::new(b"\"errorCode\":"),
    Name::new(b"\"errorMessage\":"),
    Name::new(b"\"requestID\":"),
    Name::new(b"\"eventID\":"),
    Name::new(b"\"readOnly\":"),
    Name::new(b"\"resources\":"),
    Name::new(b"\"eventType\":"),
    Name::new(b"\"managementEvent\":"),
    Name::new(b"\"recipientAccountId\":"),
    Name::new(b"\"sharedEventID\":"),
    Name::new(b"\"vpcEndpointId\":"),
    Name::new(b"\"eventCategory\":"),
    Name::new(b"\"CloudTrailEvent\":"),
    Name::new(b"\"userIdentity\":"),
    Name::new(b"\"requestParameters\":"),
    Name::new(b"\"responseElements\":"),
    Name::new(b"\"additionalEventData\":"),
    Name::new(b"\"tlsDetails\":"),
];

/// The `userIdentity` fields `user_identity` reads, by index.
const IDENTITY_NAMES: [Name; 9] = [
    Name::new(b"\"type\":"),
    Name::new(b"\"principalId\":"),
    Name::new(b"\"arn\":"),
    Name::new(b"\"accountId\":"),
    Name::new(b"\"accessKeyId\":"),
    Name::new(b"\"userName\":"),
    Name::new(b"\"invokedBy\":"),
    Name::new(b"\"sessionContext\":"),
    Name::new(b"\"onBehalfOf\":"),
];

const SESSION_CONTEXT_NAMES: [Name; 3] =
    [Name::new(b"\"sessionIssuer\":"), Name::new(b"\"attributes\":"), Name::new(b"\"sourceIdentity\":")];
const SESSION_ISSUER_NAMES: [Name; 4] =
    [Name::new(b"\"type\":"), Name::new(b"\"principalId\":"), Name::new(b"\"arn\":"), Name::new(b"\"userName\":")];
const ATTRIBUTES_NAMES: [Name; 2] = [Name::new(b"\"creationDate\":"), Name::new(b"\"mfaAuthenticated\":")];
const ON_BEHALF_OF_NAMES: [Name; 2] = [Name::new(b"\"userId\":"), Name::new(b"\"identityStoreArn\":")];

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
            self.record(records)?;
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
            self.record(records)?;
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

    /// The fields of an object (after `{`) whose keys are looked up among `names` (each written
    /// `"name":`), each handed to `field` positioned at its value with the index of its name
    /// (`names.len()` for any other key). A file's records write their fields in one order, so the
    /// name that followed the previous field last time (`next`) is compared whole first: no scan of
    /// the key as a string, no search among the names. Keys are looked up as written: an escaped key
    /// is left to serde, as in `object_fields`.
    fn named_fields(
        &mut self,
        kind: usize,
        names: &[Name],
        mut field: impl FnMut(&mut Self, usize) -> Step<()>,
    ) -> Step<()> {
        debug_assert!(names.len() <= MAX_NAMES);
        self.ws();
        if self.s.get(self.i) == Some(&b'}') {
            self.i += 1;
            return Ok(());
        }
        // A copy, as `field` may read nested objects by name; written back at the object's end.
        let mut next = self.next[kind];
        let mut previous = names.len() + 1;
        loop {
            self.ws();
            let guess = usize::from(next[previous]);
            let k = match names.get(guess) {
                Some(name) if name.is_at(self.s, self.i) => {
                    self.i += name.len;
                    guess
                }
                _ => {
                    let key = self.key()?;
                    self.ws();
                    self.eat(b':')?;
                    let k = names.iter().position(|name| name.key() == key).unwrap_or(names.len());
                    next[previous] = k as u8;
                    k
                }
            };
            self.ws();
            field(self, k)?;
            previous = k;
            self.ws();
            match self.peek()? {
                b',' => self.i += 1,
                b'}' => {
                    self.i += 1;
                    self.next[kind] = next;
                    return Ok(());
                }
                _ => return Err(Unsure),
            }
        }
    }

    /// One record, an object, pushed to `records` (its leaves written in place: a record's leaves
    /// are a kilobyte). A field named twice is an error to serde.
    fn record(&mut self, records: &mut Vec<Leaves<'a>>) -> Step<()> {
        self.eat(b'{')?;
        self.enter()?;
        records.push(Leaves::default());
        let Some(l) = records.last_mut() else { return Err(Unsure) };
        let mut seen = 0u32;
        self.named_fields(RECORD, &RECORD_NAMES, |p, k| {
            if k >= RECORD_NAMES.len() {
                return p.value();
            }
            once(&mut seen, k as u32)?;
            let slot: &mut Leaf<'a> = match k {
                0 => &mut l.event_version,
                1 => &mut l.event_time,
                2 => &mut l.event_source,
                3 => &mut l.event_name,
                4 => &mut l.aws_region,
                5 => &mut l.source_ip,
                6 => &mut l.user_agent,
                7 => &mut l.error_code,
                8 => &mut l.error_message,
                9 => &mut l.request_id,
                10 => &mut l.event_id,
                11 => &mut l.read_only,
                12 => &mut l.resources,
                13 => &mut l.event_type,
                14 => &mut l.management_event,
                15 => &mut l.recipient_account_id,
                16 => &mut l.shared_event_id,
                17 => &mut l.vpc_endpoint_id,
                18 => &mut l.event_category,
                19 => &mut l.cloudtrail_event,
                20 => return p.user_identity(l),
                21 => &mut l.request_parameters,
                22 => {
                    (l.response_elements, l.console_login) = p.object_with(b"ConsoleLogin")?;
                    return Ok(());
                }
                23 => {
                    (l.additional_event_data, l.mfa_used) = p.object_with(b"MFAUsed")?;
                    return Ok(());
                }
                _ => {
                    l.tls_version = p.object_with(b"tlsVersion")?.1;
                    return Ok(());
                }
            };
            *slot = p.leaf()?;
            Ok(())
        })?;
        self.depth -= 1;
        Ok(())
    }

    /// `userIdentity`: an object gives its leaves; anything else none (as serde's lenient `nested`).
    fn user_identity(&mut self, l: &mut Leaves<'a>) -> Step<()> {
        if self.peek()? != b'{' {
            return self.value();
        }
        self.i += 1;
        self.enter()?;
        let mut seen = 0u32;
        self.named_fields(IDENTITY, &IDENTITY_NAMES, |p, k| {
            if k >= IDENTITY_NAMES.len() {
                return p.value();
            }
            once(&mut seen, k as u32)?;
            let slot: &mut Leaf<'a> = match k {
                0 => &mut l.identity_type,
                1 => &mut l.principal_id,
                2 => &mut l.arn,
                3 => &mut l.account_id,
                4 => &mut l.access_key_id,
                5 => &mut l.user_name,
                6 => &mut l.invoked_by,
                7 => return p.session_context(l),
                _ => {
                    let slots = [&mut l.on_behalf_of_user_id, &mut l.on_behalf_of_identity_store_arn];
                    return p.fields_of(ON_BEHALF_OF, &ON_BEHALF_OF_NAMES, slots);
                }
            };
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
        self.named_fields(SESSION_CONTEXT, &SESSION_CONTEXT_NAMES, |p, k| {
            if k < SESSION_CONTEXT_NAMES.len() {
                once(&mut seen, k as u32)?;
            }
            match k {
                0 => {
                    let slots =
                        [&mut l.issuer_type, &mut l.issuer_principal_id, &mut l.issuer_arn, &mut l.issuer_user_name];
                    p.fields_of(SESSION_ISSUER, &SESSION_ISSUER_NAMES, slots)
                }
                1 => p.fields_of(ATTRIBUTES, &ATTRIBUTES_NAMES, [&mut l.creation_date, &mut l.mfa_authenticated]),
                2 => {
                    l.source_identity = p.leaf()?;
                    Ok(())
                }
                _ => p.value(),
            }
        })?;
        self.depth -= 1;
        Ok(())
    }

    /// A nested object of leaves (`sessionIssuer`, ...): `null`, or an object whose fields named in
    /// `names` fill the slot of the same index (each at most once); anything else is left to serde.
    fn fields_of<const N: usize>(&mut self, kind: usize, names: &[Name; N], mut slots: [&mut Leaf<'a>; N]) -> Step<()> {
        if self.null()? {
            return Ok(());
        }
        self.eat(b'{')?;
        self.enter()?;
        let mut seen = 0u32;
        self.named_fields(kind, names, |p, k| {
            let Some(slot) = slots.get_mut(k) else { return p.value() };
            once(&mut seen, k as u32)?;
            **slot = p.leaf()?;
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
    special_tail(s, i)
}

/// `special` where fewer than 16 bytes are left (or off x86-64): out of line, so that the common
/// case keeps its registers (the end of a file's text is the only place it is reached on x86-64).
#[inline(never)]
fn special_tail(s: &[u8], mut i: usize) -> usize {
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
    fn fields_are_found_whatever_their_order_and_spacing() {
        let fields = [
            r#""eventVersion":"1.08""#,
            r#""userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::1:user/a","accountId":"1","userName":"a"}"#,
            r#""eventTime":"2023-07-10T12:11:15Z""#,
            r#""eventSource":"s3.amazonaws.com""#,
            r#""eventName":"GetObject""#,
            r#""errorCode":"AccessDenied""#,
            r#""eventTimeX":"not the time""#,
            r#""eventTim":"nor this""#,
            r#""eventName2":[1,2]"#,
            r#""recipientAccountId":"1""#,
            r#""tlsDetails":{"tlsVersion":"TLSv1.2"}"#,
        ];
        // Records in one file, each in another order, so that the field expected next is often wrong.
        let mut records = Vec::new();
        for start in 0..fields.len() {
            let mut order: Vec<&str> = fields.iter().cycle().skip(start).take(fields.len()).copied().collect();
            records.push(format!("{{{}}}", order.join(",")));
            order.reverse();
            records.push(format!("{{{}}}", order.join(",")));
            // A record with fewer fields, in the file's most common order.
            records.push(format!("{{{}}}", fields[start..].join(",")));
        }
        let file = format!("{{\"Records\":[{}]}}", records.join(","));
        assert_eq!(agree(&file), Some((Shape::Records, records.len())));
        // Whitespace around a name's colon: the name is read as a string, as anywhere else.
        let spaced = r#"{"Records":[{"eventName":"A","eventTime" :"t"},{"eventName" : "B","eventTime":"u"}]}"#;
        assert_eq!(agree(spaced), Some((Shape::Records, 2)));
        // A name at the file's very end (fewer than 32 bytes left).
        assert_eq!(agree(r#"[{"eventTime":"t"},{"eventTime":"u"}]"#), Some((Shape::Array, 2)));
        // A field named twice is still refused.
        let twice =
            r#"{"Records":[{"eventName":"A","eventTime":"t"},{"eventName":"A","eventTime":"t","eventTime":"u"}]}"#;
        assert_eq!(parse(twice).map(|_| ()), Err(Unsure));
        for (written, key) in RECORD_NAMES.iter().zip(["eventVersion", "eventTime", "eventSource"]) {
            assert_eq!(written.key(), key.as_bytes());
        }
    }

    #[test]
    fn a_name_is_at_a_position_only_when_all_its_bytes_are() {
        for name in RECORD_NAMES.iter().chain(&IDENTITY_NAMES) {
            let written = &name.bytes[..name.len];
            let text = [b"xx".as_slice(), written, &[b'z'; 40]].concat();
            assert!(name.is_at(&text, 2));
            assert!(!name.is_at(&text, 1) && !name.is_at(&text, 3));
            // Any one byte changed, with room for a whole window and without.
            for at in 0..name.len {
                let mut changed = text.clone();
                changed[2 + at] ^= 0x20;
                assert!(!name.is_at(&changed, 2), "{:?} byte {at}", name.key());
                assert!(!name.is_at(&changed[..2 + name.len], 2));
            }
            assert!(name.is_at(&text[..2 + name.len], 2));
            assert!(!name.is_at(&text[..1 + name.len], 2));
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
