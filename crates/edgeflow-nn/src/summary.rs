//! The text table of `Sequential::summary`.

use std::fmt::Write;

use crate::model::Sequential;

/// `12345` -> `12,345`.
pub fn thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

fn bytes(n: usize) -> String {
    let b = n as f64 * 4.0;
    if b >= 1024.0 * 1024.0 {
        format!("{:.2} MB", b / (1024.0 * 1024.0))
    } else if b >= 1024.0 {
        format!("{:.2} KB", b / 1024.0)
    } else {
        format!("{b} B")
    }
}

pub(crate) fn render(model: &Sequential) -> String {
    let rows: Vec<[String; 3]> = model
        .layers()
        .iter()
        .map(|l| {
            let shape = l
                .output_shape()
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", ");
            let params: usize = l.params().iter().map(|p| p.value.elem_count()).sum();
            [
                format!("{} ({})", l.name(), l.config().type_name()),
                format!("(None, {shape})"),
                thousands(params),
            ]
        })
        .collect();
    let header = [
        "Layer (type)".to_string(),
        "Output Shape".into(),
        "Param #".into(),
    ];
    let widths: Vec<usize> = (0..3)
        .map(|c| {
            rows.iter()
                .chain(std::iter::once(&header))
                .map(|r| r[c].len())
                .max()
                .unwrap_or(0)
                + 2
        })
        .collect();
    let rule = |ch: char| ch.to_string().repeat(widths.iter().sum::<usize>() + 2);
    let line = |r: &[String; 3]| {
        format!(
            "{:<w0$} {:<w1$} {:>w2$}",
            r[0],
            r[1],
            r[2],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2]
        )
    };

    let mut out = String::new();
    let _ = writeln!(out, "Model: \"{}\"", model.name);
    let _ = writeln!(out, "{}", rule('='));
    let _ = writeln!(out, "{}", line(&header));
    let _ = writeln!(out, "{}", rule('='));
    for r in &rows {
        let _ = writeln!(out, "{}", line(r));
    }
    let _ = writeln!(out, "{}", rule('='));
    let (total, trainable) = (model.param_count(), model.trainable_param_count());
    let _ = writeln!(out, "Total params: {} ({})", thousands(total), bytes(total));
    let _ = writeln!(
        out,
        "Trainable params: {} ({})",
        thousands(trainable),
        bytes(trainable)
    );
    let _ = writeln!(
        out,
        "Non-trainable params: {} ({})",
        thousands(total - trainable),
        bytes(total - trainable)
    );
    out
}
