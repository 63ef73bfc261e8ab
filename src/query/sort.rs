//! Rows put in the order of sort keys out of core: `sql`'s final ORDER BY (`sql::final_order`),
//! which Polars' streaming engine does by holding every row of the answer (a `select ... order by
//! principal` over 10 M events peaked at 2.08 GB).
//!
//! Batches are held while they take under a budget; past it, the rows held are sorted and written
//! as a run (a temporary Parquet file of small row groups), and at the end the runs are merged, a
//! chunk of each in memory. Rows are compared by Polars' row encoding of their keys
//! (`_get_rows_encoded_ca`: the bytes of a row's keys compare as Polars sorts them, each key's
//! direction and null placement included), and rows with equal keys keep their input order (runs
//! are in input order, each sorted stably, and a tie goes to the earlier run): one of the orders
//! Polars' own sort, which does not keep ties in order, may give. Memory: the budget, whatever the
//! number of rows.

use std::path::PathBuf;

use polars::prelude::row_encode::_get_rows_encoded_ca;
use polars::prelude::*;

use crate::error::{PolarsContext, Result};
use crate::fs::TempDir;

/// Rows per row group of a run: small, so that a merge reads a run a little at a time.
const RUN_ROW_GROUP: usize = 4_096;
/// Rows per frame handed on.
const OUT_ROWS: usize = 16_384;

/// The encoded keys of a frame's rows, one array.
type KeyArray = <BinaryOffsetType as PolarsDataType>::Array;

/// How rows are ordered: their key columns (in the frames added), each's direction and nulls' place.
#[derive(Debug, Clone)]
pub struct SortKeys {
    pub columns: Vec<PlSmallStr>,
    pub descending: Vec<bool>,
    pub nulls_last: Vec<bool>,
}

impl SortKeys {
    /// The rows' keys encoded, in one array.
    fn encode(&self, df: &DataFrame) -> Result<BinaryOffsetChunked> {
        let columns =
            self.columns.iter().map(|k| df.column(k).cloned().context("a sort key")).collect::<Result<Vec<_>>>()?;
        let keys = _get_rows_encoded_ca("key".into(), &columns, &self.descending, &self.nulls_last, false)
            .context("encoding sort keys")?;
        Ok(keys.rechunk().into_owned())
    }
}

fn array(keys: &BinaryOffsetChunked) -> &KeyArray {
    keys.downcast_iter().next().expect("rechunked keys have one chunk")
}

/// Rows added in any number, handed back in key order (`finish`).
pub struct SortedRows {
    keys: SortKeys,
    budget: u64,
    held: Vec<DataFrame>,
    held_bytes: u64,
    held_rows: usize,
    /// The runs written (file, rows) and their directory.
    runs: Vec<(PathBuf, usize)>,
    dir: Option<TempDir>,
    /// Bytes a row took in memory, on average, when the last run was written.
    row_bytes: u64,
}

impl SortedRows {
    /// Rows ordered by `keys`, held up to `budget` bytes.
    pub fn new(keys: SortKeys, budget: u64) -> SortedRows {
        super::spill::return_freed_memory();
        SortedRows {
            keys,
            budget,
            held: Vec::new(),
            held_bytes: 0,
            held_rows: 0,
            runs: Vec::new(),
            dir: None,
            row_bytes: 1,
        }
    }

    /// Add rows (all with the same columns, the key columns among them).
    pub fn add(&mut self, df: DataFrame) -> Result<()> {
        if df.height() == 0 {
            return Ok(());
        }
        self.held_bytes += df.estimated_size() as u64;
        self.held_rows += df.height();
        self.held.push(df);
        if self.held_bytes > self.budget {
            self.write_run()?;
        }
        Ok(())
    }

    /// The rows held, sorted stably by their encoded keys; nothing is held after.
    fn take_sorted(&mut self) -> Result<DataFrame> {
        let mut parts = std::mem::take(&mut self.held).into_iter();
        let mut df = parts.next().unwrap_or_default();
        for part in parts {
            df.vstack_mut_owned(part).context("gathering rows to sort")?;
        }
        self.held_bytes = 0;
        self.held_rows = 0;
        let keys = self.keys.encode(&df)?;
        let keys = array(&keys);
        let mut order: Vec<IdxSize> = (0..df.height() as IdxSize).collect();
        order.sort_by(|&a, &b| keys.value(a as usize).cmp(keys.value(b as usize)));
        df.take(&IdxCa::from_vec("order".into(), order)).context("sorting rows")
    }

    fn write_run(&mut self) -> Result<()> {
        if self.held.is_empty() {
            return Ok(());
        }
        self.row_bytes = (self.held_bytes / self.held_rows.max(1) as u64).max(1);
        let mut df = self.take_sorted()?;
        let dir = match &self.dir {
            Some(dir) => dir,
            None => self.dir.insert(TempDir::new()?),
        };
        let path = dir.path().join(format!("{:06}.parquet", self.runs.len()));
        super::spill::write_parquet_groups(&path, &mut df, Some(RUN_ROW_GROUP))?;
        self.runs.push((path, df.height()));
        Ok(())
    }

    /// The runs written so far.
    pub fn runs(&self) -> usize {
        self.runs.len()
    }

    /// Hand every row added to `emit`, a frame at a time, in key order.
    pub fn finish(mut self, mut emit: impl FnMut(DataFrame) -> Result<()>) -> Result<()> {
        if self.runs.is_empty() {
            let df = self.take_sorted()?;
            let mut at = 0;
            while at < df.height() {
                emit(df.slice(at as i64, OUT_ROWS))?;
                at += OUT_ROWS;
            }
            return Ok(());
        }
        self.write_run()?;
        // A chunk of each run in memory: together about the budget.
        let per_run = self.budget / (self.runs.len() as u64 * self.row_bytes);
        let chunk = per_run.clamp(256, RUN_ROW_GROUP as u64 * 4) as usize;
        let mut runs = Vec::with_capacity(self.runs.len());
        for (path, rows) in &self.runs {
            let mut run = Run { path: path.clone(), rows: *rows, read: 0, chunk_rows: chunk, frame: None, pos: 0 };
            run.refill(&self.keys)?;
            runs.push(run);
        }
        let mut merge = Merge { heap: (0..runs.len()).collect(), runs, picks: Vec::new() };
        for at in (0..merge.heap.len() / 2).rev() {
            merge.sift_down(at);
        }
        while let Some(&top) = merge.heap.first() {
            let run = &mut merge.runs[top];
            merge.picks.push((top, run.pos as IdxSize));
            run.pos += 1;
            if run.pos == run.height() {
                // The chunk's picked rows are handed on before it is replaced.
                merge.emit(&mut emit)?;
                if !merge.runs[top].refill(&self.keys)? {
                    let last = merge.heap.pop().expect("a run in the heap");
                    if merge.heap.is_empty() {
                        break;
                    }
                    merge.heap[0] = last;
                }
            }
            merge.sift_down(0);
            if merge.picks.len() >= OUT_ROWS {
                merge.emit(&mut emit)?;
            }
        }
        merge.emit(&mut emit)
    }
}

/// A run being merged: the chunk of it in memory with its keys, and the next row's place.
struct Run {
    path: PathBuf,
    rows: usize,
    /// Rows of the run read so far (the chunk included).
    read: usize,
    chunk_rows: usize,
    frame: Option<(DataFrame, BinaryOffsetChunked)>,
    pos: usize,
}

impl Run {
    fn height(&self) -> usize {
        self.frame.as_ref().map_or(0, |(df, _)| df.height())
    }

    fn key(&self) -> &[u8] {
        let (_, keys) = self.frame.as_ref().expect("a run's chunk");
        array(keys).value(self.pos)
    }

    /// Read the run's next chunk; false at its end.
    fn refill(&mut self, keys: &SortKeys) -> Result<bool> {
        if self.read >= self.rows {
            self.frame = None;
            return Ok(false);
        }
        let path = PlRefPath::new(self.path.to_string_lossy().as_ref());
        let args = ScanArgsParquet {
            hive_options: HiveOptions { enabled: Some(false), ..Default::default() },
            ..Default::default()
        };
        let df = LazyFrame::scan_parquet_files(vec![path].into(), args)
            .context("reading a sorted run")?
            .slice(self.read as i64, self.chunk_rows as IdxSize)
            .collect()
            .context("reading a sorted run")?;
        if df.height() == 0 {
            return Err(crate::error::Error::Polars {
                context: "reading a sorted run".into(),
                cause: PolarsError::ComputeError(
                    format!("{} ends before its {} rows", self.path.display(), self.rows).into(),
                ),
            });
        }
        self.read += df.height();
        let encoded = keys.encode(&df)?;
        self.frame = Some((df, encoded));
        self.pos = 0;
        Ok(true)
    }
}

/// The k-way merge: a heap of the runs with rows left, by (next key, run), and the rows picked
/// since the last frame was handed on (run, row of its chunk).
struct Merge {
    heap: Vec<usize>,
    runs: Vec<Run>,
    picks: Vec<(usize, IdxSize)>,
}

impl Merge {
    fn less(&self, a: usize, b: usize) -> bool {
        (self.runs[a].key(), a) < (self.runs[b].key(), b)
    }

    fn sift_down(&mut self, mut at: usize) {
        loop {
            let (left, right) = (2 * at + 1, 2 * at + 2);
            let mut least = at;
            if left < self.heap.len() && self.less(self.heap[left], self.heap[least]) {
                least = left;
            }
            if right < self.heap.len() && self.less(self.heap[right], self.heap[least]) {
                least = right;
            }
            if least == at {
                return;
            }
            self.heap.swap(at, least);
            at = least;
        }
    }

    /// Hand on the rows picked, in their order: each run's rows taken from its chunk, stacked, then
    /// put in pick order.
    fn emit(&mut self, emit: &mut impl FnMut(DataFrame) -> Result<()>) -> Result<()> {
        if self.picks.is_empty() {
            return Ok(());
        }
        let mut rows: Vec<Vec<IdxSize>> = vec![Vec::new(); self.runs.len()];
        let mut rank = Vec::with_capacity(self.picks.len());
        for &(run, row) in &self.picks {
            rank.push((run, rows[run].len() as IdxSize));
            rows[run].push(row);
        }
        let mut start = vec![0 as IdxSize; self.runs.len()];
        let mut stacked: Option<DataFrame> = None;
        let mut offset: IdxSize = 0;
        for (run, rows) in rows.into_iter().enumerate() {
            if rows.is_empty() {
                continue;
            }
            start[run] = offset;
            offset += rows.len() as IdxSize;
            let (df, _) = self.runs[run].frame.as_ref().expect("a chunk with picked rows");
            let part = df.take(&IdxCa::from_vec("rows".into(), rows)).context("merging sorted runs")?;
            match &mut stacked {
                Some(all) => {
                    all.vstack_mut_owned(part).context("merging sorted runs")?;
                }
                None => stacked = Some(part),
            }
        }
        let order: Vec<IdxSize> = rank.into_iter().map(|(run, i)| start[run] + i).collect();
        self.picks.clear();
        let stacked = stacked.expect("rows picked");
        emit(stacked.take(&IdxCa::from_vec("order".into(), order)).context("merging sorted runs")?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rows added in batches come back in the order Polars' stable sort gives, held or merged from
    /// runs (budgets down to a run per batch), for keys of several types, directions and nulls.
    #[test]
    fn rows_come_back_as_a_stable_sort_orders_them() {
        let n = 5_000usize;
        let text: Vec<Option<String>> =
            (0..n).map(|i| (i % 11 != 0).then(|| format!("p{}", (i * 7919) % 37))).collect();
        let number: Vec<Option<i64>> = (0..n).map(|i| (i % 13 != 0).then_some(((i * 104_729) % 101) as i64)).collect();
        let seq: Vec<i64> = (0..n as i64).collect();
        let df = df!("text" => text, "number" => number, "seq" => seq).unwrap();
        for (descending, nulls_last) in
            [([false, false], [true, true]), ([true, false], [false, true]), ([false, true], [false, false])]
        {
            let keys = SortKeys {
                columns: vec!["text".into(), "number".into()],
                descending: descending.to_vec(),
                nulls_last: nulls_last.to_vec(),
            };
            let options = SortMultipleOptions::default()
                .with_order_descending_multi(descending)
                .with_nulls_last_multi(nulls_last)
                .with_maintain_order(true);
            let expected = df.sort(["text", "number"], options).unwrap();
            for budget in [u64::MAX, 64 << 10, 1] {
                let mut rows = SortedRows::new(keys.clone(), budget);
                let mut at = 0;
                while at < n {
                    rows.add(df.slice(at as i64, 333)).unwrap();
                    at += 333;
                }
                let spilled = !rows.runs.is_empty();
                assert_eq!(spilled, budget != u64::MAX, "budget {budget}");
                let mut got = DataFrame::empty_with_schema(df.schema());
                rows.finish(|part| {
                    got.vstack_mut(&part).unwrap();
                    Ok(())
                })
                .unwrap();
                assert!(got.equals_missing(&expected), "{descending:?} {nulls_last:?} budget {budget}");
            }
        }
    }
}
