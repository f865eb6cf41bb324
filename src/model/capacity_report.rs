//! The capacity search's outputs: the console table and the HTML report (per-plan table, the
//! measured points, the curves against users, and the USL's second opinion).

use super::capacity::{CapacityReport, PlanCapacity, Point};
use super::confirm::Measured;
use super::usl_fit;
use crate::report::charts::{Chart, Line};
use crate::report::html::{chart_grid, esc, page};

/// What the search varied, as a column head: `users`, or the `--vary` path.
fn axis(report: &CapacityReport) -> &str {
    match report.varied.as_str() {
        "population.users" => "users",
        path => path,
    }
}

/// A searched value: whole numbers without a fraction.
fn show(value: f64) -> String {
    if value.fract() == 0.0 {
        format!("{value:.0}")
    } else {
        let text = format!("{value:.3}");
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// The knee: `≥ top` when the whole range held, `< bottom` when none of it did.
fn knee(p: &PlanCapacity) -> String {
    match (p.knee, p.at_least) {
        (Some(k), true) => format!("≥ {}", show(k)),
        (Some(k), false) => show(k),
        (None, _) => format!("< {}", show(p.points.first().map_or(0.0, |p| p.value))),
    }
}

pub(super) fn print(report: &CapacityReport) {
    let axis = axis(report);
    eprintln!(
        "\n{} — largest {axis} with {} ({})",
        report.scenario,
        report.slos.join(" and "),
        report.calibration
    );
    let w = axis.chars().count().max(12);
    eprintln!("  {:<12} {:>w$}  first limit above it", "plan", axis);
    for p in &report.plans {
        eprintln!(
            "  {:<12} {:>w$}  {}",
            p.plan,
            knee(p),
            p.first_limit.as_deref().unwrap_or("none within the range")
        );
        for m in &p.measured {
            eprintln!(
                "  {:<12} {:>w$}  measured: {}",
                "",
                show(m.point.value),
                measured_words(m)
            );
        }
    }
    match (&report.usl, &report.usl_missing) {
        (Some(fit), _) => eprintln!("USL (measured runs): {}", fit.words),
        (None, Some(why)) => eprintln!("USL: no fit: {why}."),
        (None, None) => {}
    }
}

/// A measured point in words, beside what the model said there.
fn measured_words(m: &Measured) -> String {
    let verdict = |holds: bool| if holds { "held" } else { "failed" };
    let model = match m.modelled_holds {
        Some(h) if h == m.point.holds => format!("as the model said ({})", verdict(h)),
        Some(h) => format!("the model said it {}", verdict(h)),
        None => "not modelled there".into(),
    };
    format!(
        "SLOs {} (token check p99 {:.0} ms, {:.1} % failed) — {model}",
        verdict(m.point.holds),
        m.point.token_check_p99_ms,
        m.point.token_check_failed * 100.0
    )
}

pub(super) fn render(report: &CapacityReport) -> String {
    let axis = axis(report);
    let searched = match axis {
        "users" => "number of users".to_string(),
        path => format!("value of <code>{}</code>", esc(path)),
    };
    let mut body = format!(
        "<h1>Capacity: {}</h1><p class=\"sub\">The largest {searched} at which {} held, per plan, found by bisection on the capacity model ({}). {}</p>",
        esc(&report.scenario),
        esc(&report.slos.join(" and ")),
        esc(&report.calibration),
        if report.plans.iter().any(|p| !p.measured.is_empty()) {
            " Measured points come from real runs (<code>--confirm</code>) at the knee and at half of it."
        } else {
            " Modelled, not measured: confirm a knee with <code>--confirm</code> (real runs at it and at half of it)."
        }
    );
    body.push_str(&format!("<section><h2>Per plan</h2><table><tr><th>plan</th><th class=\"num\">{}</th><th>first limit above it</th><th>SLOs broken there</th></tr>", esc(axis)));
    for p in &report.plans {
        let users = knee(p);
        let broken = p
            .points
            .iter()
            .find(|x| !x.holds)
            .map_or(String::new(), |x| x.failed_slos.join("; "));
        body.push_str(&format!(
            "<tr><td>{}</td><td class=\"num\">{}</td><td>{}</td><td>{}</td></tr>",
            esc(&p.plan),
            esc(&users),
            esc(p.first_limit.as_deref().unwrap_or("none within the range")),
            esc(&broken)
        ));
    }
    body.push_str("</table>");
    let measured: Vec<String> = report
        .plans
        .iter()
        .flat_map(|p| {
            p.measured.iter().map(|m| {
                format!(
                    "<li>{} at {} {}: {} (<code>{}</code>)</li>",
                    esc(&p.plan),
                    show(m.point.value),
                    esc(axis),
                    esc(&measured_words(m)),
                    esc(&m.result.display().to_string())
                )
            })
        })
        .collect();
    if !measured.is_empty() {
        body.push_str(&format!(
            "<h3>Measured (real runs)</h3><ul>{}</ul>",
            measured.concat()
        ));
    }
    let knees: Vec<_> = report.plans.iter().map(|p| (p.knee, p.at_least)).collect();
    if report.plans.len() > 1 && knees.windows(2).all(|w| w[0] == w[1]) {
        body.push_str("<p class=\"note\">Every plan gives the same answer: the limit reached first is one these presets share (PostgREST's pool of 10 with its 10 s timeout in front of the server), and the model's server is the calibration's, not a plan's compute size. Past the knee the curves can part where the plans' own limits differ (GoTrue's pool is a quarter of max_connections).</p>");
    }
    body.push_str("</section>");
    let curve = |title: &str, unit: &str, f: &dyn Fn(&Point) -> f64| {
        let mut chart = Chart::new(format!("{title} against {axis}"), unit).x_axis(axis);
        for p in &report.plans {
            let points = p.points.iter().map(|x| (x.value, f(x))).collect();
            chart = chart.line(Line::new(p.plan.clone(), points));
            if !p.measured.is_empty() {
                let points = p
                    .measured
                    .iter()
                    .map(|m| (m.point.value, f(&m.point)))
                    .collect();
                let line = Line::new(format!("{}, measured", p.plan), points).with_markers();
                chart = chart.line(line);
            }
        }
        chart
    };
    let charts = [
        curve("Token check p99", "ms", &|p| p.token_check_p99_ms),
        curve("Failed token checks", "%", &|p| {
            p.token_check_failed * 100.0
        }),
        curve("Deepest REST pool queue", "requests", &|p| {
            f64::from(p.rest_queue_peak)
        }),
    ];
    body.push_str("<section><h2>Curves</h2><p class=\"sub\">Every modelled point of the search, joined by straight lines: between points nothing was modelled. Measured points (with <code>--confirm</code>) are their own line.</p>");
    body.push_str(&chart_grid(&charts, 0.0));
    body.push_str("</section>");
    body.push_str(&usl_section(report));
    page(
        &format!("syncstorm · capacity · {}", report.scenario),
        &body,
    )
}

/// The USL's second opinion, or why there is none.
fn usl_section(report: &CapacityReport) -> String {
    let head = "<section><h2>A second opinion: the Universal Scalability Law</h2>";
    if let Some(why) = &report.usl_missing {
        return format!(
            "{head}<p class=\"note\">No fit: {}.</p></section>",
            esc(why)
        );
    }
    let Some(fit) = &report.usl else {
        return format!(
            "{head}<p class=\"note\">No measured runs were given: pass <code>--measured RESULT.json</code> (or <code>--confirm</code>) to fit the law to what the real server served, independently of the model.</p></section>"
        );
    };
    let runs: Vec<String> = fit
        .runs
        .iter()
        .map(|p| format!("<li><code>{}</code></li>", esc(&p.display().to_string())))
        .collect();
    let curve = match &fit.law {
        Some(law) => format!(
            " The curve is the law fitted to them (σ = {:.4}, κ = {:.3e}, λ = {:.1} requests/s), drawn past the measured range, where a bigger pool would take the server.",
            law.sigma, law.kappa, law.lambda
        ),
        None => " No curve: the law did not fit them.".into(),
    };
    format!(
        "{head}<p>{}</p><p class=\"note\">Each dot is one second of a measured run: the REST pool's connections busy on average (connection-seconds held per second) and the requests it served.{} The law knows nothing of the model: where the two agree on where throughput stops growing, trust both more. These are the embedded stack's figures on the runs' machine, not a plan's compute.</p>{}<ul>{}</ul></section>",
        esc(&fit.words),
        esc(&curve),
        chart_grid(&[usl_fit::chart(fit)], 0.0),
        runs.concat()
    )
}
