//! [`Messages`]: failure messages with their counts, for a summary's most common ones.

use std::collections::HashMap;

/// Failure messages with their counts, for the summary's most common ones. Bounded: past
/// 10,000 distinct messages, new ones are only counted as "other".
#[derive(Debug, Default)]
pub struct Messages {
    counts: HashMap<(&'static str, String), u64>,
    /// Failures whose message was not kept.
    pub other: u64,
}

impl Messages {
    const MAX: usize = 10_000;

    pub(crate) fn add(&mut self, code: &'static str, message: &str) {
        if let Some(n) = self.counts.get_mut(&(code, message.to_owned())) {
            *n += 1;
        } else if self.counts.len() < Self::MAX {
            self.counts.insert((code, message.to_owned()), 1);
        } else {
            self.other += 1;
        }
    }

    pub(crate) fn merged(mut self, other: Messages) -> Messages {
        for ((code, message), n) in other.counts {
            *self.counts.entry((code, message)).or_default() += n;
        }
        self.other += other.other;
        self
    }

    /// The `n` most common, most frequent first: count, error code, message.
    pub fn top(&self, n: usize) -> Vec<(u64, &'static str, &str)> {
        let mut all: Vec<_> = self
            .counts
            .iter()
            .map(|((code, message), count)| (*count, *code, message.as_str()))
            .collect();
        all.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.2.cmp(b.2)));
        all.truncate(n);
        all
    }
}
