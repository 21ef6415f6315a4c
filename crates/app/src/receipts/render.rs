//! One receipt layout, two outputs. [`layout`] turns a [`Receipt`] into rows (centred text,
//! label + amount pairs, rules); [`text`] sets those rows in a fixed number of monospaced
//! columns for ESC/POS printers, and [`html`] the same rows as a page the till prints. A
//! change to what a receipt says is made once, in [`layout`].

use super::Receipt;

/// A row of the layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Row {
    /// Centred; wrapped when longer than the line.
    Center(String),
    /// Left text and a right-aligned amount on one line when both fit; otherwise the text
    /// wraps and the amount closes its last line (or goes on its own).
    Pair(String, String),
    /// Left-aligned and wrapped.
    Text(String),
    /// A line of dashes.
    Rule,
}

/// `1234567` → `"12,345.67"`; negative amounts get a leading `-`. Integer arithmetic only.
pub fn money(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let abs = cents.unsigned_abs();
    let whole = (abs / 100).to_string();
    let mut grouped = String::with_capacity(whole.len() + whole.len() / 3);
    for (i, c) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(c);
    }
    format!("{sign}{grouped}.{:02}", abs % 100)
}

/// Basis points as a percentage: 825 → `"8.25%"`, 1000 → `"10%"`, 850 → `"8.5%"`.
pub fn percent(bp: i64) -> String {
    let s = format!("{}.{:02}", bp / 100, bp % 100);
    format!("{}%", s.trim_end_matches('0').trim_end_matches('.'))
}

/// The rows of a receipt, top to bottom.
pub fn layout(r: &Receipt) -> Vec<Row> {
    let mut rows = Vec::new();
    if r.copy {
        rows.push(Row::Center("*** COPY ***".into()));
    }
    rows.push(Row::Center(r.store_name.clone()));
    for line in &r.store_address {
        rows.push(Row::Center(line.clone()));
    }
    if let Some(tax_id) = &r.store_tax_id {
        rows.push(Row::Center(format!("Tax ID: {tax_id}")));
    }
    rows.push(Row::Rule);
    rows.push(Row::Pair(format!("Order #{}", r.number), r.time.clone()));
    rows.push(Row::Rule);
    for l in &r.lines {
        rows.push(Row::Pair(
            format!("{} x {}", l.quantity, l.name),
            money(l.subtotal_cents),
        ));
        if l.quantity > 1 {
            rows.push(Row::Text(format!("    @ {}", money(l.unit_price_cents))));
        }
    }
    rows.push(Row::Rule);
    rows.push(Row::Pair("Subtotal".into(), money(r.subtotal_cents)));
    if r.discount_cents != 0 {
        rows.push(Row::Pair("Discount".into(), money(-r.discount_cents)));
    }
    for (bp, tax) in &r.tax_by_rate {
        rows.push(Row::Pair(format!("Tax {}", percent(*bp)), money(*tax)));
    }
    rows.push(Row::Pair(
        format!("TOTAL {}", r.currency),
        money(r.total_cents),
    ));
    if !r.payments.is_empty() {
        rows.push(Row::Rule);
    }
    for p in &r.payments {
        rows.push(Row::Pair(p.method.clone(), money(p.amount_cents)));
        if let Some(t) = p.tendered_cents {
            rows.push(Row::Pair("  Tendered".into(), money(t)));
            rows.push(Row::Pair("  Change".into(), money(p.change_cents)));
        }
    }
    for f in &r.refunds {
        rows.push(Row::Pair("Refund".into(), money(-f.amount_cents)));
        rows.push(Row::Text(format!("  {}", f.reason)));
    }
    if r.balance_due_cents > 0 {
        rows.push(Row::Pair("Balance due".into(), money(r.balance_due_cents)));
    }
    rows.push(Row::Rule);
    rows.push(Row::Center("Thank you!".into()));
    if r.copy {
        rows.push(Row::Center("*** COPY ***".into()));
    }
    rows
}

fn width_of(s: &str) -> usize {
    s.chars().count()
}

/// Word-wraps `s` to lines of at most `width` characters, breaking words longer than a line.
/// Leading spaces (indentation) are kept on the first line; control characters (a refund
/// reason may hold a line break) become spaces.
pub fn wrap(s: &str, width: usize) -> Vec<String> {
    let width = width.max(2);
    let clean: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let indent = clean
        .chars()
        .take_while(|c| *c == ' ')
        .count()
        .min(width / 2);
    let mut lines = Vec::new();
    let mut line: Vec<char> = vec![' '; indent];
    let mut has_word = false;
    for word in clean.split_whitespace() {
        let mut word: Vec<char> = word.chars().collect();
        while !word.is_empty() {
            let sep = usize::from(has_word);
            if line.len() + sep + word.len() <= width {
                if has_word {
                    line.push(' ');
                }
                line.append(&mut word);
                has_word = true;
            } else if has_word {
                lines.push(line.drain(..).collect::<String>());
                has_word = false;
            } else {
                // Longer than a whole line: fill this one with its start.
                let rest = word.split_off(width - line.len());
                line.append(&mut word);
                lines.push(line.drain(..).collect::<String>());
                word = rest;
            }
        }
    }
    if has_word || lines.is_empty() {
        lines.push(line.into_iter().collect::<String>().trim_end().to_owned());
    }
    lines
}

/// The receipt as monospaced text, every line at most `width` characters, `\n`-separated.
pub fn text(rows: &[Row], width: usize) -> String {
    let mut out = Vec::new();
    for row in rows {
        match row {
            Row::Rule => out.push("-".repeat(width)),
            Row::Text(t) => out.extend(wrap(t, width)),
            Row::Center(t) => {
                for l in wrap(t, width) {
                    let pad = (width - width_of(&l)) / 2;
                    out.push(format!("{}{l}", " ".repeat(pad)));
                }
            }
            Row::Pair(left, right) => {
                let rw = width_of(right);
                let mut lines = wrap(left, width);
                let last = lines.pop().unwrap_or_default();
                out.extend(lines);
                if width_of(&last) + 1 + rw <= width {
                    let pad = width - width_of(&last) - rw;
                    out.push(format!("{last}{}{right}", " ".repeat(pad)));
                } else {
                    out.push(last);
                    let shown: String = right.chars().take(width).collect();
                    out.push(format!("{shown:>width$}"));
                }
            }
        }
    }
    let mut s = out.join("\n");
    s.push('\n');
    s
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
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

/// The receipt as a printable HTML page, `columns` characters wide (32 or 48).
pub fn html(rows: &[Row], columns: usize, title: &str) -> String {
    let mut body = String::new();
    for row in rows {
        match row {
            Row::Rule => body.push_str("<hr>\n"),
            Row::Text(t) => body.push_str(&format!("<div class=\"t\">{}</div>\n", escape(t))),
            Row::Center(t) => body.push_str(&format!("<div class=\"c\">{}</div>\n", escape(t))),
            Row::Pair(l, r) => body.push_str(&format!(
                "<div class=\"p\"><span>{}</span><span>{}</span></div>\n",
                escape(l),
                escape(r)
            )),
        }
    }
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title>\n\
         <style>\n\
         body{{margin:0}}\n\
         .receipt{{font:13px/1.35 ui-monospace,Menlo,Consolas,monospace;width:{columns}ch;margin:0 auto;padding:1ch;white-space:pre-wrap}}\n\
         .c{{text-align:center}}\n\
         .p{{display:flex;justify-content:space-between;gap:1ch}}\n\
         .p span:last-child{{white-space:nowrap}}\n\
         hr{{border:0;border-top:1px dashed #000;margin:.3em 0}}\n\
         @media print{{@page{{margin:0}}}}\n\
         </style></head>\n<body><div class=\"receipt\">\n{body}</div></body></html>\n",
        title = escape(title),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_is_exact_and_grouped() {
        assert_eq!(money(0), "0.00");
        assert_eq!(money(5), "0.05");
        assert_eq!(money(-150), "-1.50");
        assert_eq!(money(123_456_789), "1,234,567.89");
        assert_eq!(money(100_000), "1,000.00");
        assert_eq!(money(i64::MIN), "-92,233,720,368,547,758.08");
    }

    #[test]
    fn percentages_drop_trailing_zeros() {
        assert_eq!(percent(825), "8.25%");
        assert_eq!(percent(1000), "10%");
        assert_eq!(percent(850), "8.5%");
        assert_eq!(percent(0), "0%");
    }

    #[test]
    fn pairs_align_right_and_long_text_wraps_within_the_width() {
        let rows = vec![
            Row::Pair("1 x Tea".into(), "3.50".into()),
            Row::Pair(
                "2 x An extraordinarily long product name that cannot fit".into(),
                "1,234.00".into(),
            ),
            Row::Text("Supercalifragilisticexpialidocious-and-then-some".into()),
            Row::Center("Till".into()),
        ];
        for width in [32, 48] {
            let t = text(&rows, width);
            for line in t.lines() {
                assert!(line.chars().count() <= width, "{line:?} wider than {width}");
            }
            let first = t.lines().next().unwrap();
            assert_eq!(first.chars().count(), width);
            assert!(first.starts_with("1 x Tea") && first.ends_with("3.50"));
        }
        assert!(text(&rows, 32).contains("1,234.00\n"));
    }
}
