//! `trailscope timeline`: a forensic timeline with pivots (see `query::timeline`).

use clap::Args;

use super::questions::{format_of, load_in_any_order, load_selecting, write, Question};
use crate::cli::{InputArgs, OutputArgs};
use trailscope::error::Result;
use trailscope::output::{self, Format};
use trailscope::query::{self, Answer};

pub static QUESTION: Question<TimelineArgs> = Question {
    name: "timeline",
    about: "A forensic timeline with pivots; --session follows a temporary key",
    formats: super::questions::EVENT_FORMATS,
    run,
};

#[derive(Args, Debug)]
pub struct TimelineArgs {
    #[command(flatten)]
    pub input: InputArgs,
    #[command(flatten)]
    pub output: OutputArgs,
    /// Principal (ARN, user name, access key id, or glob); repeatable.
    #[arg(long, value_name = "P")]
    pub principal: Vec<String>,
    /// Access key id (or glob); repeatable.
    #[arg(long, value_name = "KEY")]
    pub access_key: Vec<String>,
    /// Source IP address or CIDR block; repeatable.
    #[arg(long, value_name = "IP|CIDR")]
    pub source_ip: Vec<String>,
    /// Event name or glob (e.g. 'Delete*'); repeatable.
    #[arg(long, value_name = "NAME")]
    pub event_name: Vec<String>,
    /// Event source (e.g. iam.amazonaws.com) or glob; repeatable.
    #[arg(long, value_name = "SOURCE")]
    pub event_source: Vec<String>,
    /// Only failed requests.
    #[arg(long)]
    pub errors_only: bool,
    /// Only read-only events.
    #[arg(long, conflicts_with = "writes_only")]
    pub read_only: bool,
    /// Only events that change something (readOnly false).
    #[arg(long)]
    pub writes_only: bool,
    /// Follow a temporary key (ASIA...) back to the call that issued it and forward to its use.
    #[arg(long, value_name = "ASIA...")]
    pub session: Option<String>,
}

pub fn run(args: &TimelineArgs) -> Result<bool> {
    let source_ips = args.source_ip.iter().map(|s| s.parse()).collect::<Result<Vec<_>>>()?;
    let pivots = query::timeline::Pivots {
        principals: args.principal.clone(),
        access_keys: args.access_key.clone(),
        source_ips,
        event_names: args.event_name.clone(),
        event_sources: args.event_source.clone(),
        errors_only: args.errors_only,
        read_only: args.read_only,
        writes_only: args.writes_only,
    };
    // The session pivot reads `READ` and `responseElements` (it follows keys through them), in any
    // order; otherwise only `READ` is read, and a large input spills only the rows the pivots
    // select.
    let loaded = match &args.session {
        Some(_) => load_in_any_order(&args.input, Some(&query::timeline::SESSION_READ))?,
        None => load_selecting(&args.input, &query::timeline::READ, query::timeline::selection(&pivots))?,
    };
    let bad = super::warn_bad_input(&loaded.stats);
    // The pivots and the rows' columns are applied as a large store is read, so that only what
    // the timeline lists is held or spilled in time order; the session pivot follows keys across
    // every event.
    let limit = args.input.memory_limit;
    let data;
    let lf = match &args.session {
        // The pivot selects the chain's rows and sorts them: the events are not put in time order
        // first (a store was spilled whole by the hour for it, raw files spilled and sorted).
        Some(key) => {
            data = loaded;
            query::timeline::session(query::timeline::filtered(data.events.clone(), &pivots)?, key)?
        }
        None => {
            let select = query::timeline::selection(&pivots);
            data = loaded.time_ordered(limit, select, Some(&query::timeline::COLUMNS))?;
            query::timeline::rows(data.events.clone(), data.sorted)
        }
    };
    // On a terminal the timeline reads like a log (#11); `--columns` asks for the rows' own columns.
    let sink = args.output.sink(format_of(&args.output));
    let log = sink.format == Format::Table
        && sink.columns.is_none()
        && args.output.section.as_deref().is_none_or(|s| s == "timeline");
    if log {
        output::log::write_log(&sink, lf)?;
    } else {
        write(Answer::one("timeline", lf), &args.output)?;
    }
    Ok(bad)
}
