//! Diagnostics with file:line:column positions, and the crate's error enum.

use std::fmt;

/// One problem found in a dialplan file, positioned for a human (1-based line and column).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, counted in characters (not bytes) so editors agree with it.
    pub column: usize,
    pub message: String,
}

impl Diagnostic {
    /// A diagnostic at a byte offset of `text`.
    pub fn at(file: &str, text: &str, byte_offset: usize, message: impl Into<String>) -> Self {
        let (line, column) = line_col(text, byte_offset);
        Diagnostic {
            file: file.to_owned(),
            line,
            column,
            message: message.into(),
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file, self.line, self.column, self.message
        )
    }
}

/// Every problem found in one file: validation never stops at the first one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    /// Sorted by position so the output reads top to bottom like the file.
    pub(crate) fn sorted(mut v: Vec<Diagnostic>) -> Self {
        v.sort_by_key(|d| (d.line, d.column));
        Diagnostics(v)
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

/// Errors of the dialplan crate outside of file validation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DialplanError {
    /// The called number has no entry and the plan has no `default` entry.
    #[error("no dialplan entry for called number {0:?} and no default entry")]
    NoEntry(String),
    /// The interpreter walked too many nodes without waiting for anything: a bad plan
    /// must never spin the daemon, so the call is hung up instead.
    #[error("dialplan ran {0} nodes without waiting for an event; call hung up")]
    StepLimit(usize),
}

/// 1-based (line, column) of `byte_offset` in `text`; the column counts characters.
///
/// An offset past the end maps to the end; an offset inside a multi-byte character maps
/// to that character. Public because the daemon positions its own config errors with it.
pub fn line_col(text: &str, byte_offset: usize) -> (usize, usize) {
    let offset = byte_offset.min(text.len());
    let before = &text.as_bytes()[..offset];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    // Count the characters wholly before the offset; works even when the offset is not on
    // a char boundary, which a slice `&text[line_start..offset]` would panic on.
    let column = text[line_start..]
        .char_indices()
        .take_while(|(i, c)| line_start + i + c.len_utf8() <= offset)
        .count()
        + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_lines_and_chars() {
        let t = "ab\ncé d\n";
        assert_eq!(line_col(t, 0), (1, 1));
        assert_eq!(line_col(t, 1), (1, 2));
        assert_eq!(line_col(t, 3), (2, 1));
        // 'é' is two bytes: the space after it is byte 6 but column 3.
        assert_eq!(line_col(t, 6), (2, 3));
        // Inside 'é' (byte 5) maps to the 'é' itself.
        assert_eq!(line_col(t, 5), (2, 2));
        assert_eq!(line_col(t, 999), (3, 1));
    }

    #[test]
    fn diagnostics_display_one_per_line() {
        let d = Diagnostics(vec![
            Diagnostic::at("f.toml", "x\ny", 2, "second"),
            Diagnostic::at("f.toml", "x\ny", 0, "first"),
        ]);
        assert_eq!(d.to_string(), "f.toml:2:1: second\nf.toml:1:1: first");
    }
}
