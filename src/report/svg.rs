//! The report's charts, drawn as inline SVG: stacked horizontal bars (one row per label) and stacked
//! bars over time. Light colours on white, every bar labelled with its value, so that a chart reads
//! the same on screen, printed in colour or in grey. Every text is escaped (labels come from the logs).

use std::fmt::Write as _;

use super::markup::esc;

/// Series colours, distinct in grey too (dark, mid, light alternate).
pub const PALETTE: [&str; 6] = ["#2b6cb0", "#ed8936", "#9aa5b1", "#c53030", "#38a169", "#6b46c1"];

const WIDTH: f64 = 960.0;

/// A scale for counts up to `v`: (top, step), with step 1, 2 or 5 × 10^k (at least 1) and about
/// four steps up to top.
fn scale_for(v: f64) -> (f64, f64) {
    let raw = (v / 4.0).max(1.0);
    let p = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0].iter().map(|m| m * p).find(|s| *s >= raw).unwrap_or(10.0 * p);
    let top = (v / step).ceil().max(1.0) * step;
    (top, step)
}

fn fmt_num(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{}", v as i64)
    } else {
        format!("{v:.1}")
    }
}

/// At most `n` characters, cut in the middle (names differ at both ends: prefixes and accounts).
fn truncate(s: &str, n: usize) -> String {
    let count = s.chars().count();
    if count <= n {
        return s.to_string();
    }
    let head = (n - 1) * 3 / 5;
    let tail = n - 1 - head;
    let start: String = s.chars().take(head).collect();
    let end: String = s.chars().skip(count - tail).collect();
    format!("{start}…{end}")
}

fn legend(svg: &mut String, series: &[&str], x0: f64, y: f64) {
    if series.len() < 2 {
        return;
    }
    let mut x = x0;
    for (i, name) in series.iter().enumerate() {
        let _ = write!(
            svg,
            r#"<rect x="{x:.1}" y="{:.1}" width="12" height="12" fill="{}"/><text x="{:.1}" y="{:.1}" class="lg">{}</text>"#,
            y - 10.0,
            PALETTE[i % PALETTE.len()],
            x + 16.0,
            y,
            esc(name)
        );
        x += 28.0 + 7.0 * name.chars().count() as f64;
    }
}

fn open(svg: &mut String, height: f64, title: &str) {
    let _ = write!(
        svg,
        r#"<svg class="chart" viewBox="0 0 {WIDTH} {height:.0}" width="{WIDTH}" height="{height:.0}" role="img" aria-label="{t}"><title>{t}</title><text x="0" y="16" class="ct">{t}</text>"#,
        t = esc(title)
    );
}

/// A chart with nothing to show: the title and a message.
pub fn empty(title: &str, message: &str) -> String {
    let mut svg = String::new();
    open(&mut svg, 60.0, title);
    let _ = write!(
        svg,
        r##"<rect x="0" y="26" width="{WIDTH}" height="30" fill="#f4f6f8"/><text x="12" y="46" class="lg">{}</text></svg>"##,
        esc(message)
    );
    svg
}

/// Stacked horizontal bars: one row per `(label, values per series)`, each labelled with its total.
pub fn hbars(title: &str, rows: &[(String, Vec<f64>)], series: &[&str]) -> String {
    hbars_labelled(title, rows, series, None)
}

/// `hbars` with the text at each bar's end given (else the total).
pub fn hbars_labelled(title: &str, rows: &[(String, Vec<f64>)], series: &[&str], ends: Option<&[String]>) -> String {
    if rows.is_empty() {
        return empty(title, "nothing to show");
    }
    let label_w = 330.0;
    let (x0, x1) = (label_w + 8.0, WIDTH - 100.0);
    let top = if series.len() > 1 { 48.0 } else { 30.0 };
    let row_h = 20.0;
    let height = top + row_h * rows.len() as f64 + 24.0;
    let (max, step) = scale_for(rows.iter().map(|r| r.1.iter().sum::<f64>()).fold(0.0, f64::max));
    let scale = |v: f64| (x1 - x0) * v / max;
    let mut svg = String::new();
    open(&mut svg, height, title);
    legend(&mut svg, series, x0, 38.0);
    // Grid and axis ticks.
    let bottom = top + row_h * rows.len() as f64;
    for i in 0..=(max / step).round() as u32 {
        let v = step * f64::from(i);
        let x = x0 + scale(v);
        let _ = write!(
            svg,
            r##"<line x1="{x:.1}" y1="{top:.1}" x2="{x:.1}" y2="{bottom:.1}" stroke="#e2e8f0"/><text x="{x:.1}" y="{:.1}" class="tk" text-anchor="middle">{}</text>"##,
            bottom + 14.0,
            fmt_num(v)
        );
    }
    for (i, (label, values)) in rows.iter().enumerate() {
        let y = top + row_h * i as f64;
        let _ = write!(
            svg,
            r#"<text x="{label_w:.1}" y="{:.1}" class="lb" text-anchor="end"><title>{}</title>{}</text>"#,
            y + 14.0,
            esc(label),
            esc(&truncate(label, 54))
        );
        let mut x = x0;
        for (j, v) in values.iter().enumerate() {
            let w = scale(*v);
            if w > 0.0 {
                let _ = write!(
                    svg,
                    r#"<rect x="{x:.1}" y="{:.1}" width="{:.1}" height="14" fill="{}"><title>{}: {}</title></rect>"#,
                    y + 3.0,
                    w.max(1.0),
                    PALETTE[j % PALETTE.len()],
                    esc(series.get(j).copied().unwrap_or("")),
                    fmt_num(*v)
                );
            }
            x += w;
        }
        let total: f64 = values.iter().sum();
        let end = ends.and_then(|e| e.get(i)).cloned().unwrap_or_else(|| fmt_num(total));
        let _ = write!(svg, r#"<text x="{:.1}" y="{:.1}" class="vl">{}</text>"#, x + 4.0, y + 14.0, esc(&end));
    }
    svg.push_str("</svg>");
    svg
}

/// A bucket label shortened for the x axis.
fn short(label: &str) -> String {
    // 2023-07-10T12:00Z → 07-10 12h; days and months stay as they are.
    match label.split_once('T') {
        Some((d, t)) => format!("{} {}h", d.get(5..).unwrap_or(d), t.get(..2).unwrap_or(t)),
        None => label.to_string(),
    }
}

/// Stacked bars over time: one bar per `(bucket label, values per series)`, every bucket present.
pub fn timebars(title: &str, rows: &[(String, Vec<f64>)], series: &[&str]) -> String {
    let total: f64 = rows.iter().flat_map(|r| r.1.iter()).sum();
    if rows.is_empty() || total == 0.0 {
        return empty(title, "no events in the window");
    }
    let (left, right, top, plot_h) = (56.0, WIDTH - 10.0, if series.len() > 1 { 48.0 } else { 30.0 }, 170.0);
    let bottom = top + plot_h;
    let height = bottom + 34.0;
    let (max, step) = scale_for(rows.iter().map(|r| r.1.iter().sum::<f64>()).fold(0.0, f64::max));
    let slot = (right - left) / rows.len() as f64;
    let bar_w = if slot > 4.0 { slot * 0.8 } else { slot };
    let mut svg = String::new();
    open(&mut svg, height, title);
    legend(&mut svg, series, left, 38.0);
    for i in 0..=(max / step).round() as u32 {
        let v = step * f64::from(i);
        let y = bottom - plot_h * v / max;
        let _ = write!(
            svg,
            r##"<line x1="{left:.1}" y1="{y:.1}" x2="{right:.1}" y2="{y:.1}" stroke="#e2e8f0"/><text x="{:.1}" y="{:.1}" class="tk" text-anchor="end">{}</text>"##,
            left - 6.0,
            y + 4.0,
            fmt_num(v)
        );
    }
    // Label every k-th bucket so that labels are ~90 px apart.
    let every = ((90.0 / slot).ceil() as usize).max(1);
    for (i, (label, values)) in rows.iter().enumerate() {
        let x = left + slot * i as f64 + (slot - bar_w) / 2.0;
        let mut y = bottom;
        for (j, v) in values.iter().enumerate() {
            let h = plot_h * v / max;
            if h > 0.0 {
                y -= h;
                let _ = write!(
                    svg,
                    r#"<rect x="{x:.2}" y="{y:.2}" width="{bar_w:.2}" height="{:.2}" fill="{}"><title>{}: {} {}</title></rect>"#,
                    h.max(0.8),
                    PALETTE[j % PALETTE.len()],
                    esc(label),
                    fmt_num(*v),
                    esc(series.get(j).copied().unwrap_or(""))
                );
            }
        }
        if i % every == 0 {
            let _ = write!(
                svg,
                r##"<line x1="{cx:.1}" y1="{bottom:.1}" x2="{cx:.1}" y2="{:.1}" stroke="#718096"/><text x="{cx:.1}" y="{:.1}" class="tk" text-anchor="middle">{}</text>"##,
                bottom + 4.0,
                bottom + 18.0,
                esc(&short(label)),
                cx = x + bar_w / 2.0
            );
        }
    }
    let _ = write!(
        svg,
        r##"<line x1="{left:.1}" y1="{bottom:.1}" x2="{right:.1}" y2="{bottom:.1}" stroke="#718096"/></svg>"##
    );
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scales_have_round_steps() {
        assert_eq!(scale_for(0.0), (1.0, 1.0));
        assert_eq!(scale_for(4.0), (4.0, 1.0));
        assert_eq!(scale_for(7.0), (8.0, 2.0));
        assert_eq!(scale_for(2641.0), (3000.0, 1000.0));
        assert_eq!(scale_for(100.0), (100.0, 50.0));
        assert_eq!(scale_for(240.0), (300.0, 100.0));
    }

    #[test]
    fn labels_are_escaped() {
        let svg = hbars("t<", &[("<script>x</script>".into(), vec![1.0])], &["a"]);
        assert!(!svg.contains("<script>"));
        assert!(svg.contains("&lt;script&gt;"));
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
    }

    #[test]
    fn long_labels_are_cut_in_the_middle() {
        assert_eq!(truncate("abcdefghij", 10), "abcdefghij");
        assert_eq!(truncate("abcdefghijk", 6), "abc…jk");
    }
}
