//! Text columns as small integer ids, for the folds that count distinct values per key
//! (`activity`): each distinct value is hashed and stored once, and the fold's sets and maps hold
//! `u32`s. A column's rows are translated through a memo keyed by the row's 16-byte view (Arrow's
//! string view: the length, the first bytes and where the rest is): a Parquet dictionary page
//! decodes every row of a value to the same view, so a value repeated in a batch is hashed as text
//! once. The memo is exact whatever the views: it lives for one array, whose views name one text
//! each; two views of one text just both reach the same id.

use std::hash::BuildHasher;

use polars::prelude::*;

/// No value (a null cell).
pub const NONE: u32 = u32::MAX;
/// The empty text, which CloudTrail writes for an absent value (an access key, for one): every
/// interner gives it this id.
pub const EMPTY: u32 = 0;

/// The distinct values of a column, each with its id (dense, from 0, in order of first sight).
pub struct Interner {
    /// The ids, found by their text's hash (the texts are in `values`, once).
    ids: hashbrown::HashTable<u32>,
    hasher: hashbrown::DefaultHashBuilder,
    values: Vec<Box<str>>,
    /// View -> id, for the array being translated.
    memo: hashbrown::HashMap<u128, u32>,
}

impl Default for Interner {
    fn default() -> Self {
        let mut interner = Interner {
            ids: Default::default(),
            hasher: Default::default(),
            values: Vec::new(),
            memo: Default::default(),
        };
        interner.id("");
        interner
    }
}

impl Interner {
    /// The id of `text`, given one if new.
    pub fn id(&mut self, text: &str) -> u32 {
        let (values, hasher) = (&self.values, &self.hasher);
        let hash = hasher.hash_one(text);
        let entry =
            self.ids.entry(hash, |&id| *values[id as usize] == *text, |&id| hasher.hash_one(&*values[id as usize]));
        match entry {
            hashbrown::hash_table::Entry::Occupied(found) => *found.get(),
            hashbrown::hash_table::Entry::Vacant(vacant) => {
                let id = u32::try_from(values.len()).expect("fewer than 2^32 - 1 distinct values");
                assert!(id != NONE, "fewer than 2^32 - 1 distinct values");
                vacant.insert(id);
                self.values.push(text.into());
                id
            }
        }
    }

    /// The text of `id` (an id this interner gave).
    pub fn value(&self, id: u32) -> &str {
        &self.values[id as usize]
    }

    /// How many distinct values (the empty text included).
    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Replace `out` with the ids of `column`'s rows, `NONE` for a null.
    pub fn translate(&mut self, column: &StringChunked, out: &mut Vec<u32>) {
        out.clear();
        out.reserve(column.len());
        // A chunk as `dyn Array` gives its validity; downcast, its views.
        for (chunk, array) in column.chunks().iter().zip(column.downcast_iter()) {
            match chunk.validity() {
                Some(valid) => self.translate_array(array, valid.iter(), out),
                None => self.translate_array(array, std::iter::repeat(true), out),
            }
        }
    }

    /// One array's rows (`valid`: whether each row has a value). A row's text is read only when its
    /// view is in neither the cache nor the memo: most rows repeat a recent value.
    fn translate_array(
        &mut self,
        array: &<StringType as PolarsDataType>::Array,
        valid: impl Iterator<Item = bool>,
        out: &mut Vec<u32>,
    ) {
        self.memo.clear();
        // In front of the memo, a direct-mapped cache of recent views (most rows repeat one of a
        // few values). Every slot starts as the empty text's view, which is all zeros.
        let mut recent = [(0u128, EMPTY); RECENT];
        for (row, (view, valid)) in array.views().iter().zip(valid).enumerate() {
            if !valid {
                out.push(NONE);
                continue;
            }
            let key = view.as_u128();
            let slot = &mut recent[recent_slot(key)];
            if slot.0 == key {
                out.push(slot.1);
                continue;
            }
            let id = match self.memo.get(&key) {
                Some(&id) => id,
                None => {
                    let id = self.id(array.value(row));
                    self.memo.insert(key, id);
                    id
                }
            };
            *slot = (key, id);
            out.push(id);
        }
    }
}

/// Slots of `translate`'s cache of recent views (a power of two). 2,048 rather than 256: from the
/// 10 M-event store `activity` 1.64-1.69 -> 1.52-1.58 s, A/B interleaved.
const RECENT: usize = 2048;

fn recent_slot(view: u128) -> usize {
    let folded = (view as u64) ^ ((view >> 64) as u64);
    (folded.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - RECENT.trailing_zeros())) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(interner: &mut Interner, column: &StringChunked) -> Vec<u32> {
        let mut out = Vec::new();
        interner.translate(column, &mut out);
        out
    }

    #[test]
    fn equal_texts_get_one_id_whatever_their_views() {
        // Long values (past the 12 bytes a view holds inline), repeated in one chunk and across
        // chunks whose buffers differ, and nulls.
        let long_a = "arn:aws:iam::123456789012:user/alice";
        let long_b = "arn:aws:iam::123456789012:user/bob";
        let mut first = StringChunked::new("p".into(), [Some(long_a), None, Some(long_b), Some(long_a), Some("")]);
        let second = StringChunked::new("p".into(), [Some(long_b), Some("short"), Some(long_a), None]);
        first.append(&second).unwrap();
        assert_eq!(first.chunks().len(), 2);
        let mut interner = Interner::default();
        let got = ids(&mut interner, &first);
        assert_eq!(got.len(), 9);
        let texts: Vec<Option<&str>> =
            got.iter().map(|&id| (id != NONE).then(|| interner.value(id))).collect::<Vec<_>>();
        let want: Vec<Option<&str>> = first.iter().collect();
        assert_eq!(texts, want);
        assert_eq!(got[0], got[3]);
        assert_eq!(got[0], got[7]);
        assert_eq!(got[2], got[5]);
        assert_ne!(got[0], got[2]);
        assert_eq!(got[4], EMPTY);
        // "", alice, bob, short.
        assert_eq!(interner.len(), 4);
    }

    #[test]
    fn ids_last_across_columns_of_one_interner() {
        let mut interner = Interner::default();
        let a = ids(&mut interner, &StringChunked::new("x".into(), ["us-east-1", "eu-west-1"]));
        let b = ids(&mut interner, &StringChunked::new("x".into(), ["eu-west-1", "us-east-1", "ap-southeast-2"]));
        assert_eq!((a[0], a[1]), (b[1], b[0]));
        assert_eq!(interner.value(b[2]), "ap-southeast-2");
    }

    #[test]
    fn many_values_past_the_recent_cache_keep_their_ids() {
        // More distinct values than the cache has slots, short (inline) and long, in a shuffled
        // repeating order: evictions and collisions must still give every text its one id.
        let texts: Vec<String> = (0..20_000u64)
            .map(|i| (i * 7919) % 3_000)
            .map(|v| if v % 2 == 0 { format!("v{v}") } else { format!("a-much-longer-value-number-{v}") })
            .collect();
        let column = StringChunked::from_iter_values("x".into(), texts.iter().map(String::as_str));
        let mut interner = Interner::default();
        let got = ids(&mut interner, &column);
        for (id, text) in got.iter().zip(&texts) {
            assert_eq!(interner.value(*id), text);
        }
        assert_eq!(interner.len(), 3_001);
    }
}
