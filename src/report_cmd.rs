//! `syncstorm report`, `compare` and `merge`: re-render, compare and join result files.
//! Each returns the process exit code; a bad file gets one sentence on stderr and exit 2.

use std::path::{Path, PathBuf};

use clap::Args;

use crate::cli::exit;
use crate::report;
use crate::result::{ResultError, RunResult, merge_shards};

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// A result file written by `syncstorm run` (or `merge`).
    pub result: PathBuf,
    /// Where to write the HTML report (default: beside the result, with `.html`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Also write the thresholds as JUnit XML to this file (for CI test views).
    #[arg(long)]
    pub junit: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct CompareArgs {
    /// The baseline run (A).
    pub a: PathBuf,
    /// The run compared with it (B).
    pub b: PathBuf,
    /// Where to write the comparison (default: `<a>-vs-<b>.html` beside A).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct MergeArgs {
    /// Shard result files of one run.
    #[arg(required = true)]
    pub shards: Vec<PathBuf>,
    /// Where to write the merged result; its HTML report goes beside it.
    #[arg(long)]
    pub out: PathBuf,
}

/// Why a command failed: bad input (exit 2) or a failure to write (exit 1).
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error(transparent)]
    Input(#[from] ResultError),
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl CommandError {
    pub fn exit_code(&self) -> i32 {
        match self {
            CommandError::Input(ResultError::Write { .. }) | CommandError::Write { .. } => {
                exit::RUN_FAILED
            }
            CommandError::Input(_) => exit::BAD_INPUT,
        }
    }
}

pub fn report(args: &ReportArgs) -> i32 {
    finish(render_report(
        &args.result,
        args.out.as_deref(),
        args.junit.as_deref(),
    ))
}

pub fn compare(args: &CompareArgs) -> i32 {
    finish(render_comparison(&args.a, &args.b, args.out.as_deref()).map(|p| vec![p]))
}

pub fn merge(args: &MergeArgs) -> i32 {
    finish(merge_files(&args.shards, &args.out))
}

fn finish(outcome: Result<Vec<PathBuf>, CommandError>) -> i32 {
    match outcome {
        Ok(paths) => {
            for p in paths {
                println!("wrote {}", p.display());
            }
            exit::OK
        }
        Err(e) => {
            eprintln!("syncstorm: {e}");
            e.exit_code()
        }
    }
}

/// Renders a result's HTML (and optionally JUnit) report; returns the files written.
pub fn render_report(
    result: &Path,
    out: Option<&Path>,
    junit: Option<&Path>,
) -> Result<Vec<PathBuf>, CommandError> {
    let r = RunResult::load(result)?;
    let html_path = out.map_or_else(|| result.with_extension("html"), Path::to_owned);
    write(&html_path, report::render_html(&r))?;
    let mut written = vec![html_path];
    if let Some(path) = junit {
        write(path, report::junit::render(&r))?;
        written.push(path.to_owned());
    }
    Ok(written)
}

/// Writes the side-by-side report of two results; returns its path.
pub fn render_comparison(a: &Path, b: &Path, out: Option<&Path>) -> Result<PathBuf, CommandError> {
    let (ra, rb) = (RunResult::load(a)?, RunResult::load(b)?);
    let stem = |p: &Path| {
        p.file_stem()
            .map_or("run".into(), |s| s.to_string_lossy().into_owned())
    };
    let path = out.map_or_else(
        || a.with_file_name(format!("{}-vs-{}.html", stem(a), stem(b))),
        Path::to_owned,
    );
    let html = report::render_compare(&ra, &rb, (&stem(a), &stem(b)));
    write(&path, html)?;
    Ok(path)
}

/// Merges shard results into `out` (JSON) and renders its report beside it.
pub fn merge_files(shards: &[PathBuf], out: &Path) -> Result<Vec<PathBuf>, CommandError> {
    let loaded = shards
        .iter()
        .map(|p| RunResult::load(p))
        .collect::<Result<Vec<_>, _>>()?;
    let merged = merge_shards(&loaded)?;
    merged.write_to(out)?;
    let html = out.with_extension("html");
    write(&html, report::render_html(&merged))?;
    Ok(vec![out.to_owned(), html])
}

fn write(path: &Path, content: String) -> Result<(), CommandError> {
    let fail = |source| CommandError::Write {
        path: path.to_owned(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(fail)?;
    }
    std::fs::write(path, content).map_err(fail)
}
