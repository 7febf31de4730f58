//! Small SVG line plots for `scale` and `expiry`: one panel per measured curve, no dependencies.

use std::fmt::Write;

pub struct Panel {
    pub title: String,
    pub x_label: String,
    pub points: Vec<(f64, f64)>,
    /// A logarithmic x axis (lease counts spanning decades).
    pub log_x: bool,
}

const W: f64 = 320.0;
const H: f64 = 210.0;
const COLUMNS: usize = 3;

/// The panels in a grid, as one SVG document.
pub fn svg(title: &str, panels: &[Panel]) -> String {
    let rows = panels.len().div_ceil(COLUMNS).max(1);
    let (width, height) = (W * COLUMNS as f64, H * rows as f64 + 30.0);
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11"><rect width="100%" height="100%" fill="white"/><text x="10" y="20" font-size="14">{}</text>"#,
        escape(title)
    );
    for (i, p) in panels.iter().enumerate() {
        let (ox, oy) = ((i % COLUMNS) as f64 * W, 30.0 + (i / COLUMNS) as f64 * H);
        panel(&mut out, p, ox, oy);
    }
    out.push_str("</svg>\n");
    out
}

fn panel(out: &mut String, p: &Panel, ox: f64, oy: f64) {
    let (left, right, top, bottom) = (ox + 55.0, ox + W - 15.0, oy + 22.0, oy + H - 35.0);
    let _ = write!(
        out,
        r#"<text x="{}" y="{}" font-size="12">{}</text><line x1="{left}" y1="{bottom}" x2="{right}" y2="{bottom}" stroke="black"/><line x1="{left}" y1="{top}" x2="{left}" y2="{bottom}" stroke="black"/><text x="{}" y="{}" text-anchor="middle">{}</text>"#,
        ox + 10.0,
        oy + 14.0,
        escape(&p.title),
        (left + right) / 2.0,
        oy + H - 8.0,
        escape(&p.x_label)
    );
    let fx = |x: f64| if p.log_x { x.max(1e-9).log10() } else { x };
    let pts: Vec<(f64, f64)> = p
        .points
        .iter()
        .filter(|(x, y)| x.is_finite() && y.is_finite())
        .copied()
        .collect();
    if pts.is_empty() {
        return;
    }
    let (mut x0, mut x1) = pts
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), &(x, _)| (a.min(fx(x)), b.max(fx(x))));
    let y1 = pts.iter().fold(0f64, |m, &(_, y)| m.max(y)) * 1.1;
    let y1 = if y1 > 0.0 { y1 } else { 1.0 };
    if x1 <= x0 {
        x0 -= 1.0;
        x1 += 1.0;
    }
    let sx = |x: f64| left + (fx(x) - x0) / (x1 - x0) * (right - left);
    let sy = |y: f64| bottom - y / y1 * (bottom - top);
    for k in 0..=4 {
        let v = y1 * k as f64 / 4.0;
        let _ = write!(
            out,
            r##"<text x="{}" y="{}" text-anchor="end">{}</text><line x1="{left}" y1="{y}" x2="{right}" y2="{y}" stroke="#ddd"/>"##,
            left - 4.0,
            sy(v) + 4.0,
            short(v),
            y = sy(v)
        );
    }
    let ticks: Vec<f64> = match p.log_x {
        true => (x0.floor() as i32..=x1.ceil() as i32).map(|e| 10f64.powi(e)).collect(),
        false => (0..=4).map(|k| x0 + (x1 - x0) * k as f64 / 4.0).collect(),
    };
    for t in ticks {
        if fx(t) < x0 - 1e-9 || fx(t) > x1 + 1e-9 {
            continue;
        }
        let _ = write!(
            out,
            r#"<text x="{}" y="{}" text-anchor="middle">{}</text>"#,
            sx(t),
            bottom + 14.0,
            short(t)
        );
    }
    let path: Vec<String> = pts.iter().map(|&(x, y)| format!("{:.1},{:.1}", sx(x), sy(y))).collect();
    let _ = write!(
        out,
        r##"<polyline fill="none" stroke="#1f6feb" stroke-width="2" points="{}"/>"##,
        path.join(" ")
    );
    for &(x, y) in &pts {
        let _ = write!(
            out,
            r##"<circle cx="{:.1}" cy="{:.1}" r="2.5" fill="#1f6feb"/>"##,
            sx(x),
            sy(y)
        );
    }
}

/// A compact axis label: 1.5k, 2M, 0.25.
fn short(v: f64) -> String {
    let a = v.abs();
    if a >= 1e6 {
        format!("{}M", trim(v / 1e6))
    } else if a >= 1e3 {
        format!("{}k", trim(v / 1e3))
    } else {
        trim(v)
    }
}

fn trim(v: f64) -> String {
    let s = format!("{v:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_every_panel_and_point() {
        let doc = svg(
            "t <1>",
            &[
                Panel {
                    title: "rss".into(),
                    x_label: "leases".into(),
                    points: vec![(1e4, 40.0), (1e5, 42.0), (1e6, 45.0)],
                    log_x: true,
                },
                Panel {
                    title: "empty".into(),
                    x_label: "s".into(),
                    points: vec![],
                    log_x: false,
                },
            ],
        );
        assert!(doc.starts_with("<svg") && doc.trim_end().ends_with("</svg>"));
        assert_eq!(doc.matches("<circle").count(), 3);
        assert!(doc.contains("t &lt;1&gt;"));
        assert!(doc.contains(">1M<"), "{doc}");
    }
}
