//! A few lines that say what a plan will do, for the console before a run starts.

use crate::duration::format_duration;
use crate::plan::{Load, RunPlan, TargetKind};
use std::fmt::Write;

impl RunPlan {
    /// E.g. `quickstart: 300 users × 3 devices on embedded (pro), 1m of load` and one line per
    /// phase, fault and threshold.
    pub fn outline(&self) -> String {
        let mut out = String::new();
        let target = match &self.target.kind {
            TargetKind::Embedded => "embedded".to_string(),
            TargetKind::Supabase { url, .. } => url.clone(),
        };
        let _ = writeln!(
            out,
            "{}: {} users × {} devices on {target} ({}), {} of load",
            self.name,
            self.population.users,
            self.population.devices_per_user,
            self.target.plan.name,
            format_duration(self.load_duration())
        );
        for p in &self.phases {
            let _ = writeln!(
                out,
                "  phase {} ({}): {}",
                p.name,
                format_duration(p.duration),
                load_text(&p.load)
            );
        }
        if let Some(b) = &self.behaviour.bulk_import {
            let _ = writeln!(
                out,
                "  bulk import: {:.0}% of users, {} {} each at {}",
                b.fraction * 100.0,
                b.rows,
                b.table,
                format_duration(b.at)
            );
        }
        for o in &self.faults.outages {
            let _ = writeln!(
                out,
                "  outage: {:.0}% of devices offline from {} for {}",
                o.fraction * 100.0,
                format_duration(o.start),
                format_duration(o.duration)
            );
        }
        if let Some(s) = &self.faults.clock_skew {
            let _ = writeln!(
                out,
                "  clock skew: {:.0}% of devices, up to ±{}",
                s.fraction * 100.0,
                format_duration(s.max)
            );
        }
        for t in &self.thresholds {
            let _ = writeln!(out, "  threshold: {}", t.expression);
        }
        out
    }
}

fn load_text(load: &Load) -> String {
    match *load {
        Load::Open {
            from_rate, to_rate, ..
        } if from_rate == to_rate => format!("{from_rate} app opens/s"),
        Load::Open {
            from_rate, to_rate, ..
        } => format!("{from_rate} → {to_rate} app opens/s"),
        Load::Closed { from, to, ramp } if from == to || ramp.is_zero() => format!("{to} devices"),
        Load::Closed { from, to, ramp } => {
            format!("{from} → {to} devices over {}", format_duration(ramp))
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn outline_names_every_part_of_the_quickstart() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../scenarios/quickstart.toml");
        let text = crate::load(&path).unwrap().outline();
        assert!(
            text.starts_with("quickstart: 300 users × 3 devices on embedded (pro), 1m of load\n"),
            "{text}"
        );
        for part in [
            "0 → 540 devices over 15s",
            "10 → 30 app opens/s",
            "1% of users, 2000 transactions each at 20s",
            "20% of devices offline from 40s for 8s",
            "up to ±30s",
            "threshold: oracle.lost_updates == 0",
        ] {
            assert!(text.contains(part), "{part} in {text}");
        }
    }
}
