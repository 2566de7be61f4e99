//! Masking of card data for display and logs: a PAN shows at most its first
//! six and last four digits; track data shows the masked PAN and nothing
//! after it; secrets (PIN blocks, ICC data) show nothing; free text (an
//! error, a vendor's message) has every run of 12+ digits masked.

/// What a secret value is shown as.
pub const SECRET: &str = "[hidden]";

/// Masks a card number: first 6 + last 4 for 13 digits or more, last 4 for
/// 8–12 digits, nothing for shorter values.
pub fn pan(pan: &str) -> String {
    let n = pan.chars().count();
    let (head, tail) = match n {
        13.. => (6, 4),
        8..=12 => (0, 4),
        _ => (0, 0),
    };
    pan.chars()
        .enumerate()
        .map(|(i, c)| if i < head || i >= n - tail { c } else { '*' })
        .collect()
}

/// [`pan`] for raw field bytes.
pub fn pan_bytes(value: &[u8]) -> String {
    pan(&String::from_utf8_lossy(value))
}

/// Masks track data: the PAN before the first separator (`=`, `D` or `^`)
/// is masked with [`pan`], every character after it becomes `*`.
pub fn track(track: &str) -> String {
    let body = track.trim_start_matches([';', '%', 'B']);
    let lead = &track[..track.len() - body.len()];
    match body.find(['=', 'D', '^']) {
        Some(at) => format!(
            "{lead}{}{}",
            pan(&body[..at]),
            "*".repeat(body[at..].chars().count())
        ),
        None => format!("{lead}{}", pan(body)),
    }
}

/// [`track`] for raw field bytes.
pub fn track_bytes(value: &[u8]) -> String {
    track(&String::from_utf8_lossy(value))
}

/// A value fit to echo in a message: every run of 12 or more digits (a
/// card number in the wrong column, say) is masked like a PAN.
pub fn redact_pans(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut digits = String::new();
    let flush = |digits: &mut String, out: &mut String| {
        if digits.len() >= 12 {
            out.push_str(&pan(digits));
        } else {
            out.push_str(digits);
        }
        digits.clear();
    };
    for c in text.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
        } else {
            flush(&mut digits, &mut out);
            out.push(c);
        }
    }
    flush(&mut digits, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pan_shows_first_six_last_four() {
        assert_eq!(pan("4761739001010010"), "476173******0010");
        assert_eq!(pan("4761739001010010123"), "476173*********0123");
        assert_eq!(pan("123456789012"), "********9012");
        assert_eq!(pan("1234"), "****");
    }

    #[test]
    fn card_numbers_in_free_text_are_masked() {
        assert_eq!(redact_pans("frozen"), "frozen");
        assert_eq!(redact_pans("A-1001"), "A-1001");
        assert_eq!(redact_pans("4761739001010010"), "476173******0010");
        assert_eq!(redact_pans("x4761739001010010y"), "x476173******0010y");
    }

    #[test]
    fn track_hides_everything_after_the_pan() {
        assert_eq!(
            track("4761739001010010=25121011234567"),
            "476173******0010***************"
        );
        assert_eq!(track(";4761739001010010=2512?"), ";476173******0010******");
        assert_eq!(
            track("4761739001010010D2512101"),
            "476173******0010********"
        );
        assert_eq!(
            track("B4761739001010010^DOE/JOHN^2512"),
            "B476173******0010**************"
        );
    }
}
