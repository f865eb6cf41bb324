//! Result → one self-contained HTML file (inline CSS and SVG, no network), the console
//! summary, and the side-by-side comparison of two runs.

#[cfg(test)]
mod axes_tests;
pub mod charts;
mod compare;
pub mod console;
mod generator;
pub mod html;
pub mod junit;
mod next_steps;
mod resources;
pub mod risks;
mod sections;
mod series;
mod server;
mod shards;
mod summary;

use std::path::Path;

use crate::result::RunResult;

pub use compare::render_compare;
pub use risks::{Finding, Verdict, assess};

/// Renders the HTML report of one run.
pub fn render_html(r: &RunResult) -> String {
    let findings = risks::assess(r);
    let mut body = summary::header(r);
    body.push_str(&summary::summary(r, &findings));
    for f in &findings {
        body.push_str(&sections::risk(f, r.duration_s));
    }
    body.push_str(&sections::latency(r));
    body.push_str(&sections::throughput(r));
    body.push_str(&server::render(r));
    body.push_str(&sections::oracle(r));
    body.push_str(&resources::section_html(r));
    body.push_str(&sections::generator(r));
    body.push_str(&sections::scenario(r));
    body.push_str(&summary::footer(r));
    html::page(&format!("syncstorm · {}", r.scenario.name), &body)
}

/// Writes the report of `r` to `path`.
pub fn write_html(r: &RunResult, path: &Path) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, render_html(r))
}
