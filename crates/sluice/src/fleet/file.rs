//! The endpoints file: several endpoints as TOML, one `[[endpoint]]` table each.
//!
//! ```toml
//! [[endpoint]]
//! name = "azure-east"                 # in statistics and messages
//! provider = "azure"                  # openai (default), anthropic or azure
//! base_url = "https://east.openai.azure.com/openai/deployments/gpt-4o?api-version=2024-10-21"
//! key_env = "AZURE_EAST_KEY"          # default: the provider's own variable
//! models = ["gpt-4o"]                 # default: every model
//! rpm = 5000                          # also tpm, itpm, otpm: numbers, "auto" or "auto:N"
//! tpm = 800000
//! concurrency = 64                    # default 64; "auto" (or "auto:N") finds it from
//!                                     # latency, for servers that queue (vLLM)
//! weight = 1.0                        # default 1
//! overload_503 = false                # its bare 503s mean overload (default: known
//!                                     # for Together and Fireworks)
//!
//! [[endpoint]]
//! name = "vllm-1"
//! base_url = "http://10.0.0.5:8000/v1"
//! no_auth = true                      # a server that needs no key
//! ```

use std::num::{NonZeroU64, NonZeroUsize};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::EndpointSpec;
use crate::builder::Concurrency;
use crate::limits::{Budget, Limits};
use crate::transport::{ApiKey, Provider};

/// Why an endpoints file cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EndpointsFileError {
    /// It cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// It is not the TOML described in [`crate::fleet::file`].
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong, and where (TOML's own line and column).
        message: String,
    },
    /// One endpoint's setting is wrong.
    #[error("{path}: endpoint `{endpoint}`: {message}")]
    Endpoint {
        /// The file.
        path: PathBuf,
        /// The endpoint's name (or its position).
        endpoint: String,
        /// What to do about it.
        message: String,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    endpoint: Vec<Entry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    name: Option<String>,
    provider: Option<String>,
    base_url: Option<String>,
    key_env: Option<String>,
    #[serde(default)]
    no_auth: bool,
    #[serde(default)]
    models: Vec<String>,
    rpm: Option<toml::Value>,
    tpm: Option<toml::Value>,
    itpm: Option<toml::Value>,
    otpm: Option<toml::Value>,
    concurrency: Option<toml::Value>,
    weight: Option<f64>,
    overload_503: Option<bool>,
}

/// Reads the endpoints in `path`, each key from its variable in the environment.
pub fn load(path: &Path) -> Result<Vec<EndpointSpec>, EndpointsFileError> {
    let text = std::fs::read_to_string(path).map_err(|source| EndpointsFileError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse(path, &text, |var| std::env::var(var).ok())
}

/// Parses endpoints from `text` (named `path` in errors), reading keys with `env`.
pub fn parse(
    path: &Path,
    text: &str,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Vec<EndpointSpec>, EndpointsFileError> {
    let file: File = toml::from_str(text).map_err(|e| EndpointsFileError::Parse {
        path: path.to_owned(),
        message: e.to_string().trim_end().replace('\n', " "),
    })?;
    if file.endpoint.is_empty() {
        return Err(EndpointsFileError::Parse {
            path: path.to_owned(),
            message: "no [[endpoint]] tables; list at least one".to_owned(),
        });
    }
    let mut specs: Vec<EndpointSpec> = Vec::with_capacity(file.endpoint.len());
    for (i, entry) in file.endpoint.into_iter().enumerate() {
        let name = entry
            .name
            .clone()
            .unwrap_or_else(|| format!("endpoint {}", i + 1));
        let fail = |message: String| EndpointsFileError::Endpoint {
            path: path.to_owned(),
            endpoint: name.clone(),
            message,
        };
        if specs.iter().any(|s| s.name == name) {
            return Err(fail(
                "the name is used twice; give each endpoint its own".into(),
            ));
        }
        let provider = match &entry.provider {
            Some(p) => p.parse::<Provider>().map_err(fail)?,
            None => Provider::OpenAi,
        };
        if entry.base_url.is_none() && provider.default_base_url().is_none() {
            return Err(fail(format!(
                "provider {provider} needs base_url (the deployment's URL with ?api-version=...)"
            )));
        }
        let mut spec = EndpointSpec::new(name.clone(), provider, entry.base_url.clone());
        if !entry.no_auth {
            let var = entry
                .key_env
                .clone()
                .unwrap_or_else(|| provider.key_env().to_owned());
            let key = env(&var).filter(|k| !k.trim().is_empty()).ok_or_else(|| {
                fail(format!(
                    "its key variable {var} is not set (set it, name another with key_env, \
                     or say no_auth = true)"
                ))
            })?;
            spec.api_key = Some(ApiKey::new(key));
        }
        spec.models = entry.models.clone();
        let budget = |field: &str, value: &Option<toml::Value>| match value {
            None => Ok(Budget::Unlimited),
            Some(v) => budget_of(v).ok_or_else(|| {
                fail(format!(
                    "{field} must be a positive number, \"auto\" or \"auto:N\", not {v:?}"
                ))
            }),
        };
        spec.limits = Limits {
            rpm: budget("rpm", &entry.rpm)?,
            tpm: budget("tpm", &entry.tpm)?,
            itpm: budget("itpm", &entry.itpm)?,
            otpm: budget("otpm", &entry.otpm)?,
            ..Limits::default()
        };
        if let Some(c) = &entry.concurrency {
            spec.concurrency = concurrency_of(c).ok_or_else(|| {
                fail(format!(
                    "concurrency must be a number of at least 1, \"auto\" or \"auto:N\", not {c:?}"
                ))
            })?;
        }
        if let Some(w) = entry.weight {
            if !(w.is_finite() && w > 0.0) {
                return Err(fail(format!("weight must be a positive number, not {w}")));
            }
            spec.weight = w;
        }
        spec.overload_503 = entry.overload_503;
        specs.push(spec);
    }
    if specs.len() > 64 {
        return Err(EndpointsFileError::Parse {
            path: path.to_owned(),
            message: format!("{} endpoints; at most 64 can be used together", specs.len()),
        });
    }
    Ok(specs)
}

/// The ceiling of `concurrency = "auto"`, as the CLI's `--concurrency auto`.
const AUTO_CONCURRENCY_CEILING: usize = 512;

/// A concurrency: a number of at least 1, `"auto"` or `"auto:N"`.
fn concurrency_of(v: &toml::Value) -> Option<Concurrency> {
    let count = |n: u64| usize::try_from(n).ok().and_then(NonZeroUsize::new);
    match v {
        toml::Value::Integer(n) => count(u64::try_from(*n).ok()?).map(Concurrency::Fixed),
        toml::Value::String(s) if s == "auto" => Some(Concurrency::Auto {
            ceiling: NonZeroUsize::new(AUTO_CONCURRENCY_CEILING)?,
        }),
        toml::Value::String(s) => Some(Concurrency::Auto {
            ceiling: count(s.strip_prefix("auto:")?.parse().ok()?)?,
        }),
        _ => None,
    }
}

/// A budget: a positive number, `"auto"` or `"auto:N"`.
fn budget_of(v: &toml::Value) -> Option<Budget> {
    match v {
        toml::Value::Integer(n) => NonZeroU64::new(u64::try_from(*n).ok()?).map(Budget::Fixed),
        toml::Value::String(s) if s == "auto" => Some(Budget::auto()),
        toml::Value::String(s) => {
            let ceiling = s.strip_prefix("auto:")?.parse::<u64>().ok()?;
            Some(Budget::Auto {
                ceiling: Some(NonZeroU64::new(ceiling)?),
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(var: &str) -> Option<String> {
        (var != "UNSET").then(|| format!("key-of-{var}"))
    }

    #[test]
    fn reads_every_setting_with_defaults() {
        let text = r#"
            [[endpoint]]
            name = "east"
            provider = "azure"
            base_url = "https://east.example/openai/deployments/d?api-version=1"
            key_env = "EAST"
            models = ["gpt-4o"]
            rpm = 5000
            tpm = "auto:90000"
            concurrency = 32
            weight = 2.5

            [[endpoint]]
            base_url = "http://10.0.0.5:8000/v1"
            no_auth = true
            otpm = "auto"
            concurrency = "auto:128"
        "#;
        let specs = parse(Path::new("e.toml"), text, env).unwrap();
        let east = &specs[0];
        assert_eq!(
            (east.name.as_str(), east.provider),
            ("east", Provider::Azure)
        );
        assert_eq!(
            east.api_key.as_ref().map(ApiKey::expose),
            Some("key-of-EAST")
        );
        assert_eq!(east.limits.rpm, Budget::per_minute(5000));
        assert_eq!(
            east.limits.tpm,
            Budget::Auto {
                ceiling: NonZeroU64::new(90_000)
            }
        );
        assert_eq!(
            (east.concurrency, east.weight),
            (Concurrency::Fixed(NonZeroUsize::new(32).unwrap()), 2.5)
        );
        assert!(east.serves("gpt-4o") && !east.serves("gpt-4o-mini"));
        let vllm = &specs[1];
        assert_eq!(vllm.name, "endpoint 2");
        assert!(vllm.api_key.is_none() && vllm.serves("anything"));
        assert_eq!(vllm.limits.otpm, Budget::auto());
        assert_eq!(
            vllm.concurrency,
            Concurrency::Auto {
                ceiling: NonZeroUsize::new(128).unwrap()
            }
        );
    }

    #[test]
    fn names_the_endpoint_and_what_to_do() {
        let err = |text: &str| parse(Path::new("e.toml"), text, env).unwrap_err();
        assert!(matches!(
            err("[[endpoint]]\nname = \"a\"\nkey_env = \"UNSET\""),
            EndpointsFileError::Endpoint { .. }
        ));
        assert!(matches!(
            err("[[endpoint]]\nprovider = \"azure\""),
            EndpointsFileError::Endpoint { .. }
        ));
        assert!(matches!(
            err("[[endpoint]]\nrpm = -5"),
            EndpointsFileError::Endpoint { .. }
        ));
        assert!(matches!(
            err("[[endpoint]]\nname=\"x\"\n[[endpoint]]\nname=\"x\""),
            EndpointsFileError::Endpoint { .. }
        ));
        assert!(matches!(
            err("[[endpoint]]\nbase = 1"),
            EndpointsFileError::Parse { .. }
        ));
        assert!(matches!(err(""), EndpointsFileError::Parse { .. }));
    }
}
