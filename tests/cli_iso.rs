//! `cardhub iso decode | encode` as a user runs it: the real binary, real files.

use std::process::Command;

fn cardhub(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_cardhub"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn decode_prints_fields_with_card_data_masked() {
    let (ok, out, err) = cardhub(&["iso", "decode", "fixtures/iso8583/base24/0100.hex"]);
    assert!(ok, "{err}");
    assert!(out.contains("MTI      0100"), "{out}");
    assert!(out.contains("BASE24 product 02 POS"), "{out}");
    assert!(out.contains("Primary account number"), "{out}");
    assert!(out.contains("476173******0010"), "{out}");
    assert!(!out.contains("4761739001010010"), "full PAN leaked:\n{out}");
    assert!(
        !out.contains("7A3F9C21D4E5B608"),
        "PIN block leaked:\n{out}"
    );
}

#[test]
fn decode_json_of_binary_dialect_and_hex_argument() {
    let hex = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/iso8583/iso87-binary/0800.hex"),
    )
    .unwrap();
    let (ok, out, err) = cardhub(&[
        "iso",
        "decode",
        "--dialect",
        "iso87-binary",
        "--json",
        hex.trim(),
    ]);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["mti"], "0800");
    assert_eq!(v["fields"]["70"], "001");
}

#[test]
fn encode_reproduces_the_fixture_bytes() {
    let (ok, out, err) = cardhub(&["iso", "encode", "fixtures/iso8583/base24/0200.json"]);
    assert!(ok, "{err}");
    let expected = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/iso8583/base24/0200.hex"),
    )
    .unwrap();
    assert_eq!(out.trim(), expected.trim());
}

#[test]
fn a_broken_message_gives_a_precise_error() {
    let (ok, _, err) = cardhub(&["iso", "decode", "49534F3032363030303037303031303030"]);
    assert!(!ok);
    assert!(
        err.contains("primary bitmap: needs 16 bytes at offset 16"),
        "{err}"
    );
    let (ok, _, err) = cardhub(&["iso", "decode", "--dialect", "nonesuch", "00"]);
    assert!(!ok);
    assert!(err.contains("unknown dialect \"nonesuch\""), "{err}");
}

/// A reader that goes away (`cardhub iso decode - | head -0`) ends the
/// command quietly, with the status a shell shows for SIGPIPE, not with a
/// panic or an error.
#[test]
fn a_closed_pipe_ends_the_command_quietly() {
    use std::io::Write;
    use std::process::Stdio;

    let mut child = Command::new(env!("CARGO_BIN_EXE_cardhub"))
        .args(["iso", "decode", "-"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The reader closes before the command has its input, so before it
    // prints anything.
    drop(child.stdout.take());
    let hex = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/iso8583/base24/0100.hex"),
    )
    .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(hex.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(141),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
