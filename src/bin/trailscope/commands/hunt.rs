//! `trailscope hunt`: Sigma rules over the events (see `query::hunt`).

use std::path::{Path, PathBuf};

use clap::Args;

use trailscope::error::{Error, Result};
use trailscope::output;
use trailscope::query::hunt::{self, RuleSet, Selection};
use trailscope::sigma::{Level, Status};

use super::questions::{fold, format_of, Question};
use crate::cli::{InputArgs, OutputArgs};

pub static QUESTION: Question<HuntArgs> = Question {
    name: "hunt",
    about: "Sigma rules over the events: the shipped SigmaHQ CloudTrail rules, and yours (--rules)",
    formats: super::questions::EVENT_FORMATS,
    run,
};

#[derive(Args, Debug)]
pub struct HuntArgs {
    #[command(flatten)]
    pub input: InputArgs,
    #[command(flatten)]
    pub output: OutputArgs,
    /// Sigma rule files, or folders walked for .yml/.yaml files; repeatable. Added to the shipped
    /// SigmaHQ rules (see --no-default-rules).
    #[arg(long, value_name = "PATH")]
    pub rules: Vec<PathBuf>,
    /// Leave out the shipped SigmaHQ rules: only --rules are used.
    #[arg(long)]
    pub no_default_rules: bool,
    /// Report only rules of this level or above (informational, low, medium, high, critical).
    #[arg(long, value_name = "LEVEL")]
    pub min_level: Option<String>,
    /// Report only rules with this status (stable, test, experimental, deprecated, unsupported);
    /// repeatable.
    #[arg(long, value_name = "STATUS")]
    pub status: Vec<String>,
    /// Report only this rule (id or title); repeatable.
    #[arg(long, value_name = "ID")]
    pub rule: Vec<String>,
    /// A file of rule ids or titles not to report, one per line (`#` starts a comment), or a rule
    /// file or folder whose rules are not reported; repeatable.
    #[arg(long, value_name = "PATH")]
    pub exclude_rules: Vec<PathBuf>,
    /// Print per rule its id, title, level and hits, then the rules not loaded and why.
    #[arg(long)]
    pub summary: bool,
    /// The values of a Sigma `expand` placeholder: NAME=VALUE[,VALUE...] (NAME with or without its
    /// `%`s); repeatable, values of one name add up. A rule whose placeholder is not given is not
    /// loaded, and says so.
    #[arg(long, value_name = "NAME=VALUES")]
    pub placeholder: Vec<String>,
}

/// `--placeholder NAME=V1,V2` flags as the loader takes them.
fn placeholders(flags: &[String]) -> Result<std::collections::HashMap<String, Vec<String>>> {
    let mut out: std::collections::HashMap<String, Vec<String>> = Default::default();
    for flag in flags {
        let Some((name, values)) = flag.split_once('=') else {
            return Err(Error::Usage(format!("--placeholder {flag:?}: expected NAME=VALUE[,VALUE...]")));
        };
        let name = name.trim().trim_matches('%');
        if name.is_empty() {
            return Err(Error::Usage(format!("--placeholder {flag:?}: the name is empty")));
        }
        out.entry(name.to_string()).or_default().extend(values.split(',').map(str::to_string));
    }
    Ok(out)
}

pub fn run(args: &HuntArgs) -> Result<bool> {
    let mut set = RuleSet::load_with(&args.rules, !args.no_default_rules, &placeholders(&args.placeholder)?)?;
    let selection = selection(args)?;
    let unknown = set.unknown_names(&args.rule);
    if !unknown.is_empty() {
        return Err(Error::Usage(format!("--rule {}: no loaded rule has this id or title", unknown.join(", "))));
    }
    set.select(&selection);
    for p in &set.problems {
        eprintln!("trailscope: rule not loaded: {}{}: {}", p.file, rule_name(&p.rule), p.reason);
    }
    // Warnings about the shipped rules are in --summary; a team's own rules get them on every run.
    for w in set.warnings.iter().filter(|w| !w.file.starts_with(hunt::SHIPPED_PREFIX)) {
        eprintln!("trailscope: warning: rule {}{}: {}", w.file, rule_name(&w.rule), w.reason);
    }
    if set.rules.is_empty() {
        return Err(Error::Usage("no rule loaded: nothing to hunt with".into()));
    }
    // The rules run on each batch as the files are read (never spilled, in any order); the hits
    // come out in time order at the end.
    let mut hunt = hunt::Hunt::new(&set, args.input.memory_limit);
    if args.summary {
        hunt = hunt.tally_only();
    }
    // Only the columns the rules and the hit rows read are filled from raw files. Leaked: one small
    // list per run, for `ReadOptions`' `'static` column list.
    let columns: Option<&'static [&'static str]> = set.columns_read().map(|c| &*Box::leak(c.into_boxed_slice()));
    let bad = fold(&args.input, columns, |df| hunt.add(df))? || !set.problems.is_empty();
    let sink = args.output.sink(format_of(&args.output));
    if args.summary {
        let tally = hunt.finish(|_| Ok(()))?;
        let sections = vec![
            ("rules".to_string(), hunt::summary(&set, &tally)?),
            ("not_loaded".to_string(), hunt::problems(&set)?),
        ];
        let sections = match &args.output.section {
            Some(name) => {
                let one: Vec<_> = sections.into_iter().filter(|(n, _)| n == name).collect();
                if one.is_empty() {
                    return Err(Error::Usage(format!("no section named {name:?}; the sections are rules, not_loaded")));
                }
                one
            }
            None => sections,
        };
        output::write_sections(&sink, sections)?;
    } else {
        let schema = hunt::empty_hits()?.schema().as_ref().clone();
        output::write_batches(&sink, &schema, |each| hunt.finish(each).map(|_| ()))?;
    }
    Ok(bad)
}

fn rule_name(rule: &Option<String>) -> String {
    rule.as_ref().map(|r| format!(" ({r})")).unwrap_or_default()
}

fn selection(args: &HuntArgs) -> Result<Selection> {
    let min_level = args
        .min_level
        .as_deref()
        .map(|l| l.parse::<Level>().map_err(|e| Error::Usage(format!("--min-level: {e}"))))
        .transpose()?;
    let statuses = args
        .status
        .iter()
        .map(|s| s.parse::<Status>().map_err(|e| Error::Usage(format!("--status: {e}"))))
        .collect::<Result<Vec<_>>>()?;
    let mut exclude = Vec::new();
    for p in &args.exclude_rules {
        exclude.extend(excluded(p)?);
    }
    Ok(Selection { min_level, statuses, only: args.rule.clone(), exclude })
}

/// The ids (or titles) an `--exclude-rules` path names: a rule file or folder's rules, or a list.
fn excluded(path: &Path) -> Result<Vec<String>> {
    let is_rules = path.is_dir() || path.extension().is_some_and(|x| x == "yml" || x == "yaml");
    if is_rules {
        let set = RuleSet::load(&[path.to_path_buf()], false)?;
        return Ok(set
            .rules
            .iter()
            .map(|r| &r.rule.meta)
            .chain(set.correlations.iter().map(|c| &c.def.meta))
            .map(|m| m.id.clone().unwrap_or_else(|| m.title.clone()))
            .collect());
    }
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    Ok(text
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect())
}
