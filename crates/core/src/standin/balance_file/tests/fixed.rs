//! Fixed-width balance files: good files, signs, implied decimals,
//! structure and trailer problems, as-of times.

use super::*;

#[test]
fn fixed_good_file_with_leading_signs() {
    let text = [
        "H20261121220000".to_string(),
        detail("A-1001", "+000123450", "EUR"),
        detail("A-1002", "-000000300", "978"),
        detail("A-1003", "       700", "JPY"),
        "T000003+00000123850".to_string(),
    ]
    .join("\n");
    let f = format(FIXED);
    let (summary, _) = run(&f, text.as_bytes(), None).unwrap();
    assert_eq!(
        (summary.as_of, summary.rows),
        (at("2026-11-21T22:00:00Z"), 3)
    );
    assert_eq!(
        rows(&f, &format!("{text}\r\n")),
        [
            row("A-1001", 123450, "EUR", 2),
            row("A-1002", -300, "EUR", 3),
            row("A-1003", 700, "JPY", 4),
        ]
    );
}

#[test]
fn fixed_trailing_and_separate_signs() {
    let trailing = FIXED.replace("sign = \"leading\"", "sign = \"trailing\"");
    let text = [
        "H20261121220000".to_string(),
        detail("A-1", "    12345-", "EUR"),
        detail("A-2", "    00100+", "EUR"),
        "T00000200000012245-\n".to_string(),
    ]
    .join("\n");
    assert_eq!(
        rows(&format(&trailing), &text),
        [row("A-1", -12345, "EUR", 2), row("A-2", 100, "EUR", 3)]
    );
    let text = format!(
        "H20261121220000\n{}\nT00000100000012345+\n",
        detail("A-1", "    12345 ", "EUR")
    );
    let errs = problems(&format(&trailing), text.as_bytes(), None);
    assert_eq!(
        errs,
        [
            "line 2, column available (12-21): \"    12345 \" is not an amount with a trailing sign (sign \" \")"
        ]
    );

    let separate = FIXED
        .replace(
            "available = { start = 12, length = 10, sign = \"leading\" }",
            "available = { start = 12, length = 9, sign = { separate = 21 } }",
        )
        .replace(
            "total = { start = 8, length = 12, sign = \"leading\" }",
            "total = { start = 8, length = 11, sign = { separate = 19 } }",
        );
    let text = format!(
        "H20261121220000\nD{:<10}000012345-EUR\nD{:<10}000000100 EUR\nT00000200000012245-\n",
        "A-1", "A-2"
    );
    assert_eq!(
        rows(&format(&separate), &text),
        [row("A-1", -12345, "EUR", 2), row("A-2", 100, "EUR", 3)]
    );
}

#[test]
fn fixed_implied_decimals_other_than_the_currency_exponent() {
    let f = with(FIXED, "implied_decimals = 2");
    let text = [
        "H20261121220000".to_string(),
        detail("J-1", "+000012300", "JPY"),
        detail("K-1", "+000012345", "KWD"),
        "T000002+00000024645".to_string(),
    ]
    .join("\n");
    assert_eq!(
        rows(&f, &text),
        [row("J-1", 123, "JPY", 2), row("K-1", 123450, "KWD", 3)]
    );
    let text = text.replace("+000012300", "+000012345");
    let text = text.replace("+00000024645", "+00000024690");
    assert_eq!(
        problems(&f, text.as_bytes(), None),
        [
            "line 2, column available (12-21): 12345 with 2 implied decimals has more decimals than JPY (0)"
        ]
    );
}

#[test]
fn fixed_structure_problems_with_their_lines() {
    let f = format(FIXED);
    let text = [
        detail("A-1", "+000000100", "EUR"),
        "H20261121220000".to_string(),
        detail("A-2", "+00000x100", "EUR"),
        "DA-3     +0001".to_string(),
        detail("", "+000000100", "XYZ"),
        "X something".to_string(),
        detail("A-1", "+000000100", "EUR"),
        "T000009+00000000300".to_string(),
        detail("A-9", "+000000100", "EUR"),
    ]
    .join("\n");
    let errs = problems(&f, text.as_bytes(), None);
    let expected = [
        "line 1: missing header record: the file must start with a record of type \"H\"",
        "line 2: header record after the first line",
        "line 3, column available (12-21): \"+00000x100\" is not an amount with a leading sign",
        "line 4: truncated record: 14 bytes, a detail record needs 24",
        "line 5, column account (2-11): account is empty",
        "line 5, column currency (22-24): unknown currency \"XYZ\"",
        "line 6: unknown record type: the record starts \"X someth\", expected \"H\", \"D\" or \"T\"",
        "line 7, column account (2-11): account \"A-1\" already on line 1",
        "line 8, column count (2-7): trailer count 9, the file has 5 detail records",
        "line 9: record after the trailer on line 8",
    ];
    assert_eq!(errs, expected);
}

#[test]
fn fixed_trailer_total_and_missing_trailer() {
    let f = format(FIXED);
    let good = [
        "H20261121220000".to_string(),
        detail("A-1", "+000000100", "EUR"),
        detail("A-2", "-000000050", "EUR"),
    ]
    .join("\n");
    assert_eq!(
        problems(
            &f,
            format!("{good}\nT000002+00000000051\n").as_bytes(),
            None
        ),
        ["line 4, column total (8-19): trailer total 51, the detail amounts add up to 50"]
    );
    assert_eq!(
        problems(&f, good.as_bytes(), None),
        ["line 4: no trailer record (type \"T\") after line 3: the file is cut short"]
    );
    assert_eq!(
        problems(&f, b"", None),
        ["line 1: empty file: no header record"]
    );
    let BalanceFormat::Fixed(mut fixed) = format(FIXED) else {
        unreachable!()
    };
    fixed.trailer.counts = Counted::Records;
    fixed.trailer.total = None;
    let f = BalanceFormat::Fixed(fixed);
    let (summary, _) = run(&f, format!("{good}\nT000004\n").as_bytes(), None).unwrap();
    assert_eq!(summary.rows, 2);
}

#[test]
fn fixed_as_of_in_a_time_zone_or_supplied() {
    let f = format(&FIXED.replace(
        "as_of_format = \"%Y%m%d%H%M%S\"",
        "as_of_format = \"%Y%m%d%H%M%S\"\ntime_zone = \"Europe/Stockholm\"",
    ));
    let text = "H20261121230000\nT000000+00000000000\n";
    let (summary, rows) = run(&f, text.as_bytes(), None).unwrap();
    assert_eq!((summary.as_of, rows.len()), (at("2026-11-21T22:00:00Z"), 0));

    let f = format(&FIXED.replace("as_of = { start = 2, length = 14 }\n", ""));
    let supplied = at("2026-11-21T22:00:00Z");
    let (summary, _) = run(&f, text.as_bytes(), Some(supplied)).unwrap();
    assert_eq!(summary.as_of, supplied);

    let f = format(FIXED);
    assert_eq!(
        problems(&f, b"H2026112X220000\nT000000+00000000000\n", None),
        [
            "line 1, column as_of (2-15): \"2026112X220000\" is not a time in the format \"%Y%m%d%H%M%S\""
        ]
    );
}
