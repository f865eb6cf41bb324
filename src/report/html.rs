//! HTML building blocks: escaping, the page shell with its inline stylesheet, tables and
//! number formatting. Every piece of text from a result goes through [`esc`].

use std::fmt::Write;

/// Escapes text for HTML element content and attribute values.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

// The figures' words are shared with the result's threshold lines, so they live apart.
pub use crate::figures::{count, ms, pct, rate};

/// A table: header cells and rows of already-escaped HTML cells.
pub fn table(class: &str, head: &[&str], rows: &[Vec<String>]) -> String {
    // Wide tables scroll inside their box on a phone instead of widening the page.
    let mut out = format!("<div class=\"scroll\"><table class=\"{class}\"><thead><tr>");
    for h in head {
        let _ = write!(out, "<th>{}</th>", esc(h));
    }
    out.push_str("</tr></thead><tbody>");
    for row in rows {
        out.push_str("<tr>");
        for cell in row {
            let _ = write!(out, "<td>{cell}</td>");
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table></div>");
    out
}

/// A section with a heading and already-built HTML content.
pub fn section(id: &str, title: &str, body: &str) -> String {
    format!(
        "<section id=\"{}\"><h2>{}</h2>{body}</section>",
        esc(id),
        esc(title)
    )
}

/// Charts in a two-column grid, each with an HTML title and legend; a chart with no data
/// says so.
pub fn chart_grid(charts: &[super::charts::Chart], run_seconds: f64) -> String {
    let mut out = String::from("<div class=\"charts\">");
    for chart in charts {
        let mut chart = chart.clone();
        chart.x_end = Some(chart.x_end.unwrap_or(0.0).max(run_seconds));
        let _ = write!(
            out,
            "<figure><figcaption>{}</figcaption>",
            esc(&chart.title)
        );
        match chart.to_svg() {
            Some(svg) => {
                out.push_str("<div class=\"legend\">");
                for (name, colour, dashed) in chart.legend() {
                    let class = if dashed { "swatch dashed" } else { "swatch" };
                    let _ = write!(
                        out,
                        "<span><i class=\"{class}\" style=\"border-color:{colour}\"></i>{}</span>",
                        esc(&name)
                    );
                }
                let _ = write!(out, "</div>{svg}");
                if let Some(caption) = chart.gap_caption() {
                    let _ = write!(out, "<p class=\"note gap\">{}</p>", esc(&caption));
                }
                out.push_str("</figure>");
            }
            None => out.push_str("<p class=\"note\">No data recorded for this chart.</p></figure>"),
        }
    }
    out.push_str("</div>");
    out
}

/// The whole page around `body`.
pub fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{}</title><style>{STYLE}</style></head><body><main>{body}</main></body></html>\n",
        esc(title)
    )
}

const STYLE: &str = r#"
:root{--ink:#1d2430;--muted:#5b6575;--line:#e3e7ee;--bg:#f6f7f9;--ok:#0a7d4f;--okbg:#e6f5ee;
--bad:#b3261e;--badbg:#fdecea;--warn:#8a5a00;--warnbg:#fff4de;--na:#5b6575;--nabg:#eef0f3}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--ink);font:14px/1.5 -apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
main{max-width:1180px;margin:0 auto;padding:24px 28px 60px}
h1{font-size:24px;margin:0 0 4px}
h2{font-size:18px;margin:0 0 12px;padding-bottom:6px;border-bottom:1px solid var(--line)}
h3{font-size:15px;margin:16px 0 8px}
section{background:#fff;border:1px solid var(--line);border-radius:8px;padding:18px 20px;margin:18px 0}
.sub{color:var(--muted);margin:0 0 14px}
.banner{border-radius:8px;padding:14px 18px;margin:14px 0;font-size:16px;font-weight:600}
.banner small{display:block;font-weight:400;font-size:13px;margin-top:2px}
.banner.pass{background:var(--okbg);color:var(--ok);border:1px solid #b6e2cd}
.banner.fail{background:var(--badbg);color:var(--bad);border:1px solid #f3c3bf}
.banner.warn{background:var(--warnbg);color:var(--warn);border:1px solid #f0d9a8}
.figures{display:grid;grid-template-columns:repeat(auto-fill,minmax(160px,1fr));gap:10px;margin:12px 0}
.figure{border:1px solid var(--line);border-radius:6px;padding:10px 12px;background:#fbfcfd}
.figure b{display:block;font-size:20px}
.figure span{color:var(--muted);font-size:12px}
table{border-collapse:collapse;width:100%;margin:8px 0 4px;font-variant-numeric:tabular-nums}
th,td{text-align:left;padding:6px 10px;border-bottom:1px solid var(--line);vertical-align:top}
th{font-size:12px;text-transform:uppercase;letter-spacing:.03em;color:var(--muted);background:#fafbfc}
td.num,th.num{text-align:right}
table.nums td:not(:first-child),table.nums th:not(:first-child){text-align:right}
.badge{display:inline-block;border-radius:10px;padding:1px 9px;font-size:12px;font-weight:600;white-space:nowrap}
.badge.pass,.badge.not-observed{background:var(--okbg);color:var(--ok)}
.badge.fail,.badge.confirmed{background:var(--badbg);color:var(--bad)}
.badge.strained{background:var(--warnbg);color:var(--warn)}
.badge.not-exercised{background:var(--nabg);color:var(--na)}
.badge.inconclusive{background:#ece6f7;color:#5a3d8a}
.risk{border-left:4px solid var(--line)}
.risk.confirmed{border-left-color:var(--bad)}
.risk.strained{border-left-color:#e0a100}
.risk.not-observed{border-left-color:var(--ok)}
.risk.inconclusive{border-left-color:#7b5cb0}
.verdict{font-size:15px;margin:0 0 10px}
.evidence{margin:0 0 8px;padding-left:18px}
.charts{display:grid;grid-template-columns:repeat(2,minmax(0,1fr));gap:14px;margin-top:12px}
@media (max-width:900px){.charts{grid-template-columns:1fr}}
figure{margin:0;border:1px solid var(--line);border-radius:6px;padding:10px 10px 4px;background:#fff;overflow:hidden}
figcaption{font-weight:600;font-size:13px;margin:0 0 4px 4px}
figure svg{width:100%;height:auto;display:block}
figure .note{margin:30px 4px}
.legend{display:flex;flex-wrap:wrap;gap:4px 14px;font-size:12px;color:var(--muted);margin:0 0 2px 4px}
.legend span{display:inline-flex;align-items:center;gap:5px}
.swatch{display:inline-block;width:16px;height:0;border-top:3px solid}
.swatch.dashed{border-top-style:dashed}
table.risks td:first-child{white-space:nowrap}
.note{color:var(--muted);font-size:13px}
.warnbox{background:var(--warnbg);color:var(--warn);border-radius:6px;padding:10px 14px;margin:8px 0}
pre{background:#f3f5f8;border:1px solid var(--line);border-radius:6px;padding:12px;overflow:auto;font-size:12px;max-height:520px}
nav{font-size:13px;margin:6px 0 0}
nav a{color:#0b5cad;text-decoration:none;margin-right:14px;white-space:nowrap;display:inline-block}
.scroll{overflow-x:auto}
ul.next{margin:4px 0 6px;padding-left:18px}
ul.next code{white-space:normal;overflow-wrap:anywhere}
.delta-worse{color:var(--bad)}
.delta-better{color:var(--ok)}
footer{color:var(--muted);font-size:12px;text-align:center;margin-top:24px}
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            esc("<script>\"x\"&'"),
            "&lt;script&gt;&quot;x&quot;&amp;&#39;"
        );
    }

    #[test]
    fn formats_numbers_for_people() {
        assert_eq!(count(0), "0");
        assert_eq!(count(1_234_567), "1,234,567");
        assert_eq!(ms(0.421), "0.42 ms");
        assert_eq!(ms(38.0), "38.0 ms");
        assert_eq!(ms(12_400.0), "12.4 s");
        assert_eq!(pct(0.0612), "6.1 %");
        assert_eq!(rate(38_000.0), "38k");
    }
}
