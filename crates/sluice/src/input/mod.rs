//! Reading input: a file (or stdin) of Batch API lines or plain prompts, streamed line by
//! line, each line becoming a request or a [`LineError`] that names the file and line.

mod detect;
mod lines;
mod parse;
mod priority;

use std::path::Path;
use std::pin::Pin;

use futures::Stream;
use tokio::io::{AsyncBufRead, BufReader};

pub use detect::{first_model, provider_of_input};
pub use lines::{Line, LineReader};
pub use parse::{LineError, LineErrorKind, PromptOptions, parse_priority};

use crate::journal::LineSet;
use crate::request::Request;

/// The input's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Format {
    /// Decided by the first line that tells: a usable Batch line means Batch lines, a line
    /// that does not start a JSON object means prompts. Bad Batch lines before it are
    /// reported and decide nothing.
    #[default]
    Auto,
    /// OpenAI Batch API lines.
    Batch,
    /// One prompt a line.
    Prompts,
}

/// How to read an input.
#[derive(Debug, Clone)]
pub struct InputOptions {
    /// The format.
    pub format: Format,
    /// Options for prompt lines (required for the prompts format).
    pub prompts: Option<PromptOptions>,
    /// Lines longer than this are errors (default 16 MiB).
    pub max_line_bytes: usize,
    /// Lines to pass over without parsing (those a previous run already recorded).
    pub skip: LineSet,
    /// How error messages name the settings that fix them.
    pub names: SettingNames,
}

/// How the input's error messages name the settings a person can change: the library's
/// own words by default; a front end (the CLI) gives its flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SettingNames {
    /// What gives plain prompt lines their model.
    pub model: &'static str,
    /// What raises the line-length limit.
    pub max_line_bytes: &'static str,
}

impl Default for SettingNames {
    fn default() -> Self {
        SettingNames {
            model: "a model for prompt lines (InputOptions::prompts)",
            max_line_bytes: "InputOptions::max_line_bytes",
        }
    }
}

impl Default for InputOptions {
    fn default() -> Self {
        InputOptions {
            format: Format::Auto,
            prompts: None,
            max_line_bytes: 16 * 1024 * 1024,
            skip: LineSet::default(),
            names: SettingNames::default(),
        }
    }
}

/// One input line's fate.
#[derive(Debug)]
pub enum InputItem {
    /// A request to send, with its line number.
    Request(u64, Request),
    /// A line that cannot be sent.
    Invalid(LineError),
    /// The input could not be read any further.
    Failed(std::io::Error),
    /// The end of the input, after this many lines.
    End(u64),
}

/// A stream of input items.
pub type InputStream = Pin<Box<dyn Stream<Item = InputItem> + Send>>;

/// Opens `path` (`-` for stdin) as a stream of items.
pub async fn open(path: &Path, mut options: InputOptions) -> std::io::Result<InputStream> {
    let skip = std::mem::take(&mut options.skip);
    start(path, options)?.finish(skip).await
}

/// An input being opened: the priority pass over the file runs on the blocking pool
/// meanwhile, so a caller can do other start-up work (a resume's scan of its records)
/// beside it and hand over the lines to skip when it has them.
pub struct Opening {
    path: std::path::PathBuf,
    options: InputOptions,
    plan: Option<tokio::task::JoinHandle<std::io::Result<Scanned>>>,
}

/// What the first pass over a file found: its priority plan, and where lines start.
struct Scanned {
    plan: Option<priority::PriorityPlan>,
    /// `(lines before, byte offset)` at line starts, in file order.
    marks: Vec<(u64, u64)>,
}

/// Starts opening `path`: the priority pass begins at once (for a file of Batch lines).
pub fn start(path: &Path, options: InputOptions) -> std::io::Result<Opening> {
    let plan = if path == Path::new("-") || options.format == Format::Prompts {
        None
    } else {
        // Fail now, not after the pass, when the file cannot be opened.
        std::fs::File::open(path)?;
        let owned = path.to_owned();
        let max = options.max_line_bytes;
        Some(tokio::task::spawn_blocking(move || {
            let mut marks = Vec::new();
            let plan = priority::PriorityPlan::scan(&owned, max, &mut marks)?;
            Ok(Scanned { plan, marks })
        }))
    };
    Ok(Opening {
        path: path.to_owned(),
        options,
        plan,
    })
}

impl Opening {
    /// The stream of items, passing over the lines in `skip`.
    pub async fn finish(self, skip: LineSet) -> std::io::Result<InputStream> {
        let mut options = self.options;
        options.skip = skip;
        if self.path == Path::new("-") {
            return Ok(read(
                "<stdin>".to_owned(),
                BufReader::with_capacity(256 * 1024, tokio::io::stdin()),
                options,
            ));
        }
        let mut file = tokio::fs::File::open(&self.path).await?;
        let scanned = match self.plan {
            Some(task) => task.await.map_err(std::io::Error::other)??,
            None => Scanned {
                plan: None,
                marks: Vec::new(),
            },
        };
        // Every line before the first without a record would only be passed over: start
        // reading at the last line start noted before it.
        let first = options.skip.first_absent();
        let start = scanned
            .marks
            .iter()
            .take_while(|(before, _)| *before < first)
            .last()
            .copied()
            .unwrap_or((0, 0));
        if start.1 > 0 {
            use tokio::io::AsyncSeekExt;
            file.seek(std::io::SeekFrom::Start(start.1)).await?;
        }
        let reader = BufReader::with_capacity(256 * 1024, file);
        Ok(read_planned(
            self.path.display().to_string(),
            LineReader::after(reader, options.max_line_bytes, start.0),
            options,
            scanned.plan,
        ))
    }
}

struct State<R> {
    name: String,
    lines: LineReader<R>,
    options: InputOptions,
    format: Format,
    done: bool,
    /// Whole-file priority: spooled lines served before (and after) the in-order read.
    plan: Option<priority::PriorityPlan>,
    phase: Phase,
}

/// The item for a line of `file` that cannot be sent.
fn invalid(
    file: &str,
    line: u64,
    kind: LineErrorKind,
    custom_id: Option<String>,
    message: String,
) -> InputItem {
    InputItem::Invalid(LineError {
        file: file.to_owned(),
        line,
        custom_id,
        kind,
        message,
    })
}

/// The item for a line of `file` longer than `limit`.
fn too_long(file: &str, line: u64, len: usize, limit: usize, names: SettingNames) -> InputItem {
    let message = format!(
        "line of {len} bytes is longer than the limit of {limit} ({})",
        names.max_line_bytes
    );
    invalid(file, line, LineErrorKind::TooLong, None, message)
}

/// Where the reader is in a file with priorities.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Serving lines of positive priority from their spools.
    High,
    /// Reading the file in order, passing over spooled lines.
    InOrder,
    /// Serving lines of negative priority; the in-order read ended after this many lines.
    Low(u64),
}

/// Reads items from any buffered reader. Nothing is read before the stream is polled, and
/// only one line at a time after.
pub fn read<R>(name: String, reader: R, options: InputOptions) -> InputStream
where
    R: AsyncBufRead + Unpin + Send + 'static,
{
    let lines = LineReader::new(reader, options.max_line_bytes);
    read_planned(name, lines, options, None)
}

fn read_planned<R>(
    name: String,
    lines: LineReader<R>,
    options: InputOptions,
    plan: Option<priority::PriorityPlan>,
) -> InputStream
where
    R: AsyncBufRead + Unpin + Send + 'static,
{
    let state = State {
        name,
        lines,
        format: options.format,
        options,
        done: false,
        phase: if plan.is_some() {
            Phase::High
        } else {
            Phase::InOrder
        },
        plan,
    };
    Box::pin(futures::stream::unfold(state, |mut s| async move {
        if s.done {
            return None;
        }
        let item = next_item(&mut s).await;
        if matches!(item, InputItem::Failed(_) | InputItem::End(_)) {
            s.done = true;
        }
        Some((item, s))
    }))
}

/// The next spooled line of the current phase that has no record yet.
fn next_spooled<R>(s: &mut State<R>, positive: bool) -> Option<std::io::Result<(u64, Vec<u8>)>> {
    let plan = s.plan.as_mut()?;
    loop {
        match plan.next(positive) {
            Ok(Some((line, _))) if s.options.skip.contains(line) => {}
            Ok(Some(x)) => return Some(Ok(x)),
            Ok(None) => return None,
            Err(e) => return Some(Err(e)),
        }
    }
}

async fn next_item<R: AsyncBufRead + Unpin>(s: &mut State<R>) -> InputItem {
    if s.phase == Phase::High {
        match next_spooled(s, true) {
            Some(Ok((number, bytes))) => return spooled_item(s, number, &bytes),
            Some(Err(e)) => return InputItem::Failed(e),
            None => s.phase = Phase::InOrder,
        }
    }
    if let Phase::Low(total) = s.phase {
        return match next_spooled(s, false) {
            Some(Ok((number, bytes))) => spooled_item(s, number, &bytes),
            Some(Err(e)) => InputItem::Failed(e),
            None => InputItem::End(total),
        };
    }
    // Lines a previous run recorded, and lines served from a priority spool, are passed
    // over without being copied or parsed.
    let passed_over = |s: &State<R>, n: u64| {
        s.options.skip.contains(n) || s.plan.as_ref().is_some_and(|p| p.spooled.contains(n))
    };
    while passed_over(s, s.lines.lines_read() + 1) {
        match s.lines.skip_line().await {
            Ok(true) => {}
            Ok(false) => return end_of_file(s),
            Err(e) => return InputItem::Failed(e),
        }
    }
    let (number, line) = match s.lines.next_line().await {
        Ok(Some(x)) => x,
        Ok(None) => return end_of_file(s),
        Err(e) => return InputItem::Failed(e),
    };
    let name = &s.name;
    let error = |kind, custom_id, message| invalid(name, number, kind, custom_id, message);
    let bytes = match line {
        Line::Text(t) => t,
        Line::TooLong(len) => {
            return too_long(name, number, len, s.options.max_line_bytes, s.options.names);
        }
    };
    // A UTF-8 byte order mark on the first line is not part of the content.
    let bytes = if number == 1 {
        bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes)
    } else {
        bytes
    };
    // Auto-detection decides on the first line that tells: a usable Batch line, or a line
    // that is not JSON at all. A bad Batch line (invalid JSON, no custom_id, too deeply
    // nested) is reported and decides nothing, so one bad first line cannot turn a whole
    // valid file into errors.
    let mut format = s.format;
    if format == Format::Auto && !bytes.trim_ascii().is_empty() {
        format = if parse::looks_like_batch(bytes) {
            Format::Batch
        } else {
            Format::Prompts
        };
    }
    let parsed = match (format, &s.options.prompts) {
        (Format::Prompts, Some(options)) => parse::parse_prompt_line(bytes, number, options),
        (Format::Prompts, None) => Err((
            LineErrorKind::InvalidJson,
            None,
            format!(
                "not a Batch API line (a JSON object with custom_id, method, url, body); \
                 to send plain prompts, give {}",
                s.options.names.model
            ),
        )),
        _ => parse::parse_batch_line(bytes),
    };
    if s.format == Format::Auto && (parsed.is_ok() || format == Format::Prompts) {
        s.format = format;
    }
    match parsed {
        Ok(request) => InputItem::Request(number, request.with_tag(number)),
        Err((kind, custom_id, message)) => error(kind, custom_id, message),
    }
}

/// The in-order read reached the end: the negative classes follow, if any.
fn end_of_file<R: AsyncBufRead + Unpin>(s: &mut State<R>) -> InputItem {
    let total = s.lines.lines_read();
    if s.plan.as_ref().is_some_and(|p| p.has_negative()) {
        s.phase = Phase::Low(total);
        // Served on the next poll; a request-less item is not needed here, so recurse once.
        match next_spooled(s, false) {
            Some(Ok((number, bytes))) => spooled_item(s, number, &bytes),
            Some(Err(e)) => InputItem::Failed(e),
            None => InputItem::End(total),
        }
    } else {
        InputItem::End(total)
    }
}

/// A line read back from a priority spool: a Batch line by construction of the spool.
fn spooled_item<R>(s: &State<R>, number: u64, bytes: &[u8]) -> InputItem {
    let mut bytes = bytes;
    while let Some(rest) = bytes
        .strip_suffix(b"\n")
        .or_else(|| bytes.strip_suffix(b"\r"))
    {
        bytes = rest;
    }
    if number == 1 {
        bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    }
    if bytes.len() > s.options.max_line_bytes {
        return too_long(
            &s.name,
            number,
            bytes.len(),
            s.options.max_line_bytes,
            s.options.names,
        );
    }
    match parse::parse_batch_line(bytes) {
        Ok(request) => InputItem::Request(number, request.with_tag(number)),
        Err((kind, custom_id, message)) => invalid(&s.name, number, kind, custom_id, message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

    async fn collect(input: &'static [u8], options: InputOptions) -> Vec<InputItem> {
        read("in.jsonl".into(), input, options).collect().await
    }

    #[tokio::test]
    async fn auto_detects_batch_and_reports_bad_lines_with_their_number() {
        let input: &[u8] = b"\xEF\xBB\xBF{\"custom_id\":\"a\",\"method\":\"POST\",\"url\":\"/v1/chat/completions\",\"body\":{\"model\":\"m\",\"messages\":[]}}\r\n{oops\n";
        let items = collect(input, InputOptions::default()).await;
        assert!(matches!(&items[0], InputItem::Request(1, r) if r.custom_id == "a"));
        let InputItem::Invalid(e) = &items[1] else {
            panic!("line 2 is bad")
        };
        assert_eq!(e.line, 2);
        assert!(e.to_string().starts_with("in.jsonl:2: invalid JSON"), "{e}");
    }

    #[tokio::test]
    async fn auto_looks_past_bad_first_lines() {
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        let good = "{\"custom_id\":\"a\",\"url\":\"/v1/embeddings\",\"body\":{\"model\":\"m\",\"input\":\"x\"}}";
        for bad in [
            "{oops".to_owned(),
            "{\"no_id\":1}".to_owned(),
            format!("{{\"d\":{deep}}}"),
        ] {
            let input = format!("{bad}\n{good}\n{}\n", good.replace("\"a\"", "\"b\""));
            let items: Vec<InputItem> = read(
                "in.jsonl".into(),
                std::io::Cursor::new(input.into_bytes()),
                InputOptions::default(),
            )
            .collect()
            .await;
            assert!(
                matches!(&items[0], InputItem::Invalid(e) if e.line == 1),
                "{bad}"
            );
            assert!(
                matches!(&items[1], InputItem::Request(2, _)),
                "{bad}: {:?}",
                items[1]
            );
            assert!(matches!(&items[2], InputItem::Request(3, _)), "{bad}");
        }
    }

    #[tokio::test]
    async fn prompts_need_a_model_and_get_line_number_ids() {
        let items = collect(b"hello\nworld", InputOptions::default()).await;
        assert!(
            matches!(&items[0], InputItem::Invalid(e) if e.message.contains(SettingNames::default().model))
        );
        let options = InputOptions {
            prompts: Some(PromptOptions {
                model: "m".into(),
                system: None,
                max_tokens: None,
                temperature: None,
            }),
            ..InputOptions::default()
        };
        let items = collect(b"hello\nworld", options).await;
        assert!(matches!(&items[1], InputItem::Request(2, r) if r.custom_id == "2" && r.tag == 2));
        assert!(matches!(&items[2], InputItem::End(2)));
    }
}
