//! The Universal Scalability Law as a second opinion beside the model: fitted (with the `usl`
//! crate) to what measured runs' server did each second — the REST pool's connections busy on
//! average (connection-seconds held per second, by Little's law: the concurrency N the
//! database saw) against requests served (connection holds completed: the throughput X) — it
//! says how the server's throughput grows with concurrent connections and where it stops,
//! from measurements alone, with no queueing model in between: what a bigger pool could buy.

use std::path::PathBuf;

use serde::Serialize;

use crate::report::charts::{Chart, Line};
use crate::result::RunResult;

/// The pool whose occupancy and completed holds are the measurements.
const POOL: &str = "rest";

/// One probe interval of a measured run: connections busy on average, requests served per second.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Sample {
    pub concurrency: u32,
    pub throughput: f64,
}

/// The law's coefficients, when the measurements pin them down.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Law {
    /// Contention (σ), coherency (κ) and throughput at concurrency 1 (λ, requests/s).
    pub sigma: f64,
    pub kappa: f64,
    pub lambda: f64,
    /// Concurrency at which throughput peaks (`None`: it only levels off).
    pub peak_concurrency: Option<u32>,
    /// The most requests per second the law allows.
    pub max_throughput: f64,
}

/// What the measured seconds say, with the law fitted to them where it fits.
#[derive(Debug, Clone, Serialize)]
pub struct UslFit {
    /// The measured runs the samples came from.
    pub runs: Vec<PathBuf>,
    pub samples: Vec<Sample>,
    /// Mean requests served per second at each level of connections busy with five or more
    /// seconds behind it: (connections busy, requests/s, seconds).
    pub levels: Vec<(u32, f64, usize)>,
    /// `None` when the unconstrained fit gave coefficients no server can have (σ or κ below
    /// zero): the samples do not pin the law down, and `words` says so.
    pub law: Option<Law>,
    /// One sentence for the report and the console.
    pub words: String,
}

/// (concurrency, throughput) for each interval between two of a run's probe samples that
/// both report the pool's holds; idle intervals (no connection busy, nothing served) are left
/// out, since they say nothing about scaling.
pub fn samples(r: &RunResult) -> Vec<Sample> {
    let seen: Vec<(f64, u64, f64)> = r
        .probes
        .samples
        .iter()
        .filter_map(|s| {
            let pool = s.pools.get(POOL)?;
            (!pool.holds.is_empty()).then(|| {
                let served = pool.holds.values().map(|h| h.count).sum::<u64>();
                let busy = pool.holds.values().map(|h| h.seconds).sum::<f64>();
                (s.t, served, busy)
            })
        })
        .collect();
    seen.windows(2)
        .filter_map(|w| {
            let ((t0, served0, busy0), (t1, served1, busy1)) = (w[0], w[1]);
            let seconds = t1 - t0;
            (seconds > 0.0 && served1 >= served0 && busy1 >= busy0).then(|| Sample {
                // Little's law: connection-seconds held per second is the mean number held.
                concurrency: ((busy1 - busy0) / seconds).round() as u32,
                throughput: (served1 - served0) as f64 / seconds,
            })
        })
        .filter(|s| s.concurrency > 0 && s.throughput > 0.0)
        .collect()
}

/// Fits the law to the runs' samples; an error sentence when they cannot carry a fit.
pub fn fit(runs: &[(PathBuf, RunResult)]) -> Result<UslFit, String> {
    let samples: Vec<Sample> = runs.iter().flat_map(|(_, r)| samples(r)).collect();
    let levels: std::collections::BTreeSet<u32> = samples.iter().map(|s| s.concurrency).collect();
    if samples.len() < usl::MIN_MEASUREMENTS || levels.len() < 3 {
        return Err(format!(
            "the measured runs give {} busy seconds at {} concurrency levels with the REST pool's holds; a USL fit needs at least {} seconds at 3 levels (runs before the stack reported holds carry none)",
            samples.len(),
            levels.len(),
            usl::MIN_MEASUREMENTS
        ));
    }
    let measurements: Vec<usl::Measurement> = samples
        .iter()
        .map(|s| usl::Measurement::concurrency_and_throughput(s.concurrency, s.throughput))
        .collect();
    // The crate panics when its least-squares solver fails; that is a fit that did not
    // converge on these samples, said as such, not a crash.
    let model = std::panic::catch_unwind(|| usl::Model::build(&measurements))
        .map_err(|_| "the USL fit did not converge on the measured samples".to_string())?;
    if ![model.sigma, model.kappa, model.lambda]
        .iter()
        .all(|v| v.is_finite())
    {
        return Err("the USL fit gave non-finite coefficients on the measured samples".into());
    }
    let levels = level_means(&samples);
    let measured = measured_words(&levels);
    let (law, words) = if model.sigma < 0.0 || model.kappa < 0.0 || model.lambda <= 0.0 {
        let words = format!(
            "The law does not fit the {} measured seconds (the best unconstrained fit has σ = {:.3}, κ = {:.2e}, λ = {:.0}: no server has a negative contention or coherency); more busy seconds at low and high concurrency would pin it down.{measured}",
            samples.len(),
            model.sigma,
            model.kappa,
            model.lambda
        );
        (None, words)
    } else {
        let law = law_of(&model);
        let words = format!(
            "Fitted to {} measured seconds: {}.{measured}",
            samples.len(),
            shape(&law)
        );
        (Some(law), words)
    };
    Ok(UslFit {
        runs: runs.iter().map(|(p, _)| p.clone()).collect(),
        samples,
        levels,
        law,
        words,
    })
}

fn law_of(model: &usl::Model) -> Law {
    // Throughput that can never reach this gain over one connection's (λ/σ at most, since
    // X(N) < λ/σ) is no scaling at all.
    const NO_GAIN: f64 = 1.1;
    let grows = model.sigma < 1.0 / NO_GAIN;
    let peak_concurrency = (grows && model.kappa > 1e-12).then(|| model.max_concurrency());
    let max_throughput = match peak_concurrency {
        Some(n) => model.throughput_at_concurrency(n),
        // σ near or past 1: X(N) never rises much above one connection's λ.
        None if !grows => model.lambda,
        // κ ≈ 0: X(N) rises toward λ/σ and never turns down.
        None if model.sigma > 0.0 => model.lambda / model.sigma,
        None => f64::INFINITY,
    };
    Law {
        sigma: model.sigma,
        kappa: model.kappa,
        lambda: model.lambda,
        peak_concurrency,
        max_throughput,
    }
}

fn shape(law: &Law) -> String {
    let max = law.max_throughput;
    match law.peak_concurrency {
        Some(n) => format!(
            "throughput peaks at {max:.0} requests/s with {n} connections busy and falls past it (contention σ = {:.3}, coherency κ = {:.2e})",
            law.sigma, law.kappa
        ),
        None if law.sigma >= 1.0 / 1.1 => format!(
            "throughput does not grow with connections (σ = {:.2}): one busy connection serves about as much as any number, {max:.0} requests/s, so the server, not the pool's size, is the limit",
            law.sigma
        ),
        None if max.is_finite() => format!(
            "throughput levels off toward {max:.0} requests/s and does not fall with more connections busy (contention σ = {:.3}, κ ≈ 0)",
            law.sigma
        ),
        None => {
            "throughput still grows linearly with connections: the runs never loaded the server"
                .into()
        }
    }
}

/// " Measured: 1417 requests/s with 1 connection busy, 2115 with 10." from the levels.
fn measured_words(levels: &[(u32, f64, usize)]) -> String {
    match levels {
        [] | [_] => String::new(),
        [(n0, x0, _), .., (n1, x1, _)] => format!(
            " Measured: {x0:.0} requests/s with {n0} connection{} busy, {x1:.0} with {n1}.",
            if *n0 == 1 { "" } else { "s" }
        ),
    }
}

/// Mean throughput per concurrency level with at least five seconds behind it:
/// (connections busy, mean requests/s, seconds).
fn level_means(samples: &[Sample]) -> Vec<(u32, f64, usize)> {
    let mut by_level: std::collections::BTreeMap<u32, Vec<f64>> = Default::default();
    for s in samples {
        by_level
            .entry(s.concurrency)
            .or_default()
            .push(s.throughput);
    }
    by_level
        .into_iter()
        .filter(|(_, xs)| xs.len() >= 5)
        .map(|(n, xs)| (n, xs.iter().sum::<f64>() / xs.len() as f64, xs.len()))
        .collect()
}

/// Reads the measured result files given with `--measured`, each one sentence on failure.
pub fn load(paths: &[PathBuf]) -> Result<Vec<(PathBuf, RunResult)>, String> {
    paths
        .iter()
        .map(|p| {
            let r = RunResult::load(p).map_err(|e| format!("--measured {}: {e}", p.display()))?;
            if r.target.kind == "model" {
                return Err(format!(
                    "--measured {}: a modelled result; the USL is fitted to measured runs only",
                    p.display()
                ));
            }
            Ok((p.clone(), r))
        })
        .collect()
}

/// The measured samples as dots, and the law's curve where it fits.
pub fn chart(f: &UslFit) -> Chart {
    let dots: Vec<(f64, f64)> = f
        .samples
        .iter()
        .map(|s| (f64::from(s.concurrency), s.throughput))
        .collect();
    let mut chart = Chart::new(
        "Requests served against connections busy (USL)",
        "requests/s",
    )
    .x_axis("REST pool connections busy (mean over the second)")
    .line(Line::new("measured seconds", dots).dots());
    if let Some(law) = &f.law {
        let top = f.samples.iter().map(|s| s.concurrency).max().unwrap_or(1);
        let model = usl::Model {
            sigma: law.sigma,
            kappa: law.kappa,
            lambda: law.lambda,
        };
        // Past the measured range too (to four times it, or the peak): where a bigger pool goes.
        let reach = law.peak_concurrency.unwrap_or(0).max(4 * top).min(10_000);
        let curve = (1..=reach)
            .map(|n| (f64::from(n), model.throughput_at_concurrency(n)))
            .collect();
        chart = chart.line(Line::new("USL fit", curve));
    }
    chart
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::result::{HoldTotals, PoolSample, ProbeSample};

    /// A run whose pool held `levels[i]` requests in second i and served what the law with
    /// these coefficients says.
    fn run_following(sigma: f64, kappa: f64, lambda: f64, levels: &[u32]) -> RunResult {
        let law = usl::Model {
            sigma,
            kappa,
            lambda,
        };
        let mut r = RunResult::default();
        let (mut served, mut busy) = (0.0, 0.0);
        for (i, &n) in std::iter::once(&0).chain(levels).enumerate() {
            if i > 0 {
                served += law.throughput_at_concurrency(n);
                busy += f64::from(n);
            }
            let mut s = ProbeSample {
                t: i as f64,
                ..ProbeSample::default()
            };
            let mut pool = PoolSample {
                size: 10,
                in_use: n.min(10),
                waiting: n.saturating_sub(10),
                ..PoolSample::default()
            };
            pool.holds.insert(
                "token_check".into(),
                HoldTotals {
                    count: served.round() as u64,
                    seconds: busy,
                },
            );
            s.pools.insert(POOL.into(), pool);
            r.probes.samples.push(s);
        }
        r
    }

    #[test]
    fn a_fit_recovers_the_law_the_samples_follow() {
        let levels: Vec<u32> = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512]
            .iter()
            .flat_map(|&n| [n; 5])
            .collect();
        let r = run_following(0.05, 0.0005, 900.0, &levels);
        let f = fit(&[(PathBuf::from("a.json"), r)]).unwrap();
        let law = f.law.expect("the samples follow the law");
        assert!((law.sigma - 0.05).abs() < 0.01, "σ {}", law.sigma);
        assert!((law.kappa - 0.0005).abs() < 0.0002, "κ {}", law.kappa);
        assert!((law.lambda - 900.0).abs() < 30.0, "λ {}", law.lambda);
        let peak = law.peak_concurrency.expect("κ > 0 has a peak");
        assert!((40..=48).contains(&peak), "peak at {peak}");
        assert!(f.words.contains("peaks at"), "{}", f.words);
        assert!(f.words.contains("Measured: "), "{}", f.words);
        assert_eq!(chart(&f).lines.len(), 2);
    }

    #[test]
    fn a_server_that_does_not_scale_with_connections_is_said_to() {
        let levels: Vec<u32> = (0..40).map(|i| 1 + i % 10).collect();
        let r = run_following(1.0, 0.0, 1500.0, &levels);
        let f = fit(&[(PathBuf::from("a.json"), r)]).unwrap();
        let law = f.law.expect("a flat law still fits");
        assert_eq!(law.peak_concurrency, None, "{f:?}");
        assert!(
            f.words.contains("does not grow with connections"),
            "{}",
            f.words
        );
        assert!(
            (law.max_throughput - 1500.0).abs() < 50.0,
            "{}",
            law.max_throughput
        );
    }

    #[test]
    fn coefficients_no_server_can_have_are_no_fit_and_the_measured_levels_still_speak() {
        // Throughput that falls as connections grow, then rises again: no USL curve has that.
        let levels: Vec<u32> = [1, 2, 3, 4, 5, 6].iter().flat_map(|&n| [n; 5]).collect();
        let mut r = run_following(0.0, 0.0, 1000.0, &levels);
        let served = [1000.0, 400.0, 300.0, 900.0, 3000.0, 9000.0];
        let mut total = 0.0;
        for (s, i) in r.probes.samples.iter_mut().skip(1).zip(0..) {
            total += served[i / 5];
            s.pools
                .get_mut(POOL)
                .unwrap()
                .holds
                .get_mut("token_check")
                .unwrap()
                .count = total as u64;
        }
        let f = fit(&[(PathBuf::from("a.json"), r)]).unwrap();
        assert!(f.law.is_none(), "{f:?}");
        assert!(f.words.starts_with("The law does not fit"), "{}", f.words);
        assert!(
            f.words
                .contains("Measured: 1000 requests/s with 1 connection busy, 9000 with 6."),
            "{}",
            f.words
        );
        assert_eq!(chart(&f).lines.len(), 1, "dots, no curve");
    }

    #[test]
    fn idle_seconds_are_left_out_and_too_few_busy_ones_are_said_so() {
        let r = run_following(0.1, 0.0, 500.0, &[0, 0, 4, 8, 0]);
        assert_eq!(samples(&r).len(), 2, "{:?}", samples(&r));
        let why = fit(&[(PathBuf::from("a.json"), r)]).unwrap_err();
        assert!(why.contains("needs at least 6 seconds"), "{why}");
    }

    #[test]
    fn a_run_without_the_pools_holds_gives_no_samples() {
        let mut r = run_following(0.1, 0.0, 500.0, &[4, 8, 16]);
        for s in &mut r.probes.samples {
            s.pools.get_mut(POOL).unwrap().holds.clear();
        }
        assert!(samples(&r).is_empty());
    }
}
