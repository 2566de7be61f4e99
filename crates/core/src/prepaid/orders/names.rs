//! Text for the card producer's files: printable ASCII only, names in
//! capitals as they are embossed.
//!
//! Names (the orderer's, a holder's) are transliterated to ASCII capitals by
//! the Latin table of ICAO Doc 9303 part 3 (machine-readable travel
//! documents): `Ä` → `AE`, `Å` → `AA`, `Æ` → `AE`, `Ö` and `Ø` → `OE`, `Œ` →
//! `OE`, `Ü` → `UE`, `ß` → `SS`, `Þ` → `TH`, `Ĳ` → `IJ`, every other Latin
//! letter with a diacritic (Latin-1 Supplement, Latin Extended-A) to its
//! base letter. Digits, space and `- ' . , / &` pass as they are. Anything
//! else (other scripts, symbols, control characters) is refused with the
//! character and its position: the order is refused then, not a card
//! printed with a guess. An embossed name has at most [`NAME_LEN`]
//! characters after transliteration.

/// Characters of an embossed name line (ISO/IEC 7811 embossing).
pub const NAME_LEN: usize = 26;

/// Characters that are not letters but may be embossed.
const PUNCTUATION: &str = " -'.,/&";

/// Letters with diacritics and what they become (base letters, ICAO 9303).
const FOLDS: &[(&str, &str)] = &[
    ("ÄäÆæ", "AE"),
    ("Åå", "AA"),
    ("ÖöØøŒœ", "OE"),
    ("Üü", "UE"),
    ("ß", "SS"),
    ("Þþ", "TH"),
    ("Ĳĳ", "IJ"),
    ("ÀÁÂÃàáâãĀāĂăĄą", "A"),
    ("ÇçĆćĈĉĊċČč", "C"),
    ("ÐðĎďĐđ", "D"),
    ("ÈÉÊËèéêëĒēĔĕĖėĘęĚě", "E"),
    ("ĜĝĞğĠġĢģ", "G"),
    ("ĤĥĦħ", "H"),
    ("ÌÍÎÏìíîïĨĩĪīĬĭĮįİı", "I"),
    ("Ĵĵ", "J"),
    ("Ķķĸ", "K"),
    ("ĹĺĻļĽľĿŀŁł", "L"),
    ("ÑñŃńŅņŇňŉŊŋ", "N"),
    ("ÒÓÔÕòóôõŌōŎŏŐő", "O"),
    ("ŔŕŖŗŘř", "R"),
    ("ŚśŜŝŞşŠšſ", "S"),
    ("ŢţŤťŦŧ", "T"),
    ("ÙÚÛùúûŨũŪūŬŭŮůŰűŲų", "U"),
    ("Ŵŵ", "W"),
    ("ÝýÿŶŷŸ", "Y"),
    ("ŹźŻżŽž", "Z"),
];

/// A name that cannot be embossed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct NameError {
    /// Which name: `orderer name`, `holders[3]` (0-based).
    pub field: String,
    pub reason: String,
}

/// `name` as embossed: trimmed, transliterated to ASCII capitals.
///
/// # Errors
/// [`NameError`] when the name is empty, holds a character outside the
/// table (named with its 1-based position) or is longer than
/// [`NAME_LEN`] once transliterated.
pub fn emboss(field: &str, name: &str) -> Result<String, NameError> {
    let fail = |reason: String| NameError {
        field: field.to_string(),
        reason,
    };
    let trimmed = name.trim();
    if trimmed.is_empty() {
        return Err(fail("is empty".into()));
    }
    let mut out = String::with_capacity(trimmed.len());
    for (i, c) in trimmed.chars().enumerate() {
        if c.is_ascii_alphanumeric() || PUNCTUATION.contains(c) {
            out.push(c.to_ascii_uppercase());
        } else if let Some((_, to)) = FOLDS.iter().find(|(from, _)| from.contains(c)) {
            out.push_str(to);
        } else {
            return Err(fail(format!(
                "character {c:?} (U+{:04X}) at position {} cannot be embossed \
                 (ASCII letters and digits, Latin letters with diacritics, space and - ' . , / & only)",
                u32::from(c),
                i + 1
            )));
        }
    }
    if out.len() > NAME_LEN {
        return Err(fail(format!(
            "{:?} has {} characters once transliterated, more than {NAME_LEN}",
            out,
            out.len()
        )));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_become_ascii_capitals_by_the_icao_table() {
        assert_eq!(emboss("n", " Jürgen Åström ").unwrap(), "JUERGEN AASTROEM");
        assert_eq!(
            emboss("n", "Zoë O'Brien-Łukasz").unwrap(),
            "ZOE O'BRIEN-LUKASZ"
        );
        assert_eq!(emboss("n", "Straße 5 & Co.").unwrap(), "STRASSE 5 & CO.");
        assert_eq!(emboss("n", "Ĳsselmeer").unwrap(), "IJSSELMEER");
    }

    #[test]
    fn other_scripts_symbols_and_long_names_are_refused_with_context() {
        let e = emboss("holders[2]", "Иван").unwrap_err();
        assert_eq!(e.field, "holders[2]");
        assert!(
            e.reason.contains("'И'") && e.reason.contains("position 1"),
            "{e}"
        );
        let e = emboss("orderer name", "Café\u{7}").unwrap_err();
        assert!(e.reason.contains("position 5"), "{e}");
        assert!(emboss("n", "   ").unwrap_err().reason.contains("empty"));
        // 26 fits, 27 does not; a fold that grows the name counts.
        assert!(emboss("n", &"A".repeat(26)).is_ok());
        let e = emboss("n", &format!("{}Ä", "A".repeat(25))).unwrap_err();
        assert!(e.reason.contains("27 characters"), "{e}");
    }

    #[test]
    fn every_fold_is_ascii_capitals() {
        for (from, to) in FOLDS {
            assert!(to.bytes().all(|b| b.is_ascii_uppercase()), "{to}");
            assert!(from.chars().all(|c| !c.is_ascii()), "{from}");
        }
    }
}
