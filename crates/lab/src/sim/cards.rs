//! The cards file of `sim flood --cards`: one PAN per line; `#` comments
//! and blank lines are ignored; every PAN is checked (12–19 digits).

use std::path::Path;

use super::SimError;
use cardhub_core::iso8583::fields::Pan;

/// Largest cards file read, in bytes (about two million cards).
const MAX_CARDS_FILE: u64 = 64 << 20;

/// Reads and checks a cards file.
///
/// # Errors
/// [`SimError::CardsRead`] when it cannot be read or is too large, otherwise
/// as [`parse_cards`].
pub fn load_cards(path: &Path) -> Result<Vec<Pan>, SimError> {
    let read_error = |source| SimError::CardsRead {
        path: path.to_path_buf(),
        source,
    };
    let size = std::fs::metadata(path).map_err(read_error)?.len();
    if size > MAX_CARDS_FILE {
        return Err(read_error(std::io::Error::other(format!(
            "{size} bytes, more than the {MAX_CARDS_FILE} a cards file may have"
        ))));
    }
    let text = std::fs::read_to_string(path).map_err(read_error)?;
    parse_cards(&text, path)
}

/// Parses the text of a cards file; `path` names it in errors.
///
/// # Errors
/// [`SimError::Cards`] naming the first line that is not a PAN,
/// [`SimError::NoCards`] when there is no PAN at all.
pub fn parse_cards(text: &str, path: &Path) -> Result<Vec<Pan>, SimError> {
    let mut cards = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let content = line
            .split_once('#')
            .map_or(line, |(before, _)| before)
            .trim();
        if content.is_empty() {
            continue;
        }
        let pan = Pan::new(content).map_err(|source| SimError::Cards {
            path: path.to_path_buf(),
            line: index + 1,
            source,
        })?;
        cards.push(pan);
    }
    if cards.is_empty() {
        return Err(SimError::NoCards {
            path: path.to_path_buf(),
        });
    }
    Ok(cards)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_and_blank_lines_are_skipped() {
        let text = "# test cards\n4761739001010010\n\n  5413330089010608  # mastercard\n\t\n";
        let cards = parse_cards(text, Path::new("cards.txt")).unwrap();
        let pans: Vec<&str> = cards.iter().map(Pan::expose).collect();
        assert_eq!(pans, ["4761739001010010", "5413330089010608"]);
    }

    #[test]
    fn a_bad_line_is_named() {
        for bad in [
            "47617390010",
            "4761739001010010123456",
            "4761-7390-0101-0010",
        ] {
            let text = format!("# cards\n4761739001010010\n\n{bad}\n");
            let err = parse_cards(&text, Path::new("cards.txt")).unwrap_err();
            assert!(
                matches!(err, SimError::Cards { line: 4, .. }),
                "{bad}: {err:?}"
            );
            let shown = err.to_string();
            assert!(shown.contains("cards.txt, line 4"), "{shown}");
        }
    }

    #[test]
    fn no_cards_is_an_error() {
        let err = parse_cards("# nothing\n\n", Path::new("empty.txt")).unwrap_err();
        assert!(matches!(err, SimError::NoCards { .. }), "{err:?}");
    }

    #[test]
    fn missing_file_names_it() {
        let err = load_cards(Path::new("no/such/cards.txt")).unwrap_err();
        assert!(err.to_string().contains("no/such/cards.txt"), "{err}");
    }
}
