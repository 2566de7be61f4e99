//! Masking of card data for display and logs: a PAN shows at most its first
//! six and last four digits; track data shows the masked PAN and nothing
//! after it; secrets (PIN blocks, ICC data) show nothing.

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
