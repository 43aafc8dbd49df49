//! Per-op timing for finding where a training step spends its time (cargo feature `profile`).
//!
//! Forward ops are timed from the end of the previous recorded op to the end of this one, so
//! the figure includes whatever the caller did in between; backward closures are timed
//! exactly. Nothing here is compiled without the feature.

use std::cell::Cell;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

thread_local! {
    static LAST: Cell<Option<Instant>> = const { Cell::new(None) };
}

fn table() -> &'static Mutex<HashMap<(&'static str, bool), (u64, Duration)>> {
    static TABLE: std::sync::OnceLock<Mutex<HashMap<(&'static str, bool), (u64, Duration)>>> =
        std::sync::OnceLock::new();
    TABLE.get_or_init(Default::default)
}

fn add(name: &'static str, backward: bool, d: Duration) {
    let mut t = table().lock().unwrap_or_else(|e| e.into_inner());
    let e = t.entry((name, backward)).or_default();
    e.0 += 1;
    e.1 += d;
}

/// Marks the end of a forward op.
pub(crate) fn forward_done(name: &'static str) {
    let now = Instant::now();
    if let Some(prev) = LAST.with(|l| l.replace(Some(now))) {
        add(name, false, now - prev);
    }
}

/// Records the duration of a backward closure.
pub(crate) fn backward_done(name: &'static str, d: Duration) {
    add(name, true, d);
    LAST.with(|l| l.set(Some(Instant::now())));
}

/// Starts a new measurement: forgets all figures and the forward clock.
pub fn reset() {
    table().lock().unwrap_or_else(|e| e.into_inner()).clear();
    LAST.with(|l| l.set(None));
}

/// A table of calls, total and mean milliseconds per op and direction, slowest first.
pub fn report() -> String {
    let t = table().lock().unwrap_or_else(|e| e.into_inner());
    let mut rows: Vec<_> = t.iter().collect();
    rows.sort_by(|a, b| b.1 .1.cmp(&a.1 .1));
    let total: Duration = rows.iter().map(|r| r.1 .1).sum();
    let mut out = format!(
        "{:<22} {:>8} {:>8} {:>10} {:>6}\n",
        "op", "dir", "calls", "total ms", "%"
    );
    for ((name, backward), (calls, d)) in rows {
        let dir = if *backward { "backward" } else { "forward" };
        let pct = 100.0 * d.as_secs_f64() / total.as_secs_f64().max(1e-12);
        out += &format!(
            "{name:<22} {dir:>8} {calls:>8} {:>10.1} {pct:>6.1}\n",
            d.as_secs_f64() * 1e3
        );
    }
    out
}
