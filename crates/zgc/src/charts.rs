//! Terminal charts: horizontal bars for rankings and breakdowns, a line
//! chart for time series. Pure: they return text.

use textplots::{Chart, Plot, Shape};

/// The widest bar, in characters.
const BAR_WIDTH: usize = 40;
const EIGHTHS: [char; 8] = ['▏', '▎', '▍', '▌', '▋', '▊', '▉', '█'];

/// Formats a number with thousands separators (and at most one decimal).
pub fn number(v: f64) -> String {
    if !v.is_finite() {
        return v.to_string();
    }
    let rounded = (v * 10.0).round() / 10.0;
    let whole = rounded.trunc().abs();
    let frac = ((rounded.abs() - whole) * 10.0).round();
    let digits = format!("{whole:.0}");
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    let sign = if rounded < 0.0 { "-" } else { "" };
    if frac > 0.0 {
        format!("{sign}{grouped}.{frac:.0}")
    } else {
        format!("{sign}{grouped}")
    }
}

/// A bar of `value` where `max` fills [`BAR_WIDTH`], in eighths.
fn bar(value: f64, max: f64) -> String {
    if max <= 0.0 || value <= 0.0 || !value.is_finite() {
        return String::new();
    }
    let eighths = ((value / max) * (BAR_WIDTH * 8) as f64).round().max(1.0) as usize;
    let mut s = "█".repeat(eighths / 8);
    if !eighths.is_multiple_of(8) {
        s.push(EIGHTHS[eighths % 8 - 1]);
    }
    s
}

/// Labelled horizontal bars, biggest value filling the width.
pub fn bars(title: &str, rows: &[(String, f64)]) -> String {
    let mut out = format!("{title}\n");
    if rows.is_empty() {
        out.push_str("  (none)\n");
        return out;
    }
    let label_width = rows
        .iter()
        .map(|(l, _)| l.chars().count())
        .max()
        .unwrap_or(0);
    let max = rows.iter().map(|(_, v)| *v).fold(0.0, f64::max);
    for (label, value) in rows {
        let pad = label_width - label.chars().count();
        out.push_str(&format!(
            "  {label}{} {} {}\n",
            " ".repeat(pad),
            bar(*value, max),
            number(*value)
        ));
    }
    out
}

/// A line chart of a series (x = period index) with the period labels of
/// its ends.
pub fn line(title: &str, labels: &[String], values: &[f64]) -> String {
    let mut out = format!("{title}\n");
    if values.is_empty() {
        out.push_str("  (no data)\n");
        return out;
    }
    let points: Vec<(f32, f32)> = values
        .iter()
        .enumerate()
        .map(|(i, v)| (i as f32, *v as f32))
        .collect();
    let xmax = (values.len().max(2) - 1) as f32;
    let chart = Chart::new(120, 40, 0.0, xmax)
        .lineplot(&Shape::Lines(&points))
        .to_string();
    out.push_str(&chart);
    if let (Some(first), Some(last)) = (labels.first(), labels.last()) {
        out.push_str(&format!("  {first} … {last}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_grouped() {
        assert_eq!(number(85_121_900_000.0), "85,121,900,000");
        assert_eq!(number(34.9), "34.9");
        assert_eq!(number(-1234.0), "-1,234");
        assert_eq!(number(0.0), "0");
    }

    #[test]
    fn bars_scale_to_the_biggest() {
        let text = bars(
            "t",
            &[("a".into(), 10.0), ("bb".into(), 5.0), ("c".into(), 0.0)],
        );
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[1].matches('█').count(), BAR_WIDTH);
        assert_eq!(lines[2].matches('█').count(), BAR_WIDTH / 2);
        assert!(lines[3].ends_with(" 0"));
        assert!(lines[1].starts_with("  a  "), "labels are padded: {text}");
        assert!(bars("t", &[]).contains("(none)"));
    }
}
