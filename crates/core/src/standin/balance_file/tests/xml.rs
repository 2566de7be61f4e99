//! XML balance files: good files, prefixes and as-of elements, record
//! problems, malformed files, encodings.

use super::*;

#[test]
fn xml_good_file() {
    let text = r#"<?xml version="1.0" encoding="UTF-8"?>
<!-- balances of bank A -->
<Balances xmlns="urn:example:balances" asOf="2026-11-21T22:00:00Z">
  <Account number="A-1001"><Available currency="EUR">1234.50</Available></Account>
  <Account number="A-1002">
    <Name>B &amp; C</Name>
    <Available currency="978"> -3.00 </Available>
  </Account>
  <Account number="J-1"><Available currency="JPY"><![CDATA[1250]]></Available></Account>
  <Other><Account number="ignored"/></Other>
</Balances>
"#;
    let f = format(XML);
    let (summary, _) = run(&f, text.as_bytes(), None).unwrap();
    assert_eq!(
        (summary.as_of, summary.rows),
        (at("2026-11-21T22:00:00Z"), 3)
    );
    assert_eq!(
        rows(&f, text),
        [
            row("A-1001", 123450, "EUR", 4),
            row("A-1002", -300, "EUR", 5),
            row("J-1", 1250, "JPY", 9),
        ]
    );
}

#[test]
fn xml_elements_prefixes_and_an_as_of_element() {
    let f = format(
        r##"
format = "xml"
record = "File/Accounts/Acct"
account = "Id"
available = "Bal/Amt"
currency_code = "KWD"
as_of = "File/Header/AsOf"
as_of_format = "%Y-%m-%d %H:%M"
"##,
    );
    let text = r#"<b:File xmlns:b="urn:b"><b:Header><b:AsOf>2026-11-21 22:00</b:AsOf></b:Header>
<b:Accounts>
<b:Acct><b:Id>K-1</b:Id><b:Bal><b:Amt>1.250</b:Amt></b:Bal></b:Acct>
<b:Acct><b:Bal><b:Amt>-0.5</b:Amt></b:Bal><b:Id>K-2</b:Id></b:Acct>
</b:Accounts></b:File>"#;
    let (summary, _) = run(&f, text.as_bytes(), None).unwrap();
    assert_eq!(summary.as_of, at("2026-11-21T22:00:00Z"));
    assert_eq!(
        rows(&f, text),
        [row("K-1", 1250, "KWD", 3), row("K-2", -500, "KWD", 4)]
    );
}

#[test]
fn xml_record_problems_with_their_lines() {
    let text = r#"<Balances asOf="2026-11-21T22:00:00Z">
  <Account number="A-1"><Available currency="EUR">12,3x</Available></Account>
  <Account number="A-2"></Account>
  <Account number="A-3">
    <Available currency="EUR">1.00</Available>
    <Available currency="EUR">2.00</Available>
  </Account>
  <Account number="A-1"><Available currency="XYZ">1.00</Available></Account>
  <Account number=""><Available currency="EUR">1.00</Available></Account>
  <Account number="A-4"><Available currency="EUR">1.00</Available></Account>
  <Account number="A-4"><Available currency="EUR">1.00</Available></Account>
</Balances>"#;
    let errs = problems(&format(XML), text.as_bytes(), None);
    let expected = [
        "line 2, column Available: \"12,3x\" is not an amount in EUR",
        "line 3, column Available/@currency: missing from the record",
        "line 3, column Available: missing from the record",
        "line 6, column Available/@currency: appears twice in the record (first on line 5)",
        "line 6, column Available: appears twice in the record (first on line 5)",
        "line 8, column Available/@currency: unknown currency \"XYZ\"",
        "line 9, column @number: account is empty",
        "line 11, column @number: account \"A-4\" already on line 10",
    ];
    assert_eq!(errs, expected);
}

#[test]
fn xml_malformed_files_end_the_read_with_their_line() {
    let f = format(XML);
    let head = "<Balances asOf=\"2026-11-21T22:00:00Z\">\n";
    let good = "<Account number=\"A-1\"><Available currency=\"EUR\">1.00</Available></Account>\n";
    let cases: [(String, &str); 8] = [
        (
            format!("{head}{good}<Account number=\"A-2\">\n</Acount>\n</Balances>"),
            "line 4: malformed XML",
        ),
        (
            format!("{head}{good}"),
            "line 3: the file ends inside <Balances>: it is cut short",
        ),
        (
            format!("<!DOCTYPE x [<!ENTITY e \"e\">]>\n{head}</Balances>"),
            "line 1: DOCTYPE refused: no DTDs or entities",
        ),
        (
            format!("{head}\n<Account number=\"&e;\"/></Balances>"),
            "line 3: undeclared entity &e;",
        ),
        (
            format!("{head}&#1;</Balances>"),
            "line 2: invalid character reference &#1;",
        ),
        (
            format!("<Other>\n{good}</Other>"),
            "line 1: the root element is <Other>, the format expects <Balances>",
        ),
        (
            format!("{head}<x:Account/></Balances>"),
            "line 2: undeclared namespace prefix \"x\"",
        ),
        (
            format!("{head}{good}</Balances>\n<Balances/>"),
            "line 4: a second root element <Balances>",
        ),
    ];
    for (text, want) in cases {
        let errs = problems(&f, text.as_bytes(), None);
        assert!(
            errs.last().is_some_and(|e| e.starts_with(want)),
            "{text}\n{errs:#?}"
        );
    }
    let text = format!("{head}{good}<Account number=\"A-#\"/>\n</Balances>");
    let mut bytes = text.into_bytes();
    let at = bytes.iter().position(|&b| b == b'#').unwrap();
    bytes[at] = 0xff;
    assert_eq!(problems(&f, &bytes, None), ["line 3: not UTF-8 text"]);
}

#[test]
fn xml_as_of_missing_differs_or_declared_in_another_encoding() {
    let f = format(XML);
    let good = "<Account number=\"A-1\"><Available currency=\"EUR\">1.00</Available></Account>";
    let text = format!("<Balances>{good}</Balances>");
    assert_eq!(
        problems(&f, text.as_bytes(), None),
        ["file: no as-of: neither the file nor its sender gives one"]
    );
    let supplied = at("2026-11-21T22:00:00Z");
    assert_eq!(
        run(&f, text.as_bytes(), Some(supplied)).unwrap().0.as_of,
        supplied
    );
    let text = format!(
        "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>\n<Balances asOf=\"2026-11-21T22:00:00Z\">{good}</Balances>"
    );
    assert!(run(&f, text.as_bytes(), None).is_ok());
    let text = text.replace("A-1", "A-\u{e9}");
    assert_eq!(
        problems(&f, text.as_bytes(), None),
        ["line 2: declares encoding \"ISO-8859-1\" and is not ASCII; only UTF-8 is read"]
    );
}
