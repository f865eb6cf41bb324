//! Line charts drawn with plotters' SVG backend, returned as inline `<svg>` markup.

use plotters::prelude::*;

/// Colours that stay apart for the colour-blind (Okabe–Ito), in drawing order.
pub const PALETTE: [RGBColor; 7] = [
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(230, 159, 0),
    RGBColor(86, 180, 233),
    RGBColor(80, 80, 80),
];
/// Reference lines: red for the first (the limit the chart is about), then dark grey.
const LIMIT_COLOURS: [RGBColor; 2] = [RGBColor(200, 30, 30), RGBColor(90, 90, 90)];

/// One line: a name for the legend and (seconds, value) points.
#[derive(Debug, Clone)]
pub struct Line {
    pub name: String,
    pub points: Vec<(f64, f64)>,
    /// Dashed lines mark the second run of a comparison.
    pub dashed: bool,
    /// Each point drawn as a dot too: a few measured points among many modelled ones.
    pub markers: bool,
    /// Points joined by a line (not for a scatter of samples, whose order means nothing).
    pub joined: bool,
}

impl Line {
    pub fn new(name: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Line {
            name: name.into(),
            points,
            dashed: false,
            markers: false,
            joined: true,
        }
    }

    pub fn with_markers(mut self) -> Self {
        self.markers = true;
        self
    }

    /// Dots only: a scatter of samples.
    pub fn dots(mut self) -> Self {
        self.markers = true;
        self.joined = false;
        self
    }
}

/// A chart: lines over the run's seconds, optionally with a horizontal limit (a plan's cap).
#[derive(Debug, Clone, Default)]
pub struct Chart {
    pub title: String,
    pub y_label: String,
    pub lines: Vec<Line>,
    /// Horizontal reference lines (a plan's cap, `max_connections`, the pool size), labelled.
    pub limits: Vec<(f64, String)>,
    /// The x axis ends here at least (the run's length), so charts of one run line up.
    pub x_end: Option<f64>,
    /// What x is, when not the run's seconds (e.g. users, for a capacity curve).
    pub x_label: Option<String>,
}

const WIDTH: u32 = 480;
const HEIGHT: u32 = 230;

impl Chart {
    pub fn new(title: impl Into<String>, y_label: impl Into<String>) -> Self {
        Chart {
            title: title.into(),
            y_label: y_label.into(),
            ..Default::default()
        }
    }

    /// Names the x axis (default: seconds since the start).
    pub fn x_axis(mut self, label: impl Into<String>) -> Self {
        self.x_label = Some(label.into());
        self
    }

    pub fn line(mut self, line: Line) -> Self {
        self.lines.push(line);
        self
    }

    pub fn limit(mut self, value: f64, label: impl Into<String>) -> Self {
        self.limits.push((value, label.into()));
        self
    }

    pub fn has_data(&self) -> bool {
        self.lines
            .iter()
            .any(|l| l.points.iter().any(|p| !p.1.is_nan()))
    }

    /// The caption for seconds no line has a value in (NaN points, drawn as gaps):
    /// "no value from 75 s to 110 s", so a reader knows the break is real.
    pub fn gap_caption(&self) -> Option<String> {
        let latency_lines: Vec<&Line> = self
            .lines
            .iter()
            .filter(|l| l.points.iter().any(|p| p.1.is_nan()))
            .collect();
        let first = latency_lines.first()?;
        let spans: Vec<String> = crate::report::series::gaps(&first.points)
            .iter()
            .map(|(from, to)| format!("from {from:.0} s to {to:.0} s"))
            .collect();
        (!spans.is_empty()).then(|| {
            format!(
                "Nothing finished {}: the lines break there rather than join across it.",
                spans.join(", ")
            )
        })
    }

    /// Draws the chart; `None` when it has no data (the caller says so in words instead).
    pub fn to_svg(&self) -> Option<String> {
        if !self.has_data() {
            return None;
        }
        let mut svg = String::new();
        self.draw(&mut svg).ok()?;
        // Inline SVG in HTML needs no namespace; dropping it keeps the page free of URLs.
        Some(svg.replacen(r#" xmlns="http://www.w3.org/2000/svg""#, "", 1))
    }

    /// The top of the y axis as drawn (the highest value or limit, plus headroom).
    pub fn y_max(&self) -> f64 {
        self.bounds().2
    }

    fn bounds(&self) -> (f64, f64, f64) {
        let points = self
            .lines
            .iter()
            .flat_map(|l| l.points.iter())
            .filter(|p| !p.1.is_nan());
        let (mut x_min, mut x_max, mut y_max) = (f64::MAX, f64::MIN, 0.0f64);
        for &(x, y) in points {
            x_min = x_min.min(x);
            x_max = x_max.max(x);
            y_max = y_max.max(y);
        }
        for (cap, _) in &self.limits {
            y_max = y_max.max(*cap);
        }
        x_min = x_min.min(0.0);
        x_max = x_max.max(self.x_end.unwrap_or(0.0));
        if x_max <= x_min {
            x_max = x_min + 1.0;
        }
        let y_max = if y_max <= 0.0 { 1.0 } else { y_max * 1.08 };
        (x_min, x_max, y_max)
    }

    fn draw(&self, out: &mut String) -> Result<(), Box<dyn std::error::Error + '_>> {
        let (x_min, x_max, y_max) = self.bounds();
        let root = SVGBackend::with_string(out, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .margin(10)
            .x_label_area_size(32)
            .y_label_area_size(56)
            .build_cartesian_2d(x_min..x_max, 0.0..y_max)?;
        chart
            .configure_mesh()
            .light_line_style(RGBColor(240, 240, 240))
            .bold_line_style(RGBColor(226, 226, 226))
            .axis_style(RGBColor(160, 160, 160))
            .x_desc(self.x_label.as_deref().unwrap_or("seconds since start"))
            .y_desc(&self.y_label)
            .x_labels(8)
            .y_labels(6)
            .y_label_formatter(&|v| short_number(*v))
            .x_label_formatter(&|v| short_number(*v))
            .label_style(("sans-serif", 11))
            .draw()?;
        for (i, line) in self.lines.iter().enumerate() {
            let style = PALETTE[i % PALETTE.len()].stroke_width(2);
            // NaN marks a second without a value: each run of values is its own segment.
            for segment in line.points.split(|p| p.1.is_nan()) {
                let points = segment.iter().copied();
                if !line.joined {
                    // Drawn as dots below.
                } else if segment.len() == 1 {
                    chart.draw_series(std::iter::once(Circle::new(
                        segment[0],
                        2,
                        style.filled(),
                    )))?;
                } else if line.dashed {
                    chart.draw_series(DashedLineSeries::new(points, 6, 4, style))?;
                } else {
                    chart.draw_series(LineSeries::new(points, style))?;
                }
                if line.markers {
                    let radius = if line.joined { 5 } else { 2 };
                    let dots = segment
                        .iter()
                        .map(|p| Circle::new(*p, radius, style.filled()));
                    chart.draw_series(dots)?;
                }
            }
        }
        for (i, (cap, _)) in self.limits.iter().enumerate() {
            let style = LIMIT_COLOURS[i % LIMIT_COLOURS.len()].stroke_width(2);
            let ends = [(x_min, *cap), (x_max, *cap)];
            chart.draw_series(DashedLineSeries::new(ends, 8, 5, style))?;
        }
        root.present()?;
        Ok(())
    }

    /// The legend as HTML: (name, CSS colour, dashed) per line, then the limit if any.
    pub fn legend(&self) -> Vec<(String, String, bool)> {
        let css = |c: RGBColor| format!("rgb({},{},{})", c.0, c.1, c.2);
        let mut out: Vec<(String, String, bool)> = self
            .lines
            .iter()
            .enumerate()
            .map(|(i, l)| (l.name.clone(), css(PALETTE[i % PALETTE.len()]), l.dashed))
            .collect();
        for (i, (_, label)) in self.limits.iter().enumerate() {
            out.push((
                label.clone(),
                css(LIMIT_COLOURS[i % LIMIT_COLOURS.len()]),
                true,
            ));
        }
        out
    }
}

/// 1234 → "1.2k", 0.25 → "0.25", 8.0 → "8": axis labels that fit.
pub fn short_number(v: f64) -> String {
    let a = v.abs();
    let trimmed = |text: String| {
        if text.contains('.') {
            text.trim_end_matches('0').trim_end_matches('.').to_owned()
        } else {
            text
        }
    };
    if a >= 1e6 {
        trimmed(format!("{:.1}", v / 1e6)) + "M"
    } else if a >= 1e3 {
        trimmed(format!("{:.1}", v / 1e3)) + "k"
    } else if a >= 10.0 {
        format!("{v:.0}")
    } else {
        trimmed(format!("{v:.2}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_latency_gap_is_drawn_as_a_break_and_named_in_the_caption() {
        let mut points: Vec<(f64, f64)> = (0..10).map(|t| (t as f64, 20.0)).collect();
        let whole = Chart::new("Token check latency", "ms").line(Line::new("p99", points.clone()));
        for p in &mut points[3..7] {
            p.1 = f64::NAN;
        }
        let chart = Chart::new("Token check latency", "ms").line(Line::new("p99", points));
        assert_eq!(
            chart.gap_caption().as_deref(),
            Some(
                "Nothing finished from 3 s to 7 s: the lines break there rather than join across it."
            )
        );
        let svg = chart.to_svg().unwrap();
        assert!(!svg.contains("NaN"), "no NaN reaches the drawing");
        // Two segments: one more polyline than the same line without the gap.
        let whole_svg = whole.to_svg().unwrap();
        assert_eq!(
            svg.matches("<polyline").count(),
            whole_svg.matches("<polyline").count() + 1
        );
        let rates =
            Chart::new("per second", "n").line(Line::new("x", vec![(0.0, 1.0), (1.0, 0.0)]));
        assert_eq!(rates.gap_caption(), None);
    }

    #[test]
    fn axis_numbers_are_short() {
        let cases = [
            (0.0, "0"),
            (8.0, "8"),
            (0.25, "0.25"),
            (0.2, "0.2"),
            (450.0, "450"),
            (1500.0, "1.5k"),
            (12_000.0, "12k"),
            (2.5e6, "2.5M"),
        ];
        for (v, text) in cases {
            assert_eq!(short_number(v), text);
        }
    }

    #[test]
    fn a_chart_without_points_draws_nothing_and_one_with_points_draws_svg() {
        let empty = Chart::new("t", "ms").line(Line::new("p99", vec![]));
        assert!(empty.to_svg().is_none());
        let chart = Chart::new("t", "ms")
            .line(Line::new("p99", vec![(0.0, 1.0), (1.0, 2.0)]))
            .limit(5.0, "cap");
        let svg = chart.to_svg().unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("<polyline"));
        assert!(!svg.contains("http://"));
        assert_eq!(chart.legend().len(), 2);
    }
}
