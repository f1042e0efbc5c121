//! Parsers for flag values: each rejects what makes no sense (a negative or endless time,
//! a size of nothing) with a message clap prints as a usage error (exit 2).

use std::num::{NonZeroU64, NonZeroUsize};
use std::time::Duration;

use sluice::journal::SyncPolicy;

/// `--concurrency N | auto | auto:N`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConcurrencyArg {
    /// The limit, or the ceiling of the search.
    pub max: NonZeroUsize,
    /// Follow latency.
    pub auto: bool,
}

pub fn parse_concurrency(s: &str) -> Result<ConcurrencyArg, String> {
    let number = |n: &str| {
        n.parse::<NonZeroUsize>()
            .map_err(|_| format!("`{s}`: expected a positive number, auto, or auto:N"))
    };
    match s.strip_prefix("auto") {
        Some("") => Ok(ConcurrencyArg {
            max: NonZeroUsize::new(512).expect("512 > 0"),
            auto: true,
        }),
        Some(rest) => match rest.strip_prefix(':') {
            Some(n) => Ok(ConcurrencyArg {
                max: number(n)?,
                auto: true,
            }),
            None => Err(format!(
                "`{s}`: expected a positive number, auto, or auto:N"
            )),
        },
        None => Ok(ConcurrencyArg {
            max: number(s)?,
            auto: false,
        }),
    }
}

/// `--limit MODEL=rpm:N,tpm:M`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelLimitArg {
    /// The model.
    pub model: String,
    /// Its budgets.
    pub rates: Rates,
}

/// The per-minute budgets a run or a model is given.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rates {
    /// Requests per minute.
    pub rpm: Option<RateArg>,
    /// Tokens per minute.
    pub tpm: Option<RateArg>,
    /// Input tokens per minute.
    pub itpm: Option<RateArg>,
    /// Output tokens per minute.
    pub otpm: Option<RateArg>,
}

pub fn parse_model_limit(s: &str) -> Result<ModelLimitArg, String> {
    let (model, spec) = s
        .split_once('=')
        .filter(|(m, _)| !m.is_empty())
        .ok_or_else(|| format!("`{s}`: expected MODEL=rpm:N,tpm:M"))?;
    let mut limit = ModelLimitArg {
        model: model.to_owned(),
        rates: Rates::default(),
    };
    for part in spec.split(',') {
        let rates = &mut limit.rates;
        match part.split_once(':') {
            Some(("rpm", v)) => rates.rpm = Some(parse_rate(v)?),
            Some(("tpm", v)) => rates.tpm = Some(parse_rate(v)?),
            Some(("itpm", v)) => rates.itpm = Some(parse_rate(v)?),
            Some(("otpm", v)) => rates.otpm = Some(parse_rate(v)?),
            _ => {
                return Err(format!(
                    "`{part}` in `{s}`: expected rpm:N, tpm:N, itpm:N or otpm:N"
                ));
            }
        }
    }
    Ok(limit)
}

/// `--rpm`/`--tpm`: a fixed limit, `auto`, or `auto:CEILING`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateArg {
    /// The limit, or the ceiling of the search.
    pub limit: Option<NonZeroU64>,
    /// Search for the rate.
    pub auto: bool,
}

pub fn parse_rate(s: &str) -> Result<RateArg, String> {
    let number = |n: &str| {
        n.parse::<NonZeroU64>()
            .map_err(|_| format!("`{s}`: expected a positive number, auto, or auto:N"))
    };
    match s.strip_prefix("auto") {
        Some("") => Ok(RateArg {
            limit: None,
            auto: true,
        }),
        Some(rest) => match rest.strip_prefix(':') {
            Some(n) => Ok(RateArg {
                limit: Some(number(n)?),
                auto: true,
            }),
            None => Err(format!(
                "`{s}`: expected a positive number, auto, or auto:N"
            )),
        },
        None => Ok(RateArg {
            limit: Some(number(s)?),
            auto: false,
        }),
    }
}

pub fn parse_sync(s: &str) -> Result<SyncPolicy, String> {
    match s {
        "always" => Ok(SyncPolicy::Always),
        "never" => Ok(SyncPolicy::Never),
        other => {
            let (number, scale) = if let Some(ms) = other.strip_suffix("ms") {
                (ms, 0.001)
            } else if let Some(s) = other.strip_suffix('s') {
                (s, 1.0)
            } else {
                (other, 1.0)
            };
            number
                .parse::<f64>()
                .ok()
                .and_then(|n| Duration::try_from_secs_f64(n * scale).ok())
                .map(SyncPolicy::Every)
                .ok_or_else(|| {
                    format!("`{s}`: expected always, never, or an interval such as 1s or 250ms")
                })
        }
    }
}

/// The longest time any flag takes: a week. Longer is a typo, and `Duration` arithmetic
/// on the clock could overflow near its end.
const MAX_SECONDS: f64 = 7.0 * 24.0 * 3600.0;

/// A number of seconds, zero allowed (`--burst-secs 0`, `--drain-timeout 0`).
pub fn seconds(s: &str) -> Result<Duration, String> {
    let value: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("`{s}`: expected a number of seconds, such as 30 or 0.5"))?;
    if !value.is_finite() || value < 0.0 {
        return Err(format!(
            "`{s}`: expected a finite number of seconds, 0 or more"
        ));
    }
    if value > MAX_SECONDS {
        return Err(format!("`{s}`: at most {MAX_SECONDS} seconds (a week)"));
    }
    Ok(Duration::from_secs_f64(value))
}

/// A positive number of seconds (timeouts and backoff: zero would fail every request).
pub fn positive_seconds(s: &str) -> Result<Duration, String> {
    match seconds(s)? {
        d if d.is_zero() => Err(format!("`{s}`: must be more than 0 seconds")),
        d => Ok(d),
    }
}

/// An amount of US dollars, above zero (`25`, `25.00`, `$25`).
pub fn dollars(s: &str) -> Result<f64, String> {
    let t = s.trim().trim_start_matches('$');
    match t.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        Ok(_) => Err(format!("`{s}`: must be a number of dollars above 0")),
        Err(_) => Err(format!(
            "`{s}`: not a number of dollars (for example 25.00)"
        )),
    }
}

/// A size in bytes: a number with an optional unit (`256MiB`, `64KiB`, `1GiB`, `10MB`).
pub fn bytes(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '_'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let n: u64 = number
        .replace('_', "")
        .parse()
        .map_err(|_| format!("`{s}`: expected a size such as 268435456, 256MiB or 64KiB"))?;
    let scale: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1_000,
        "kib" => 1 << 10,
        "m" | "mb" => 1_000_000,
        "mib" => 1 << 20,
        "g" | "gb" => 1_000_000_000,
        "gib" => 1 << 30,
        other => {
            return Err(format!(
                "`{s}`: unknown unit `{other}` (use KiB, MiB or GiB)"
            ));
        }
    };
    match n.checked_mul(scale) {
        Some(0) => Err(format!("`{s}`: must be more than 0 bytes")),
        Some(v) => Ok(v),
        None => Err(format!("`{s}`: too large")),
    }
}

/// The most threads `--threads` takes: far past what helps on any machine, and short of
/// what an operating system refuses to start.
pub const MAX_THREADS: usize = 256;

/// `--threads N`, 1 to [`MAX_THREADS`].
pub fn threads(s: &str) -> Result<NonZeroUsize, String> {
    match s.trim().parse::<NonZeroUsize>() {
        Ok(n) if n.get() <= MAX_THREADS => Ok(n),
        _ => Err(format!(
            "`{s}`: expected a number of threads from 1 to {MAX_THREADS}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_that_make_no_sense_are_refused() {
        for bad in ["NaN", "inf", "-1", "", "abc", "1e12"] {
            assert!(seconds(bad).is_err(), "{bad}");
        }
        assert_eq!(seconds("0").unwrap(), Duration::ZERO);
        assert!(positive_seconds("0").is_err());
        assert_eq!(positive_seconds("0.5").unwrap(), Duration::from_millis(500));
    }

    #[test]
    fn sizes_take_units_and_refuse_nothing() {
        assert_eq!(bytes("256MiB").unwrap(), 256 << 20);
        assert_eq!(bytes("64 KiB").unwrap(), 64 << 10);
        assert_eq!(bytes("1000").unwrap(), 1000);
        assert_eq!(bytes("2GB").unwrap(), 2_000_000_000);
        for bad in ["0", "-5", "12 parsecs", "99999999999999GiB"] {
            assert!(bytes(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn thread_counts_are_bounded() {
        assert!(threads("100000").is_err());
        assert!(threads("0").is_err());
        assert_eq!(threads("4").unwrap().get(), 4);
    }
}
