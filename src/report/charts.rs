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
const CAP_COLOUR: RGBColor = RGBColor(200, 30, 30);

/// One line: a name for the legend and (seconds, value) points.
#[derive(Debug, Clone)]
pub struct Line {
    pub name: String,
    pub points: Vec<(f64, f64)>,
    /// Dashed lines mark the second run of a comparison.
    pub dashed: bool,
}

impl Line {
    pub fn new(name: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Line {
            name: name.into(),
            points,
            dashed: false,
        }
    }
}

/// A chart: lines over the run's seconds, optionally with a horizontal limit (a plan's cap).
#[derive(Debug, Clone, Default)]
pub struct Chart {
    pub title: String,
    pub y_label: String,
    pub lines: Vec<Line>,
    pub limit: Option<(f64, String)>,
}

const WIDTH: u32 = 560;
const HEIGHT: u32 = 250;

impl Chart {
    pub fn new(title: impl Into<String>, y_label: impl Into<String>) -> Self {
        Chart {
            title: title.into(),
            y_label: y_label.into(),
            ..Default::default()
        }
    }

    pub fn line(mut self, line: Line) -> Self {
        self.lines.push(line);
        self
    }

    pub fn limit(mut self, value: f64, label: impl Into<String>) -> Self {
        self.limit = Some((value, label.into()));
        self
    }

    pub fn has_data(&self) -> bool {
        self.lines.iter().any(|l| !l.points.is_empty())
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

    fn bounds(&self) -> (f64, f64, f64) {
        let points = self.lines.iter().flat_map(|l| l.points.iter());
        let (mut x_min, mut x_max, mut y_max) = (f64::MAX, f64::MIN, 0.0f64);
        for &(x, y) in points {
            x_min = x_min.min(x);
            x_max = x_max.max(x);
            y_max = y_max.max(y);
        }
        if let Some((cap, _)) = &self.limit {
            y_max = y_max.max(*cap);
        }
        if x_max <= x_min {
            x_max = x_min + 1.0;
        }
        let y_max = if y_max <= 0.0 { 1.0 } else { y_max * 1.08 };
        (x_min.min(0.0).max(x_min), x_max, y_max)
    }

    fn draw(&self, out: &mut String) -> Result<(), Box<dyn std::error::Error + '_>> {
        let (x_min, x_max, y_max) = self.bounds();
        let root = SVGBackend::with_string(out, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                &self.title,
                ("sans-serif", 15).into_font().color(&RGBColor(30, 30, 30)),
            )
            .margin(8)
            .x_label_area_size(32)
            .y_label_area_size(56)
            .build_cartesian_2d(x_min..x_max, 0.0..y_max)?;
        chart
            .configure_mesh()
            .light_line_style(RGBColor(238, 238, 238))
            .bold_line_style(RGBColor(225, 225, 225))
            .axis_style(RGBColor(160, 160, 160))
            .x_desc("seconds since start")
            .y_desc(&self.y_label)
            .x_labels(8)
            .y_labels(6)
            .y_label_formatter(&|v| short_number(*v))
            .x_label_formatter(&|v| format!("{v:.0}"))
            .label_style(("sans-serif", 11))
            .draw()?;
        for (i, line) in self.lines.iter().enumerate() {
            let colour = PALETTE[i % PALETTE.len()];
            let style = colour.stroke_width(2);
            let points = line.points.iter().copied();
            let drawn = if line.dashed {
                chart.draw_series(DashedLineSeries::new(points, 6, 4, style))?
            } else {
                chart.draw_series(LineSeries::new(points, style))?
            };
            drawn.label(line.name.as_str()).legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 16, y)], colour.stroke_width(2))
            });
        }
        if let Some((cap, label)) = &self.limit {
            let style = CAP_COLOUR.stroke_width(1);
            chart
                .draw_series(DashedLineSeries::new(
                    [(x_min, *cap), (x_max, *cap)],
                    8,
                    5,
                    style,
                ))?
                .label(label.as_str())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], style));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(200, 200, 200))
            .label_font(("sans-serif", 11))
            .draw()?;
        root.present()?;
        Ok(())
    }
}

/// 1234 → "1.2k", 0.25 → "0.25": axis labels that fit.
pub fn short_number(v: f64) -> String {
    let a = v.abs();
    if a >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if a >= 1e4 {
        format!("{:.0}k", v / 1e3)
    } else if a >= 1e3 {
        format!("{:.1}k", v / 1e3)
    } else if a >= 10.0 || a == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}
