//! Distributions of seeded rows per user. The crate has no RNG: callers draw `p` uniformly in
//! (0, 1) from their seeded generator and ask for `quantile(p)`, so the same seed gives the
//! same population everywhere (every shard and worker).

use serde::Serialize;

/// Rows of one table per user.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "dist", rename_all = "snake_case")]
pub enum RowDist {
    Fixed {
        n: u64,
    },
    /// Inclusive bounds, each count equally likely.
    Uniform {
        min: u64,
        max: u64,
    },
    /// `median · e^(σ·z)`, z standard normal, rounded and capped at `max`: a few heavy users.
    Lognormal {
        median: u64,
        sigma: f64,
        max: u64,
    },
}

impl RowDist {
    /// The count at probability `p` (clamped into (0, 1)).
    pub fn quantile(&self, p: f64) -> u64 {
        let p = p.clamp(1e-12, 1.0 - 1e-12);
        match *self {
            RowDist::Fixed { n } => n,
            RowDist::Uniform { min, max } => {
                let span = (max - min + 1) as f64;
                (min + (p * span) as u64).min(max)
            }
            RowDist::Lognormal { median, sigma, max } => {
                let x = median as f64 * (sigma * inverse_normal_cdf(p)).exp();
                (x.round() as u64).min(max)
            }
        }
    }

    /// The largest count the distribution can produce (for sizing).
    pub fn max(&self) -> u64 {
        match *self {
            RowDist::Fixed { n } => n,
            RowDist::Uniform { max, .. } | RowDist::Lognormal { max, .. } => max,
        }
    }
}

/// Acklam's rational approximation of the standard normal quantile (relative error < 1.2e-9).
fn inverse_normal_cdf(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969683028665376e1,
        2.209460984245205e2,
        -2.759285104469687e2,
        1.38357751867269e2,
        -3.066479806614716e1,
        2.506628277459239,
    ];
    const B: [f64; 5] = [
        -5.447609879822406e1,
        1.615858368580409e2,
        -1.556989798598866e2,
        6.680131188771972e1,
        -1.328068155288572e1,
    ];
    const C: [f64; 6] = [
        -7.784894002430293e-3,
        -3.223964580411365e-1,
        -2.400758277161838,
        -2.549732539343734,
        4.374664141464968,
        2.938163982698783,
    ];
    const D: [f64; 4] = [
        7.784695709041462e-3,
        3.224671290700398e-1,
        2.445134137142996,
        3.754408661907416,
    ];
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    const LOW: f64 = 0.02425;
    if p < LOW {
        tail((-2.0 * p.ln()).sqrt())
    } else if p > 1.0 - LOW {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_quantiles_match_tables() {
        for (p, z) in [
            (0.5, 0.0),
            (0.975, 1.959964),
            (0.01, -2.326348),
            (0.999, 3.090232),
        ] {
            assert!((inverse_normal_cdf(p) - z).abs() < 1e-5, "p={p}");
        }
    }

    #[test]
    fn lognormal_has_its_median_and_cap() {
        let d = RowDist::Lognormal {
            median: 200,
            sigma: 1.0,
            max: 5000,
        };
        assert_eq!(d.quantile(0.5), 200);
        assert_eq!(d.quantile(0.999_999), 5000);
        assert!(d.quantile(0.1) < 200);
    }

    #[test]
    fn uniform_covers_both_bounds() {
        let d = RowDist::Uniform { min: 3, max: 5 };
        assert_eq!(d.quantile(0.0), 3);
        assert_eq!(d.quantile(0.5), 4);
        assert_eq!(d.quantile(1.0), 5);
    }
}
