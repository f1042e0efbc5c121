//! OpenAI's duration format for `x-ratelimit-reset-*` headers, which is Go's
//! `time.Duration.String()`: `1s`, `6m0s`, `12ms`, `4m12.172s`, `1h0m0s`.

use std::fmt::Write;
use std::time::Duration;

/// Formats `d` the way OpenAI's rate-limit reset headers do, at millisecond precision.
///
/// Sub-millisecond remainders are rounded up, so a client that waits the printed time
/// never comes back a moment too early.
pub fn format_reset(d: Duration) -> String {
    let ms = d.as_nanos().div_ceil(1_000_000);
    if ms == 0 {
        return "0s".to_owned();
    }
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let hours = ms / 3_600_000;
    let minutes = (ms / 60_000) % 60;
    let seconds = (ms / 1000) % 60;
    let frac = ms % 1000;
    let mut out = String::with_capacity(16);
    if hours > 0 {
        let _ = write!(out, "{hours}h{minutes}m");
    } else if minutes > 0 {
        let _ = write!(out, "{minutes}m");
    }
    let _ = write!(out, "{seconds}");
    if frac > 0 {
        let digits = format!("{frac:03}");
        let _ = write!(out, ".{}", digits.trim_end_matches('0'));
    }
    out.push('s');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn matches_openai_examples() {
        assert_eq!(format_reset(ms(1000)), "1s");
        assert_eq!(format_reset(ms(360_000)), "6m0s");
        assert_eq!(format_reset(ms(12)), "12ms");
        assert_eq!(format_reset(ms(252_172)), "4m12.172s");
    }

    #[test]
    fn formats_edges_like_go() {
        assert_eq!(format_reset(Duration::ZERO), "0s");
        assert_eq!(format_reset(ms(999)), "999ms");
        assert_eq!(format_reset(ms(1500)), "1.5s");
        assert_eq!(format_reset(ms(1050)), "1.05s");
        assert_eq!(format_reset(ms(60_000)), "1m0s");
        assert_eq!(format_reset(ms(3_600_000)), "1h0m0s");
        assert_eq!(format_reset(ms(3_723_004)), "1h2m3.004s");
    }

    #[test]
    fn rounds_sub_millisecond_up() {
        assert_eq!(format_reset(Duration::from_micros(1)), "1ms");
        assert_eq!(format_reset(Duration::from_micros(12_001)), "13ms");
        assert_eq!(format_reset(Duration::from_micros(999_999)), "1s");
    }
}
