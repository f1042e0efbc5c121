//! The three ways a sample is shown: the live view (indicatif), a plain line, and JSON
//! objects of the documented schema (docs/PROGRESS.md).

use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;
use sluice::RateNow;

use super::Notable;
use super::sample::{BindingShares, Snapshot};

/// The version of the JSON progress schema.
pub const SCHEMA: &str = "sluice.progress/1";

/// The live view: a bar and one line of figures, redrawn at most ten times a second.
pub fn live_bar() -> ProgressBar {
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr_with_hz(10));
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}

pub fn update_live(bar: &ProgressBar, s: &Snapshot) {
    if let Some(total) = s.total
        && bar.length() != Some(total)
    {
        bar.set_length(total);
    }
    bar.set_position(s.done);
    let mut msg = figures(s).join(" | ");
    if s.draining {
        msg = format!(
            "draining {} requests in flight (Ctrl-C again abandons them) | {msg}",
            s.in_flight
        );
    }
    bar.set_message(msg);
}

/// One compact line, for logs and pipes: the live view's figures.
pub fn plain_line(s: &Snapshot) -> String {
    let mut line = format!("sluice: {}", figures(s).join(", "));
    if s.draining {
        line.push_str(", draining (a second Ctrl-C abandons what is in flight)");
    }
    line
}

/// The figures both the live view and the plain line show, in order.
fn figures(s: &Snapshot) -> Vec<String> {
    let mut out = vec![format!(
        "{}/{} done{}",
        s.done,
        s.total.map_or_else(|| "?".to_owned(), |t| t.to_string()),
        if s.resumed > 0 {
            format!(" ({} resumed)", s.resumed)
        } else {
            String::new()
        }
    )];
    out.push(format!("ok {} failed {}{}", s.ok, s.failed, retries(s)));
    out.push(format!(
        "{:.1} req/s {} tok/s",
        s.requests_per_s,
        short(s.prompt_tokens_per_s + s.completion_tokens_per_s)
    ));
    out.push(format!("in flight {}/{}", s.in_flight, s.concurrency));
    let limits = format!("{}{}", limit("rpm", s.rpm), limit("tpm", s.tpm));
    if !limits.is_empty() {
        out.push(limits.trim_end().to_owned());
    }
    if !s.endpoints.is_empty() {
        let split: Vec<String> = s
            .endpoints
            .iter()
            .map(|e| {
                let out = if e.ejected { " (out)" } else { "" };
                format!("{} {}{out}", e.name, e.succeeded)
            })
            .collect();
        out.push(split.join(" · "));
    }
    out.push(format!("waiting on {}", s.binding.describe()));
    out.push(cost(s));
    if let Some(eta) = s.eta {
        out.push(format!("ETA {}", duration(eta)));
    }
    out
}

/// `$1.23 of ~$4.56`, with what is unknown said as such.
fn cost(s: &Snapshot) -> String {
    let unpriced = if s.unpriced > 0 && s.cost.is_some() {
        format!(" (+{} unpriced)", s.unpriced)
    } else {
        String::new()
    };
    match (s.cost, s.cost_projected) {
        (Some(c), Some(p)) => format!("{} of ~{}{unpriced}", dollars(c), dollars(p)),
        (Some(c), None) => format!("{} spent{unpriced}", dollars(c)),
        (None, _) if s.unpriced > 0 => "cost unknown".to_owned(),
        (None, _) => "$0 spent".to_owned(),
    }
}

/// Dollars with cents, or more digits below a dollar.
pub fn dollars(d: f64) -> String {
    if d >= 100.0 {
        format!("${d:.0}")
    } else if d >= 1.0 {
        format!("${d:.2}")
    } else if d >= 0.01 || d == 0.0 {
        format!("${d:.4}")
    } else {
        format!("${d:.6}")
    }
}

fn retries(s: &Snapshot) -> String {
    if s.retries + s.rate_limited == 0 {
        String::new()
    } else {
        format!(" ({} retries, {} 429s)", s.retries, s.rate_limited)
    }
}

fn limit(name: &str, r: RateNow) -> String {
    match (r.rate, r.limit) {
        (Some(r), Some(c)) => format!("{name} {}/{} ", short(r), short(c)),
        (Some(r), None) => format!("{name} {} ", short(r)),
        _ => String::new(),
    }
}

fn short(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if v >= 1e4 {
        format!("{:.0}k", v / 1e3)
    } else {
        format!("{v:.0}")
    }
}

/// `1h05m`, `3m07s`, `42s`.
pub fn duration(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, s % 3600 / 60)
    } else if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

fn rate_json(r: RateNow) -> serde_json::Value {
    json!({"rate": r.rate, "limit": r.limit})
}

/// A `progress` object.
pub fn progress_json(s: &Snapshot) -> serde_json::Value {
    let mut v = json!({
        "schema": SCHEMA,
        "type": "progress",
        "t": s.elapsed.as_secs_f64(),
        "done": s.done,
        "total": s.total,
        "resumed": s.resumed,
        "ok": s.ok,
        "failed": s.failed,
        "failed_by_kind": s.failed_by_kind.iter().cloned().collect::<std::collections::BTreeMap<_, _>>(),
        "retries": s.retries,
        "rate_limited": s.rate_limited,
        "in_flight": s.in_flight,
        "concurrency": s.concurrency,
        "requests_per_s": s.requests_per_s,
        "prompt_tokens_per_s": s.prompt_tokens_per_s,
        "completion_tokens_per_s": s.completion_tokens_per_s,
        "rpm": rate_json(s.rpm),
        "tpm": rate_json(s.tpm),
        "binding": s.binding.code(),
        "draining": s.draining,
        "eta_s": s.eta.map(|d| d.as_secs_f64()),
        "cost_usd": s.cost,
        "cost_projected_usd": s.cost_projected,
        "unpriced": s.unpriced,
    });
    if !s.endpoints.is_empty() {
        v["endpoints"] = s
            .endpoints
            .iter()
            .map(|e| {
                json!({"name": e.name, "ok": e.succeeded, "failed": e.failed,
                    "ejections": e.ejections, "out": e.ejected, "concurrency": e.concurrency})
            })
            .collect();
    }
    v
}

/// An object for a notable event.
pub fn note_json(note: &Notable, t: Duration) -> serde_json::Value {
    let t = t.as_secs_f64();
    match note {
        Notable::Paused(d) => {
            json!({"schema": SCHEMA, "type": "pause", "t": t, "seconds": d.as_secs_f64()})
        }
        Notable::Halted(reason) => {
            json!({"schema": SCHEMA, "type": "halt", "t": t, "reason": reason.code()})
        }
        Notable::Stopping(signal) => {
            json!({"schema": SCHEMA, "type": "stop", "t": t, "signal": signal})
        }
        Notable::CapReached(reason) => {
            json!({"schema": SCHEMA, "type": "spend_cap", "t": t, "reason": reason})
        }
    }
}

/// The last object: the final figures and how often each binding held the run back.
pub fn end_json(s: &Snapshot, shares: &BindingShares) -> serde_json::Value {
    let mut last = progress_json(s);
    last["type"] = json!("end");
    last["binding_shares"] = shares
        .shares()
        .into_iter()
        .map(|(b, share)| (b.code().to_owned(), json!(share)))
        .collect::<serde_json::Map<_, _>>()
        .into();
    last
}
