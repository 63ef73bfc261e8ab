//! De-duplication by partition: the event keys (`pipeline::EventKey`) of the (account, region, day)
//! partitions that recent batches touched, so that memory holds the keys of the partitions being
//! read, not of the whole input.
//!
//! A duplicate delivery carries the same eventTime, account and region as the first, so it falls in
//! the first's partition: checking a row against its partition's keys is exact. A partition that a
//! batch goes by without touching is set aside: its keys are forgotten when they can be had again
//! (the store re-reads its own), or written to a temporary file (raw input) and read back if a later
//! batch touches it again. Input in the S3 layout's order touches each partition in one run of
//! batches (a late delivery in the next day's folder touches the day before once more).

use std::io::{BufReader, BufWriter, Read, Write};
use std::path::PathBuf;

use polars::prelude::*;

use super::{partition_rows, PartitionKey};
use crate::error::{Error, PolarsContext, Result};
use crate::fs::TempDir;
use crate::ingest::frame::col_name as c;
use crate::ingest::pipeline::EventKey;

/// The event keys of one partition. An eventID as CloudTrail writes it (a UUID in lowercase hex) is
/// kept in 16 bytes, any other as its text: a key takes about 37 bytes where the text took 85, and a
/// busy (account, region, day) holds millions of events. Exact: a packed id is one text and back.
#[derive(Default)]
pub struct Keys {
    packed: hashbrown::HashSet<(u128, i64)>,
    text: hashbrown::HashSet<EventKey>,
}

impl Keys {
    pub fn new() -> Keys {
        Keys::default()
    }

    /// Adds the key (id, time); whether it was new. `scratch` spares an allocation per id kept as text.
    pub fn insert(&mut self, id: &str, time: i64, scratch: &mut EventKey) -> bool {
        if let Some(packed) = pack_uuid(id) {
            return self.packed.insert((packed, time));
        }
        scratch.0.clear();
        scratch.0.push_str(id);
        scratch.1 = time;
        if self.text.contains(scratch) {
            return false;
        }
        self.text.insert(scratch.clone())
    }

    /// Adds every key of `other`.
    fn merge(&mut self, other: Keys) {
        self.packed.extend(other.packed);
        self.text.extend(other.text);
    }
}

/// `8-4-4-4-12` lowercase hex digits, as 128 bits; `None` for any other text (uppercase too, so that
/// two ids differing only in case stay two).
fn pack_uuid(id: &str) -> Option<u128> {
    let b = id.as_bytes();
    if b.len() != 36 || b[8] != b'-' || b[13] != b'-' || b[18] != b'-' || b[23] != b'-' {
        return None;
    }
    // Each half's 16 digits into a word; a byte that is not a digit has its high bit in `bad`.
    let (mut halves, mut bad) = ([0u64; 2], 0u8);
    for (half, positions) in halves.iter_mut().zip(DIGIT_AT.chunks_exact(16)) {
        for &at in positions {
            let nibble = NIBBLE[usize::from(b[at])];
            bad |= nibble;
            *half = *half << 4 | u64::from(nibble);
        }
    }
    (bad & 0x80 == 0).then(|| u128::from(halves[0]) << 64 | u128::from(halves[1]))
}

/// Where a UUID's 32 hex digits are in its text.
const DIGIT_AT: [usize; 32] = {
    let mut at = [0; 32];
    let (mut i, mut n) = (0, 0);
    while i < 36 {
        if !matches!(i, 8 | 13 | 18 | 23) {
            at[n] = i;
            n += 1;
        }
        i += 1;
    }
    at
};

/// Each byte's value as a lowercase hex digit, 0xFF for any other byte.
const NIBBLE: [u8; 256] = {
    let mut t = [0xFF; 256];
    let mut i = 0;
    while i < 10 {
        t[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        t[b'a' as usize + i] = 10 + i as u8;
        i += 1;
    }
    t
};

/// Where the keys of a partition set aside go.
enum Aside {
    /// Forgotten: the caller's `load` gives them back (the store reads its partition).
    Forget,
    /// Written to files in this directory, read back when the partition is touched again.
    Spill { dir: Option<TempDir>, files: hashbrown::HashMap<PartitionKey, PathBuf> },
}

pub struct PartitionSeen {
    resident: hashbrown::HashMap<PartitionKey, (Keys, bool)>,
    aside: Aside,
}

impl PartitionSeen {
    /// For a store's ingest: idle partitions are forgotten, and `load` re-reads them from the store.
    pub fn forgetting() -> PartitionSeen {
        PartitionSeen { resident: Default::default(), aside: Aside::Forget }
    }

    /// For raw input: idle partitions' keys go to a temporary directory (made when first needed).
    pub fn spilling() -> PartitionSeen {
        PartitionSeen { resident: Default::default(), aside: Aside::Spill { dir: None, files: Default::default() } }
    }

    /// Which rows of `df` are the first of their event, in row order, checked against (and added to)
    /// the keys of each row's partition; rows without an eventID are always first. `load` gives the
    /// keys a partition had before this run (the store's rows), asked once per partition brought in.
    /// Returns the mask and the number of repeats.
    pub fn first_occurrences(
        &mut self,
        df: &DataFrame,
        mut load: impl FnMut(&PartitionKey) -> Result<Keys>,
    ) -> Result<(Vec<bool>, u64)> {
        let ids = df.column(c::EVENT_ID).context("event_id")?.str().context("event_id")?.clone();
        let times = df.column(c::EVENT_TIME).context("event_time")?.cast(&DataType::Int64).context("event_time")?;
        let times = times.i64().context("event_time")?.clone();
        let mut first = vec![true; df.height()];
        let mut repeats = 0u64;
        let mut scratch: EventKey = (String::new(), 0);
        for (partition, rows) in partition_rows(df)? {
            if !self.resident.contains_key(&partition) {
                let mut keys = load(&partition)?;
                keys.merge(self.take_aside(&partition)?);
                self.resident.insert(partition.clone(), (keys, false));
            }
            let (keys, used) = self.resident.get_mut(&partition).expect("brought in above");
            *used = true;
            for row in rows {
                let row = row as usize;
                let Some(id) = ids.get(row) else { continue };
                if !keys.insert(id, times.get(row).unwrap_or(i64::MIN), &mut scratch) {
                    first[row] = false;
                    repeats += 1;
                }
            }
        }
        Ok((first, repeats))
    }

    /// Set aside the partitions the last batch did not touch; mark the rest untouched for the next.
    pub fn set_aside_idle(&mut self) -> Result<()> {
        let idle: Vec<PartitionKey> =
            self.resident.iter().filter(|(_, (_, used))| !used).map(|(k, _)| k.clone()).collect();
        for partition in idle {
            let (keys, _) = self.resident.remove(&partition).expect("listed above");
            if let Aside::Spill { dir, files } = &mut self.aside {
                if dir.is_none() {
                    *dir = Some(TempDir::new()?);
                }
                let path = dir.as_ref().expect("made above").path().join(format!("keys-{}", files.len()));
                write_keys(&path, &keys)?;
                files.insert(partition, path);
            }
        }
        for (_, used) in self.resident.values_mut() {
            *used = false;
        }
        Ok(())
    }

    /// The keys of a partition set aside on disk (none if it never was).
    fn take_aside(&mut self, partition: &PartitionKey) -> Result<Keys> {
        match &mut self.aside {
            Aside::Spill { files, .. } => match files.remove(partition) {
                Some(path) => {
                    let keys = read_keys(&path)?;
                    let _ = std::fs::remove_file(&path);
                    Ok(keys)
                }
                None => Ok(Keys::new()),
            },
            Aside::Forget => Ok(Keys::new()),
        }
    }
}

/// In a key file, the length that marks a packed id (16 bytes follow, not its text).
const PACKED: u32 = u32::MAX;

/// Keys as `u32 length, id bytes, i64 time`, little-endian; a packed id as `PACKED, u128 id, i64
/// time` (no text made and parsed again: the file is this run's, read back by `read_keys`).
fn write_keys(path: &std::path::Path, keys: &Keys) -> Result<()> {
    let io = |e| Error::io(path, e);
    let mut w = BufWriter::new(std::fs::File::create(path).map_err(io)?);
    for &(id, time) in &keys.packed {
        w.write_all(&PACKED.to_le_bytes()).map_err(io)?;
        w.write_all(&id.to_le_bytes()).map_err(io)?;
        w.write_all(&time.to_le_bytes()).map_err(io)?;
    }
    for (id, time) in &keys.text {
        w.write_all(&(id.len() as u32).to_le_bytes()).map_err(io)?;
        w.write_all(id.as_bytes()).map_err(io)?;
        w.write_all(&time.to_le_bytes()).map_err(io)?;
    }
    w.flush().map_err(io)
}

fn read_keys(path: &std::path::Path) -> Result<Keys> {
    let io = |e| Error::io(path, e);
    let mut bytes = Vec::new();
    BufReader::new(std::fs::File::open(path).map_err(io)?).read_to_end(&mut bytes).map_err(io)?;
    let mut keys = Keys::new();
    let mut scratch: EventKey = (String::new(), 0);
    let mut rest = &bytes[..];
    while !rest.is_empty() {
        let corrupt = || Error::io(path, std::io::Error::other("a key file of this run is cut short"));
        let (len, tail) = rest.split_first_chunk::<4>().ok_or_else(corrupt)?;
        let len = u32::from_le_bytes(*len);
        if len == PACKED {
            let (id, tail) = tail.split_first_chunk::<16>().ok_or_else(corrupt)?;
            let (time, tail) = tail.split_first_chunk::<8>().ok_or_else(corrupt)?;
            keys.packed.insert((u128::from_le_bytes(*id), i64::from_le_bytes(*time)));
            rest = tail;
            continue;
        }
        let len = len as usize;
        let id = tail.get(..len).ok_or_else(corrupt)?;
        let (time, tail) = tail[len..].split_first_chunk::<8>().ok_or_else(corrupt)?;
        let id = std::str::from_utf8(id).map_err(|_| corrupt())?;
        keys.insert(id, i64::from_le_bytes(*time), &mut scratch);
        rest = tail;
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(rows: &[(&str, &str, &str, i64)]) -> DataFrame {
        let empty = crate::ingest::frame::empty().unwrap();
        let n = rows.len();
        let text = |pick: fn(&(&str, &str, &str, i64)) -> String| -> Vec<Option<String>> {
            rows.iter().map(|r| Some(pick(r))).collect()
        };
        let mut cols: Vec<Column> = Vec::new();
        for name in empty.get_column_names_owned() {
            let dtype = empty.column(&name).unwrap().dtype().clone();
            let col = match name.as_str() {
                c::EVENT_ID => Column::new(name.clone(), text(|r| r.0.to_string())),
                c::RECIPIENT_ACCOUNT_ID => Column::new(name.clone(), text(|r| r.1.to_string())),
                c::AWS_REGION => Column::new(name.clone(), text(|r| r.2.to_string())),
                c::EVENT_TIME => {
                    Column::new(name.clone(), rows.iter().map(|r| r.3).collect::<Vec<i64>>()).cast(&dtype).unwrap()
                }
                _ => Column::full_null(name.clone(), n, &dtype),
            };
            cols.push(col);
        }
        DataFrame::new(n, cols).unwrap()
    }

    #[test]
    fn repeats_are_found_across_batches_and_set_aside_partitions() {
        let day = 86_400_000;
        let mut seen = PartitionSeen::spilling();
        let none = |_: &PartitionKey| Ok(Keys::new());
        let (first, n) = seen
            .first_occurrences(&frame(&[("a", "1", "r", 0), ("a", "1", "r", 0), ("a", "2", "r", 0)]), none)
            .unwrap();
        assert_eq!((first, n), (vec![true, false, true], 1));
        seen.set_aside_idle().unwrap();
        // Another day only: the first day's partitions go to disk.
        let (first, _) = seen.first_occurrences(&frame(&[("b", "1", "r", day)]), none).unwrap();
        assert_eq!(first, vec![true]);
        seen.set_aside_idle().unwrap();
        assert_eq!(seen.resident.len(), 1);
        // A late repeat of the first day is still found: its keys come back from disk.
        let (first, n) = seen.first_occurrences(&frame(&[("a", "1", "r", 0), ("a", "1", "r", 1)]), none).unwrap();
        assert_eq!((first, n), (vec![false, true], 1));
        // Forgetting: what `load` gives back decides.
        let mut store = PartitionSeen::forgetting();
        let (first, _) = store
            .first_occurrences(&frame(&[("a", "1", "r", 0), ("z", "1", "r", 0)]), |_| {
                let mut keys = Keys::new();
                keys.insert("a", 0, &mut (String::new(), 0));
                Ok(keys)
            })
            .unwrap();
        assert_eq!(first, vec![false, true]);
    }

    const ID: &str = "3038ebd2-c98a-4c65-9b6e-e22506292313";

    /// The text `pack_uuid` packed.
    fn unpack_uuid(packed: u128) -> String {
        let hex = format!("{packed:032x}");
        format!("{}-{}-{}-{}-{}", &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..])
    }

    #[test]
    fn ids_as_cloudtrail_writes_them_are_packed_and_every_other_text_kept_apart() {
        assert_eq!(pack_uuid(ID).map(unpack_uuid).as_deref(), Some(ID));
        let zero = "00000000-0000-0000-0000-000000000000";
        assert_eq!(pack_uuid(zero).map(unpack_uuid).as_deref(), Some(zero));
        // Uppercase, a dash moved or missing, a byte too many or too few, a non-hex digit: text.
        let upper = ID.to_uppercase();
        let moved = ID.replacen("c98a-", "c98-a", 1);
        let others = [
            upper.as_str(),
            &moved,
            &ID.replace('-', "x"),
            &ID[1..],
            &format!("{ID}0"),
            "g038ebd2-c98a-4c65-9b6e-e22506292313",
        ];
        for other in others {
            assert_eq!(pack_uuid(other), None, "{other}");
        }
        let mut keys = Keys::new();
        let scratch = &mut (String::new(), 0);
        assert!(keys.insert(ID, 5, scratch));
        assert!(!keys.insert(ID, 5, scratch));
        assert!(keys.insert(ID, 6, scratch), "another time, another event");
        for other in others {
            assert!(keys.insert(other, 5, scratch), "{other} is not {ID}");
            assert!(!keys.insert(other, 5, scratch));
        }
        assert_eq!((keys.packed.len(), keys.text.len()), (2, others.len()));
    }

    #[test]
    fn keys_set_aside_come_back_whole() {
        let dir = TempDir::new().unwrap();
        let path = dir.path().join("keys");
        let mut keys = Keys::new();
        let scratch = &mut (String::new(), 0);
        for (id, time) in [(ID, 1), (ID, -7), ("EXAMPLE-id", 1), ("", 3), ("é", i64::MIN)] {
            keys.insert(id, time, scratch);
        }
        write_keys(&path, &keys).unwrap();
        let back = read_keys(&path).unwrap();
        assert_eq!((back.packed, back.text), (keys.packed, keys.text));
    }
}
