//! The hub's SOAP answers and faults: rendered, read back, compared with
//! the canonical samples, escaped, card numbers masked; each kept for
//! `scripts/check-wsdl`.

use super::*;

#[test]
fn rendered_answers_read_back_and_are_kept_for_check_wsdl() {
    let errors = [
        LineErrorOut {
            line: 3,
            column: Some("8".into()),
            reason: "available: not an integer amount in minor units".into(),
        },
        LineErrorOut {
            line: 4,
            column: Some("available".into()),
            reason: "not an integer".into(),
        },
        LineErrorOut {
            line: 0,
            column: None,
            reason: "file-level".into(),
        },
    ];
    for v in [SoapVersion::V11, SoapVersion::V12] {
        let ver = if v == SoapVersion::V11 { "11" } else { "12" };
        let env = v.namespace();

        let xml = status_response(v, InstitutionState::OfflineOnly);
        let doc = read(&xml);
        let body = soap::body(&doc, v).unwrap();
        let resp = doc.child(body, NAMESPACE, "StatusNotifyResponse").unwrap();
        let state = doc.child(resp, NAMESPACE, "state").unwrap();
        assert_eq!(doc.text(state), "OFFLINE_ONLY");
        keep_for_check_wsdl(&format!("status-notify-response.soap{ver}.xml"), &xml);
        for (i, held) in InstitutionState::ALL.into_iter().enumerate() {
            let xml = status_response(v, held);
            keep_for_check_wsdl(&format!("hub-status-{i}.soap{ver}.xml"), &xml);
        }

        let xml = balances_accepted(v, u64::MAX);
        assert!(xml.contains("<hub:records>18446744073709551615</hub:records>"));
        keep_for_check_wsdl(&format!("submit-balances-response.soap{ver}.xml"), &xml);
        let xml = balances_accepted(v, 0);
        keep_for_check_wsdl(&format!("hub-accepted-empty.soap{ver}.xml"), &xml);

        let xml = balances_rejected(v, &errors);
        let doc = read(&xml);
        let body = soap::body(&doc, v).unwrap();
        let resp = doc
            .child(body, NAMESPACE, "SubmitBalancesResponse")
            .unwrap();
        let rejected = doc.child(resp, NAMESPACE, "rejected").unwrap();
        let shape: Vec<Vec<(String, String)>> = doc
            .children(rejected)
            .map(|e| {
                doc.children(e)
                    .map(|c| (doc.name(c).1.to_owned(), doc.text(c).to_owned()))
                    .collect()
            })
            .collect();
        let pair = |a: &str, b: &str| (a.to_owned(), b.to_owned());
        assert_eq!(
            shape,
            [
                vec![
                    pair("line", "3"),
                    pair("column", "8"),
                    pair("reason", &errors[0].reason)
                ],
                vec![
                    pair("line", "4"),
                    pair("columnName", "available"),
                    pair("reason", "not an integer")
                ],
                vec![pair("line", "1"), pair("reason", "file-level")],
            ]
        );
        keep_for_check_wsdl(&format!("submit-balances-rejected.soap{ver}.xml"), &xml);
        let xml = balances_rejected(v, &[]);
        assert!(xml.contains("<hub:line>1</hub:line><hub:reason>the file was refused"));
        keep_for_check_wsdl(&format!("hub-rejected-empty.soap{ver}.xml"), &xml);

        let named = [
            (HubFaultCode::UnknownInstitution, "status-notify-fault"),
            (HubFaultCode::StateNotRecorded, "hub-fault-receiver"),
            (HubFaultCode::VersionMismatch, "hub-fault-version-mismatch"),
            (HubFaultCode::MustUnderstand, "hub-fault-must-understand"),
        ];
        // BALANCES_REJECTED is never a fault (a `rejected` answer).
        let faults = HubFaultCode::ALL
            .into_iter()
            .filter(|c| *c != HubFaultCode::BalancesRejected);
        for code in faults {
            let message = format!("{code} happened to bank-x");
            let xml = fault(v, code, &message);
            let doc = read(&xml);
            let body = soap::body(&doc, v).unwrap();
            let f = soap::fault(&doc, body, v).unwrap();
            assert_eq!(f.code, format!("soap:{}", code.soap_code().local_name(v)));
            assert_eq!(f.reason, message);
            let detail = doc.child(f.detail.unwrap(), NAMESPACE, "HubFault").unwrap();
            let parts: Vec<_> = doc
                .children(detail)
                .map(|c| (doc.name(c), doc.text(c)))
                .collect();
            assert_eq!(
                parts,
                [
                    ((NAMESPACE, "code"), code.as_str()),
                    ((NAMESPACE, "message"), message.as_str()),
                ]
            );
            assert_eq!(doc.name(doc.root()), (env, "Envelope"));
            let name = named
                .iter()
                .find(|(c, _)| *c == code)
                .map_or_else(|| format!("hub-fault-{code}"), |(_, n)| (*n).to_owned());
            keep_for_check_wsdl(&format!("{name}.soap{ver}.xml"), &xml);
        }

        // Every parse error answers with a valid fault.
        let err = parse(&status("")).unwrap_err();
        keep_for_check_wsdl(
            &format!("hub-fault-from-error.soap{ver}.xml"),
            &err.to_fault(v),
        );
        let err = parse_request(b"<e:Envelope xmlns:e=\"urn:x\"/>", None, None).unwrap_err();
        keep_for_check_wsdl(
            &format!("hub-fault-from-version.soap{ver}.xml"),
            &err.to_fault(v),
        );
    }
    assert_eq!(fault_http_status(SoapVersion::V11, FaultCode::Sender), 500);
    assert_eq!(fault_http_status(SoapVersion::V12, FaultCode::Sender), 400);
    assert_eq!(
        fault_http_status(SoapVersion::V12, FaultCode::Receiver),
        500
    );
}

#[test]
fn rendered_answers_match_the_canonical_samples() {
    let rejected = [
        LineErrorOut {
            line: 3,
            column: Some("8".into()),
            reason: "available: not an integer amount in minor units".into(),
        },
        LineErrorOut {
            line: 4,
            column: Some("currency".into()),
            reason: "not an ISO 4217 numeric code".into(),
        },
        LineErrorOut {
            line: 5,
            column: None,
            reason: "account A-1001 appears twice (first on line 2)".into(),
        },
    ];
    let cases = [
        (
            status_response(SoapVersion::V11, InstitutionState::Closing),
            "status-notify-response.soap11.xml",
        ),
        (
            balances_accepted(SoapVersion::V11, 2),
            "submit-balances-response.soap11.xml",
        ),
        (
            balances_rejected(SoapVersion::V11, &rejected),
            "submit-balances-rejected.soap11.xml",
        ),
        (
            fault(
                SoapVersion::V11,
                HubFaultCode::UnknownInstitution,
                "unknown institution \"bank-a\"",
            ),
            "status-notify-fault.soap11.xml",
        ),
        (
            fault(
                SoapVersion::V12,
                HubFaultCode::StateNotRecorded,
                "cardhub could not record the state; send the signal again",
            ),
            "status-notify-fault.soap12.xml",
        ),
    ];
    for (rendered, name) in cases {
        let ours = read(&rendered);
        let theirs = read(&sample(name));
        assert_eq!(
            tree(&ours, ours.root()),
            tree(&theirs, theirs.root()),
            "{name}"
        );
    }
}

#[test]
fn rendered_text_is_escaped_and_fits_the_schema() {
    let nasty = "a<b>&\"c'\u{1}\n";
    let xml = fault(SoapVersion::V12, HubFaultCode::InvalidMessage, nasty);
    let doc = read(&xml);
    let f = soap::fault(
        &doc,
        soap::body(&doc, SoapVersion::V12).unwrap(),
        SoapVersion::V12,
    )
    .unwrap();
    assert_eq!(f.reason, "a<b>&\"c'\u{FFFD}");
    let detail = doc.child(f.detail.unwrap(), NAMESPACE, "HubFault").unwrap();
    let message = doc.child(detail, NAMESPACE, "message").unwrap();
    assert_eq!(doc.text(message), "a<b>&\"c'\u{FFFD}\n");
    keep_for_check_wsdl("hub-fault-escaped.soap12.xml", &xml);

    let long = "é".repeat(600);
    let xml = fault(SoapVersion::V11, HubFaultCode::InternalError, &long);
    let doc = read(&xml);
    let f = soap::fault(
        &doc,
        soap::body(&doc, SoapVersion::V11).unwrap(),
        SoapVersion::V11,
    )
    .unwrap();
    assert_eq!(f.reason.chars().count(), 512);
    assert!(f.reason.ends_with("é…"));
    keep_for_check_wsdl("hub-fault-long.soap11.xml", &xml);
    let xml = fault(SoapVersion::V11, HubFaultCode::InternalError, "");
    keep_for_check_wsdl("hub-fault-empty.soap11.xml", &xml);

    let errors = [
        LineErrorOut {
            line: 7,
            column: Some("0".into()),
            reason: long.clone(),
        },
        LineErrorOut {
            line: 8,
            column: Some("007".into()),
            reason: "<&>".into(),
        },
        LineErrorOut {
            line: 9,
            column: Some("+3".into()),
            reason: String::new(),
        },
    ];
    let xml = balances_rejected(SoapVersion::V12, &errors);
    assert!(xml.contains("<hub:columnName>0</hub:columnName>"));
    assert!(xml.contains("<hub:column>7</hub:column><hub:reason>&lt;&amp;&gt;</hub:reason>"));
    assert!(xml.contains("<hub:columnName>+3</hub:columnName><hub:reason></hub:reason>"));
    keep_for_check_wsdl("hub-rejected-edges.soap12.xml", &xml);
}

/// A request built the way a client would, escaping the values.
fn build_status(
    institution: &str,
    state: SignalledState,
    reason: Option<&str>,
    time: &str,
) -> String {
    let mut children = String::from("<hub:institution>");
    escape(institution, &mut children);
    children.push_str("</hub:institution><hub:state>");
    children.push_str(state.as_str());
    children.push_str("</hub:state>");
    if let Some(reason) = reason {
        children.push_str("<hub:reason>");
        escape(reason, &mut children);
        children.push_str("</hub:reason>");
    }
    children.push_str("<hub:time>");
    children.push_str(time);
    children.push_str("</hub:time>");
    status(&children)
}

proptest! {
    #[test]
    fn requests_round_trip(
        institution in "[A-Za-z0-9][A-Za-z0-9._-]{0,63}",
        state in prop_oneof![
            Just(SignalledState::Open),
            Just(SignalledState::Closing),
            Just(SignalledState::Closed),
        ],
        reason in proptest::option::of("[a-zA-Z0-9 <>&'\"é€]{0,80}"),
        seconds in 0i64..4_000_000_000,
        content in proptest::collection::vec(any::<u8>(), 0..400),
        wrap in 1usize..100,
    ) {
        let t = Timestamp::from_second(seconds).unwrap();
        let body = build_status(&institution, state, reason.as_deref(), &t.to_string());
        let (_, call) = parse(&body).unwrap();
        let expected = HubCall::StatusNotify {
            institution: institution.clone(),
            state,
            reason: reason.as_deref().map(|r| r.trim().to_owned()),
            time: t,
        };
        prop_assert_eq!(call, expected);

        let b64 = BASE64.encode(&content);
        let lines: Vec<&str> = b64.as_bytes().chunks(wrap).map(|c| std::str::from_utf8(c).unwrap()).collect();
        let (_, call) = parse(&balances(&lines.join("\n"))).unwrap();
        let HubCall::SubmitBalances { content: decoded, .. } = call else {
            panic!("{call:?}")
        };
        prop_assert_eq!(decoded, content);
    }

    #[test]
    fn no_input_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = parse_request(&bytes, None, None);
        let _ = parse_request(&bytes, Some(CT12), Some("x"));
    }

    #[test]
    fn no_mutated_sample_panics(
        index in 0usize..10_000,
        byte in any::<u8>(),
        truncate in any::<bool>(),
    ) {
        let mut body = sample("submit-balances-request.soap11.xml").into_bytes();
        let at = index % body.len();
        if truncate {
            body.truncate(at);
        } else {
            body[at] = byte;
        }
        if let Err(e) = parse_request(&body, Some(CT11), None) {
            // Any error answers with a fault that reads back.
            let xml = e.to_fault(SoapVersion::V11);
            prop_assert!(Document::parse(xml.as_bytes(), &Limits::default()).is_ok());
        }
    }
}

/// A card number in a value a fault quotes is masked (faults are logged).
#[test]
fn values_quoted_in_faults_mask_card_numbers() {
    let quoted = super::shown("card 4761739001010010");
    assert!(!quoted.contains("4761739001010010"), "{quoted}");
    assert!(quoted.contains("476173******0010"), "{quoted}");
}
