//! Lines whose `custom_id` the compact id set suspects of being a duplicate
//! ([`crate::journal::IdSet::compact`]): held back, not sent, until the input has been read
//! to its end; then the input is read again and each suspect's id compared with the ids
//! themselves. A suspect whose id truly appears on an earlier line is a duplicate; any
//! other was another id with the same key, and is sent then.
//!
//! Among a million ids a false suspect comes about once in 500 runs, among ten million in
//! one run of six: the second reading is rare, and costs one pass over the file.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use futures::{Stream, StreamExt};

use crate::input::{InputItem, InputOptions};
use crate::request::Request;

/// Suspects held back, with their input lines.
#[derive(Debug, Clone, Default)]
pub(super) struct Suspects(Arc<Mutex<Vec<(u64, Request)>>>);

/// Where the input can be read again.
#[derive(Debug, Clone)]
pub(super) struct Reread {
    pub path: PathBuf,
    pub options: InputOptions,
}

/// What confirming found of one suspect.
pub(super) enum Verdict {
    /// Not a duplicate after all: send it.
    Send(Request),
    /// Its id is on an earlier line.
    Duplicate(u64, String),
    /// The input could not be read again: the suspects stay without a record (a later run
    /// looks at them again).
    Unread(std::io::Error),
}

impl Suspects {
    /// Holds back `request` of input line `line`.
    pub(super) fn hold(&self, line: u64, request: Request) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((line, request));
    }

    /// Once polled (after the input's end), reads the input again and says what each
    /// suspect is.
    pub(super) fn confirm(self, reread: Reread) -> impl Stream<Item = Verdict> + Send {
        futures::stream::once(async move {
            let held = std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()));
            if held.is_empty() {
                return Vec::new();
            }
            let mut first: HashMap<String, u64> = held
                .iter()
                .map(|(_, r)| (r.custom_id.clone(), u64::MAX))
                .collect();
            let mut options = reread.options;
            options.skip = Default::default();
            let mut input = match crate::input::open(&reread.path, options).await {
                Ok(input) => input,
                Err(e) => return vec![Verdict::Unread(e)],
            };
            while let Some(item) = input.next().await {
                match item {
                    InputItem::Request(line, r) => {
                        if let Some(at) = first.get_mut(&r.custom_id) {
                            *at = (*at).min(line);
                        }
                    }
                    InputItem::Failed(e) => return vec![Verdict::Unread(e)],
                    InputItem::Invalid(_) | InputItem::End(_) => {}
                }
            }
            held.into_iter()
                .map(|(line, request)| {
                    if first.get(&request.custom_id).is_some_and(|&at| at < line) {
                        Verdict::Duplicate(line, request.custom_id)
                    } else {
                        Verdict::Send(request)
                    }
                })
                .collect()
        })
        .flat_map(futures::stream::iter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::Endpoint;

    fn line(id: &str) -> String {
        format!(
            "{{\"custom_id\":\"{id}\",\"url\":\"/v1/chat/completions\",\"body\":{{\"model\":\"m\",\"messages\":[]}}}}\n"
        )
    }

    #[tokio::test]
    async fn a_true_duplicate_is_confirmed_and_a_key_twin_is_sent() {
        let dir = std::env::temp_dir().join(format!("sluice-suspects-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("in.jsonl");
        std::fs::write(&path, [line("a"), line("b"), line("a"), line("c")].concat()).unwrap();
        let suspects = Suspects::default();
        let request =
            |id: &str| Request::new(id, Endpoint::ChatCompletions, &serde_json::json!({}));
        // Line 3 repeats line 1's id; line 4's id only shares a key with an earlier one.
        suspects.hold(3, request("a"));
        suspects.hold(4, request("c"));
        let verdicts: Vec<Verdict> = suspects
            .confirm(Reread {
                path: path.clone(),
                options: InputOptions::default(),
            })
            .collect()
            .await;
        assert!(matches!(&verdicts[0], Verdict::Duplicate(3, id) if id == "a"));
        assert!(matches!(&verdicts[1], Verdict::Send(r) if r.custom_id == "c"));
        // An input that cannot be read again leaves them for a later run.
        let gone = Suspects::default();
        gone.hold(2, request("b"));
        let verdicts: Vec<Verdict> = gone
            .confirm(Reread {
                path: dir.join("missing.jsonl"),
                options: InputOptions::default(),
            })
            .collect()
            .await;
        assert!(matches!(verdicts[..], [Verdict::Unread(_)]));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
