//! The command printed after a run to resume it or to send its failures again: this
//! process's command line, shell-quoted, without the flags that only make sense once, and
//! with the values of credential headers redacted (a credential given as `--header` would
//! otherwise be printed for anyone reading the terminal or the log). The key itself comes
//! from the environment and is never on the command line.

use sluice::is_secret_header;
use sluice::redact::REDACTED;

use super::run::RunArgs;

/// How to run this batch again.
#[derive(Debug)]
pub struct ResumeHint {
    command: String,
    from_stdin: bool,
    redacted: bool,
}

impl ResumeHint {
    /// The hint for this process's command line.
    pub fn new(args: &RunArgs) -> Self {
        let (command, redacted) = rebuild(std::env::args());
        ResumeHint {
            command,
            from_stdin: args.input.input.as_os_str() == "-",
            redacted,
        }
    }

    /// Lines that say how to resume, `purpose` leading ("to resume").
    pub fn resume(&self, purpose: &str) -> String {
        if self.from_stdin {
            return "  the input came from stdin, which cannot be checked on a resume: save it to a \
                    file and run on the file to be able to resume"
                .to_owned();
        }
        format!(
            "{purpose}, run the same command again:\n  {}{}",
            self.command,
            self.note()
        )
    }

    /// Lines that say how to send the failures again.
    pub fn retry_failed(&self) -> String {
        if self.from_stdin {
            return "  (not possible for stdin input: save it to a file first)".to_owned();
        }
        format!("  {} --retry-failed{}", self.command, self.note())
    }

    fn note(&self) -> &'static str {
        if self.redacted {
            "\n  (secrets are shown as [REDACTED]: give them again as before)"
        } else {
            ""
        }
    }
}

/// The shell-quoted command line without `--restart` and `--retry-failed`, with the values
/// of credential headers replaced; and whether any was.
fn rebuild(args: impl Iterator<Item = String>) -> (String, bool) {
    let mut redacted = false;
    let mut words = Vec::new();
    let mut header_next = false;
    for arg in args {
        if arg == "--restart" || arg == "--retry-failed" {
            continue;
        }
        let word = if header_next {
            hide_credential(&arg)
        } else if let Some(value) = arg.strip_prefix("--header=") {
            format!("--header={}", hide_credential(value))
        } else {
            arg.clone()
        };
        header_next = arg == "--header";
        redacted |= word != arg;
        words.push(quote(&word));
    }
    (words.join(" "), redacted)
}

/// `Name: value` with the value replaced when the name is a credential's.
fn hide_credential(header: &str) -> String {
    match header.split_once(':') {
        Some((name, _)) if is_secret_header(name) => format!("{name}: {REDACTED}"),
        _ => header.to_owned(),
    }
}

fn quote(word: &str) -> String {
    if !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@+".contains(c))
    {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(list: &[&str]) -> impl Iterator<Item = String> {
        list.iter()
            .map(|s| (*s).to_owned())
            .collect::<Vec<_>>()
            .into_iter()
    }

    #[test]
    fn credential_headers_and_secrets_are_redacted_and_once_only_flags_dropped() {
        let (cmd, redacted) = rebuild(words(&[
            "sluice",
            "run",
            "in.jsonl",
            "--header",
            "Authorization: Bearer tok-123",
            "--header=X-Api-Key: k-9",
            "--header",
            "X-Trace: on",
            "--restart",
            "--max-line-bytes",
            "1MiB",
        ]));
        assert!(redacted);
        assert!(!cmd.contains("tok-123") && !cmd.contains("k-9"));
        assert!(cmd.contains("--max-line-bytes 1MiB"), "{cmd}");
        assert!(cmd.contains("'X-Trace: on'"));
        assert!(!cmd.contains("--restart"));
        let (plain, redacted) = rebuild(words(&["sluice", "run", "a b"]));
        assert_eq!(plain, "sluice run 'a b'");
        assert!(!redacted);
    }
}
