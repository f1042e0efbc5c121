//! [`Priority`]: named levels for [`crate::Request::with_priority`].

/// How soon a request goes, against others waiting for admission: higher first, and in
/// submission order within a level. Any `i32` works too; these are the usual three.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Priority {
    /// After everything else waiting.
    Low,
    /// The default.
    #[default]
    Normal,
    /// Before everything else waiting.
    High,
}

impl From<Priority> for i32 {
    fn from(p: Priority) -> i32 {
        match p {
            Priority::Low => -10,
            Priority::Normal => 0,
            Priority::High => 10,
        }
    }
}
