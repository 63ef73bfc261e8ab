//! What a question is, and how the registry becomes the command line. Each question is one file in
//! `commands/` (its clap `Args`, its `run` and its `QUESTION` descriptor), registered by one line in
//! `commands/mod.rs`'s `questions!` (which declares the module and lists it in [`QUESTIONS`]); the
//! command line's subcommands are built from that list ([`Asked`], flattened into `cli::Command`)
//! and `main` runs what it parsed. The helpers below load the dataset and write an answer's sections
//! for every question.

use std::io::IsTerminal;

use clap::{ArgMatches, FromArgMatches};
use polars::prelude::*;

use super::QUESTIONS;
use crate::cli::{InputArgs, OutputArgs};
use trailscope::error::Result;
use trailscope::output::{self, Format};
use trailscope::query::dataset::{self, Dataset};
use trailscope::query::Answer;

/// Every format: for answers whose rows are events (Timesketch imports events, by their time).
pub const EVENT_FORMATS: &[Format] =
    &[Format::Table, Format::Csv, Format::Json, Format::Jsonl, Format::Parquet, Format::Timesketch];
/// Every format but Timesketch: for answers whose rows are not events (aggregates, principals).
pub const TABLE_FORMATS: &[Format] = &[Format::Table, Format::Csv, Format::Json, Format::Jsonl, Format::Parquet];

/// A question command: its name and one-line help, the formats it writes, its flags (`A`, a clap
/// `Args` struct flattening `OutputArgs`) and what runs it. `Ok(true)` means some input was bad
/// (exit code 2).
pub struct Question<A> {
    pub name: &'static str,
    /// The line `--help` shows (clap's style: no final period).
    pub about: &'static str,
    /// What `--format` offers (its possible values in `--help`); any other is a usage error. Table
    /// and JSON, the defaults, are always among them.
    pub formats: &'static [Format],
    pub run: fn(&A) -> Result<bool>,
}

/// A [`Question`] with its flags' type erased, as the registry holds it.
pub trait Asks: Sync {
    fn name(&self) -> &'static str;
    /// The clap subcommand: the name, the help line, the flags.
    fn command(&self) -> clap::Command;
    /// Take the flags from the subcommand's matches; the result runs the question.
    fn parse(&self, matches: &mut ArgMatches) -> std::result::Result<Box<dyn Fn() -> Result<bool>>, clap::Error>;
}

impl<A: clap::Args + 'static> Asks for Question<A> {
    fn name(&self) -> &'static str {
        self.name
    }

    fn command(&self) -> clap::Command {
        A::augment_args(clap::Command::new(self.name))
            .about(self.about)
            .long_about(None)
            .mut_arg("format", |arg| arg.value_parser(format_parser(self.formats)))
    }

    fn parse(&self, matches: &mut ArgMatches) -> std::result::Result<Box<dyn Fn() -> Result<bool>>, clap::Error> {
        let args = A::from_arg_matches_mut(matches)?;
        let run = self.run;
        Ok(Box::new(move || run(&args)))
    }
}

/// `--format`'s parser for a question: its formats only, with their help, parsed to a `Format`.
fn format_parser(formats: &'static [Format]) -> impl clap::builder::TypedValueParser<Value = Format> {
    use clap::builder::TypedValueParser;
    use clap::ValueEnum;
    clap::builder::PossibleValuesParser::new(formats.iter().filter_map(ValueEnum::to_possible_value))
        .try_map(|name| Format::from_str(&name, false))
}

/// The question the command line named, with its flags parsed: `cli::Command::Question`.
pub struct Asked {
    pub name: &'static str,
    run: Box<dyn Fn() -> Result<bool>>,
}

impl Asked {
    pub fn run(&self) -> Result<bool> {
        (self.run)()
    }
}

impl std::fmt::Debug for Asked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Asked").field("name", &self.name).finish_non_exhaustive()
    }
}

fn find(name: &str) -> Option<&'static dyn Asks> {
    QUESTIONS.iter().copied().find(|q| q.name() == name)
}

impl FromArgMatches for Asked {
    fn from_arg_matches(matches: &ArgMatches) -> std::result::Result<Self, clap::Error> {
        Self::from_arg_matches_mut(&mut matches.clone())
    }

    fn from_arg_matches_mut(matches: &mut ArgMatches) -> std::result::Result<Self, clap::Error> {
        let missing = || clap::Error::raw(clap::error::ErrorKind::MissingSubcommand, "a question is required");
        let (name, mut sub) = matches.remove_subcommand().ok_or_else(missing)?;
        let question = find(&name).ok_or_else(|| {
            clap::Error::raw(clap::error::ErrorKind::InvalidSubcommand, format!("no question named {name:?}"))
        })?;
        Ok(Asked { name: question.name(), run: question.parse(&mut sub)? })
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> std::result::Result<(), clap::Error> {
        *self = Self::from_arg_matches(matches)?;
        Ok(())
    }
}

impl clap::Subcommand for Asked {
    fn augment_subcommands(cmd: clap::Command) -> clap::Command {
        QUESTIONS.iter().fold(cmd, |cmd, q| cmd.subcommand(q.command()))
    }

    fn augment_subcommands_for_update(cmd: clap::Command) -> clap::Command {
        Self::augment_subcommands(cmd)
    }

    fn has_subcommand(name: &str) -> bool {
        find(name).is_some()
    }
}

pub fn load(input: &InputArgs) -> Result<Dataset> {
    let filter = input.filter()?;
    let data = dataset::load(&input.inputs, &filter, &input.read_options(), &input.s3_options(), input.quiet)?;
    after_load(&data, input.quiet);
    Ok(data)
}

/// Record what was read for the closing summary (`closing`). An answer from no input is not silent:
/// say that nothing was found (an empty folder, a folder of other files).
fn after_load(data: &Dataset, quiet: bool) {
    after_read(&data.stats, data.stores.len(), quiet)
}

fn after_read(s: &trailscope::ingest::pipeline::ReadStats, stores: usize, quiet: bool) {
    super::closing::record(s, stores, quiet);
    if stores > 0 || s.records > 0 {
        return;
    }
    if s.files == 0 && s.files_failed == 0 {
        let skipped = if s.files_skipped > 0 {
            format!(" ({} file(s) skipped: `trailscope scan` lists them with the reason)", s.files_skipped)
        } else {
            String::new()
        };
        eprintln!("trailscope: no CloudTrail log file found in the input{skipped}: the answer is empty");
    } else if s.files > 0 {
        eprintln!("trailscope: the {} file(s) read hold no CloudTrail event: the answer is empty", s.files);
    }
}

/// For a question that folds its answer batch by batch (`dataset::fold`): read the inputs (filling
/// only `columns` of the string columns, or all) and hand the events to `each`; what was read is
/// recorded for the closing summary and its bad input warned about (`warn_bad_input`). Returns
/// whether some input was bad.
pub fn fold(
    input: &InputArgs,
    columns: Option<&'static [&'static str]>,
    each: impl FnMut(DataFrame) -> Result<()>,
) -> Result<bool> {
    let filter = input.filter()?;
    let opts = trailscope::ingest::pipeline::ReadOptions { columns, ..input.read_options() };
    let inputs = dataset::discover(&input.inputs, &filter, &input.s3_options())?;
    let folded = dataset::fold(inputs, &filter, &opts, input.quiet, each)?;
    after_read(&folded.stats, folded.stores.len(), input.quiet);
    Ok(super::warn_bad_input(&folded.stats))
}

/// `load`, filling only `columns` of the string columns from raw files (see `ReadOptions::columns`).
pub fn load_columns(input: &InputArgs, columns: &'static [&'static str]) -> Result<Dataset> {
    load_selecting(input, columns, None)
}

/// `load_columns` for a question that will select the rows `keep` selects: a large input spills
/// only those (`dataset::load_keeping`).
pub fn load_selecting(input: &InputArgs, columns: &'static [&'static str], keep: Option<Expr>) -> Result<Dataset> {
    let filter = input.filter()?;
    let opts = trailscope::ingest::pipeline::ReadOptions { columns: Some(columns), ..input.read_options() };
    let data = dataset::load_keeping(&input.inputs, &filter, &opts, &input.s3_options(), input.quiet, keep)?;
    after_load(&data, input.quiet);
    Ok(data)
}

/// `load` for a question that takes the events in any order (`ReadOptions::any_order`), filling only
/// `columns` from raw files when given.
pub fn load_in_any_order(input: &InputArgs, columns: Option<&'static [&'static str]>) -> Result<Dataset> {
    let filter = input.filter()?;
    let opts = trailscope::ingest::pipeline::ReadOptions { columns, any_order: true, ..input.read_options() };
    let data = dataset::load(&input.inputs, &filter, &opts, &input.s3_options(), input.quiet)?;
    after_load(&data, input.quiet);
    Ok(data)
}

pub fn format_of(out: &OutputArgs) -> Format {
    out.format.unwrap_or(if out.output.is_none() && std::io::stdout().is_terminal() {
        Format::Table
    } else {
        Format::Json
    })
}

/// Write the answer's sections (all, or the one `--section` names), each as it is produced: none is
/// held whole (`output::write_sections_streamed`).
pub fn write(answer: Answer, out: &OutputArgs) -> Result<()> {
    // The spills live until the sections scanned from them are written.
    let Answer { sections, spills: _spills } = answer;
    let sections: Vec<(String, LazyFrame)> =
        sections.into_iter().filter(|(name, _)| out.section.as_ref().is_none_or(|s| s == name)).collect();
    if sections.is_empty() {
        return Err(trailscope::error::Error::Usage(format!(
            "no section named {:?}",
            out.section.as_deref().unwrap_or_default()
        )));
    }
    output::write_sections_streamed(&out.sink(format_of(out)), sections)
}

#[cfg(test)]
mod tests {
    use super::QUESTIONS;
    use crate::cli::Cli;
    use clap::CommandFactory;

    /// No two questions share a name, nor a question the name of another command (clap would take the
    /// first and hide the other).
    #[test]
    fn question_names_are_unique() {
        let mut names: Vec<_> = QUESTIONS.iter().map(|q| q.name()).collect();
        names.sort_unstable();
        let before = names.len();
        names.dedup();
        assert_eq!(names.len(), before, "two questions share a name");
        let all: Vec<_> = Cli::command().get_subcommands().map(|c| c.get_name().to_string()).collect();
        for q in QUESTIONS {
            assert_eq!(all.iter().filter(|n| *n == q.name()).count(), 1, "{} is not one subcommand", q.name());
        }
    }

    /// Every question is in `--help`, with its help line, and answers its own `--help`.
    #[test]
    fn every_question_is_in_help() {
        let mut cli = Cli::command();
        let help = cli.render_help().to_string();
        for q in QUESTIONS {
            let line = help.lines().find(|l| l.split_whitespace().next() == Some(q.name()));
            let line = line.unwrap_or_else(|| panic!("{} missing from --help:\n{help}", q.name()));
            let about = q.command().get_about().map(|a| a.to_string()).unwrap_or_default();
            assert!(
                !about.is_empty() && line.contains(&about.chars().take(20).collect::<String>()),
                "{}: {line}",
                q.name()
            );
            let err = Cli::command().try_get_matches_from(["trailscope", q.name(), "--help"]).unwrap_err();
            assert_eq!(err.kind(), clap::error::ErrorKind::DisplayHelp, "{}", q.name());
        }
    }

    /// The questions the SQL pack (`trailscope sql-pack`) does not write as `<name>.sql`, and why.
    const WITHOUT_SQL_PACK: &[(&str, &str)] = &[
        ("timeline", "its rows are the events: a SELECT on the table create_table.sql makes"),
        ("hunt", "Sigma rules, not SQL"),
        ("sql", "it is SQL already"),
        ("unused", "the IAM snapshot is not in the lake: only its used side, `unused --used`, is (used.sql)"),
        ("sessions", "not written as SQL yet"),
    ];

    /// Each question is in the SQL pack, as `<name>.sql`, or in `WITHOUT_SQL_PACK` saying why; and
    /// every file of the pack is a question's, the table's definition or used.sql.
    #[test]
    fn every_question_is_in_the_sql_pack_or_says_why() {
        use trailscope::query::sql_pack::{pack, Dialect};
        let files: Vec<String> = pack(Dialect::Duckdb, "events").unwrap().into_iter().map(|(name, _)| name).collect();
        for q in QUESTIONS {
            let in_pack = files.contains(&format!("{}.sql", q.name()));
            let without = WITHOUT_SQL_PACK.iter().any(|(name, _)| *name == q.name());
            assert!(in_pack != without, "{}: in the SQL pack {in_pack}, in WITHOUT_SQL_PACK {without}", q.name());
        }
        for (name, _) in WITHOUT_SQL_PACK {
            assert!(QUESTIONS.iter().any(|q| q.name() == *name), "WITHOUT_SQL_PACK names no question {name}");
        }
        for file in &files {
            let question = file.trim_end_matches(".sql");
            assert!(
                ["create_table", "used"].contains(&question) || QUESTIONS.iter().any(|q| q.name() == question),
                "the SQL pack's {file} is no question's"
            );
        }
    }

    /// `--format` accepts exactly the formats it offers (its possible values in `--help`: the
    /// question's `formats`), the defaults (table, JSON) among them; any other is refused as an
    /// invalid value (exit 1, see `main`).
    #[test]
    fn format_takes_the_formats_it_offers() {
        use clap::ValueEnum;
        use trailscope::output::Format;
        let mut refused = 0;
        for q in QUESTIONS {
            let cmd = q.command();
            let arg = cmd.get_arguments().find(|a| a.get_id() == "format").expect("--format");
            let offered: Vec<String> = arg.get_possible_values().iter().map(|v| v.get_name().to_string()).collect();
            assert!(offered.contains(&"table".into()) && offered.contains(&"json".into()), "{}: {offered:?}", q.name());
            for f in Format::value_variants() {
                let name = f.to_possible_value().unwrap().get_name().to_string();
                // --format alone (the question's required flags, such as sql's --query, aside).
                let alone = clap::Command::new(q.name()).arg(arg.clone());
                match alone.try_get_matches_from([q.name(), "--format", &name]) {
                    Ok(m) => {
                        assert!(offered.contains(&name), "{} accepts {name}, not offered", q.name());
                        assert_eq!(m.get_one::<Format>("format"), Some(f), "{} --format {name}", q.name());
                    }
                    Err(e) => {
                        assert!(!offered.contains(&name), "{} refuses {name}, offered: {e}", q.name());
                        assert_eq!(e.kind(), clap::error::ErrorKind::InvalidValue, "{} --format {name}", q.name());
                        refused += 1;
                    }
                }
            }
        }
        assert!(refused > 0, "some question offers fewer formats than there are");
    }
}
