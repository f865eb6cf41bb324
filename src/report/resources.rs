//! The "Resources" section: where the machine's CPU and memory went, by role, and which cores
//! the server and the generator had — so a reader can tell a Supabase limit from this machine's.

use std::collections::BTreeSet;
use std::fmt::Write;

use super::charts::{Chart, Line};
use super::html::{chart_grid, esc, section};
use crate::cpu_sets::CpuSets;
use crate::result::RunResult;

/// The cores sentence: who had which, and that a plan's compute size is not modelled.
pub(crate) fn cores_sentence(r: &RunResult) -> String {
    let compute = "The embedded stack does not model a plan's compute size: its figures are \
                   this machine's cores, not a Supabase instance's.";
    match (&r.machine.cpu_sets, r.target.kind.as_str()) {
        (Some(sets), _) => format!(
            "The database and the stack ran on {} of this machine's {} cores (core {}), the \
             harness workers on {} (core {}), so neither could take the other's CPU. {compute}",
            sets.server.len(),
            r.machine.cores,
            CpuSets::describe(&sets.server),
            sets.generator.len(),
            CpuSets::describe(&sets.generator),
        ),
        (None, "supabase") => "The target is a real Supabase: its compute is the project's; \
                               only the harness ran on this machine."
            .into(),
        (None, _) => format!(
            "The database, the stack and the harness shared all {} cores of this machine \
             (no separate CPU sets), so a busy generator could slow the server. {compute}",
            r.machine.cores
        ),
    }
}

pub fn section_html(r: &RunResult) -> String {
    let mut body = format!("<p>{}</p>", esc(&cores_sentence(r)));
    let samples = &r.resources.samples;
    if samples.is_empty() {
        body.push_str("<p class=\"note\">No resource samples were recorded.</p>");
        return section("resources", "Resources", &body);
    }
    let busy = samples.iter().filter(|s| s.machine_cpu_pct >= 95.0).count();
    let _ = write!(
        body,
        "<p class=\"note\">The machine's CPU was at least 95 % busy in {busy} of {} sampled seconds.</p>",
        samples.len()
    );
    let roles: BTreeSet<&String> = samples.iter().flat_map(|s| s.roles.keys()).collect();
    // Stacked: each line adds one role to the ones before, so the top line is the total.
    let mut cpu = Chart::new("CPU by role, stacked", "cores");
    let mut below: Vec<f64> = vec![0.0; samples.len()];
    for role in &roles {
        let points = samples
            .iter()
            .zip(below.iter_mut())
            .map(|(s, acc)| {
                *acc += s.roles.get(*role).map_or(0.0, |u| u.cpu_cores);
                (s.t, *acc)
            })
            .collect();
        cpu = cpu.line(Line::new(format!("+ {role}"), points));
    }
    cpu = cpu.limit(f64::from(r.machine.cores), "all cores");
    let mut memory = Chart::new("Memory by role (resident)", "MiB");
    for role in &roles {
        let points = samples
            .iter()
            .map(|s| {
                let rss = s.roles.get(*role).map_or(0, |u| u.rss_bytes);
                (s.t, rss as f64 / 1_048_576.0)
            })
            .collect();
        memory = memory.line(Line::new(role.as_str(), points));
    }
    let machine = Chart::new("The machine's CPU", "% of all cores")
        .line(Line::new(
            "busy",
            samples.iter().map(|s| (s.t, s.machine_cpu_pct)).collect(),
        ))
        .limit(95.0, "saturated");
    body.push_str(&chart_grid(&[cpu, machine, memory], r.duration_s));
    section("resources", "Resources", &body)
}
