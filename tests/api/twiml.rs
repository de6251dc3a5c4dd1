//! The `/wa` reply TwiML against Twilio's official Python helper library (`twilio==9.13.0`):
//! each case is written by `messaging_response` and by the helper's `MessagingResponse`, and
//! `tools/twiml-py/compare.py` requires both documents to have the same C14N 2.0 form (and
//! the same XML declaration). `scripts/test` creates the helper's virtualenv.

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::{Value, json};
use wadash::twilio::twiml::{ReplyMessage, messaging_response};

const PYTHON: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tools/twiml-py/.venv/bin/python"
);
const COMPARE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tools/twiml-py/compare.py");

/// Exactly Twilio's 1600-character limit for a message body, with markup and emoji inside.
fn long_body() -> String {
    let body: String = "Order #42 <ready> & \"waiting\" 🎉 नमस्ते\n"
        .chars()
        .cycle()
        .take(1600)
        .collect();
    assert_eq!(body.chars().count(), 1600);
    body
}

fn body(text: &str) -> ReplyMessage {
    ReplyMessage {
        body: Some(text.into()),
        ..ReplyMessage::default()
    }
}

fn media(urls: &[&str]) -> Vec<String> {
    urls.iter().map(|u| (*u).to_owned()).collect()
}

fn message_json(m: &ReplyMessage) -> Value {
    json!({
        "body": m.body,
        "media": m.media,
        "to": m.to,
        "from": m.from,
        "status_callback": m.status_callback,
    })
}

/// A case whose reply the helper builds from `helper_gets`, compared with `ours`.
fn case_with(name: &str, helper_gets: &[ReplyMessage], ours: String) -> Value {
    json!({
        "name": name,
        "messages": helper_gets.iter().map(message_json).collect::<Vec<_>>(),
        "ours": ours,
    })
}

/// A case where both writers get the same messages.
fn case(name: &str, messages: &[ReplyMessage]) -> Value {
    case_with(name, messages, messaging_response(messages))
}

/// Runs `compare.py` on `cases`: `Ok(report)` when every case matched, `Err(report)` when any
/// did not.
fn compare_with_helper(cases: &[Value]) -> Result<Value, Value> {
    assert!(
        Path::new(PYTHON).exists(),
        "{PYTHON} is missing: run scripts/test, which creates the virtualenv with Twilio's \
         Python helper library (tools/twiml-py/requirements.txt)"
    );
    let mut child = Command::new(PYTHON)
        .arg(COMPARE)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start compare.py");
    let input = serde_json::to_vec(cases).unwrap();
    let mut stdin = child.stdin.take().unwrap();
    // compare.py reads all of its input before writing, but a separate writer keeps this
    // safe whatever the pipe sizes.
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().expect("run compare.py");
    writer
        .join()
        .unwrap()
        .expect("write the cases to compare.py");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "compare.py printed no JSON report ({e}); status {:?}\nstdout:\n{stdout}\nstderr:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
    });
    match out.status.code() {
        Some(0) => Ok(report),
        Some(1) => Err(report),
        _ => panic!(
            "compare.py could not run the cases ({:?}):\n{report:#}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

fn assert_helper_agrees(cases: &[Value]) {
    match compare_with_helper(cases) {
        Ok(report) => assert_eq!(report["matched"], cases.len(), "{report:#}"),
        Err(report) => panic!("our TwiML differs from Twilio's Python helper:\n{report:#}"),
    }
}

#[test]
fn every_reply_shape_is_the_document_twilios_python_helper_writes() {
    let addressed = ReplyMessage {
        to: Some("whatsapp:+919900000000".into()),
        from: Some("whatsapp:+14155238886".into()),
        status_callback: Some("https://wadash.example.com/sts".into()),
        ..body("Thanks, we got it")
    };
    let cases = [
        case("empty response", &[]),
        case("body only", &[body("Your code is 123456")]),
        case(
            "media only",
            &[ReplyMessage {
                media: media(&["https://demo.twilio.com/owl.png"]),
                ..ReplyMessage::default()
            }],
        ),
        case(
            "body and several media",
            &[ReplyMessage {
                media: media(&[
                    "https://demo.twilio.com/owl.png",
                    "https://demo.twilio.com/logo.png",
                    "https://e.x/invoice.pdf",
                ]),
                ..body("Your documents")
            }],
        ),
        case(
            "several messages",
            &[body("first"), body("second"), addressed.clone()],
        ),
        case(
            "to, from and statusCallback",
            std::slice::from_ref(&addressed),
        ),
        case(
            "to only",
            &[ReplyMessage {
                to: Some("whatsapp:+919900000000".into()),
                ..body("hi")
            }],
        ),
        case(
            "from only",
            &[ReplyMessage {
                from: Some("whatsapp:+14155238886".into()),
                ..body("hi")
            }],
        ),
        case(
            "statusCallback only, with media",
            &[ReplyMessage {
                status_callback: Some("https://wadash.example.com/sts?reply=1".into()),
                media: media(&["https://demo.twilio.com/owl.png"]),
                ..ReplyMessage::default()
            }],
        ),
        case(
            "message with neither body nor media",
            &[ReplyMessage::default()],
        ),
        case("empty body", &[body("")]),
    ];

    assert_helper_agrees(&cases);
}

#[test]
fn hostile_and_non_latin_text_reads_as_in_twilios_python_helper() {
    let texts = [
        ("less-than", "if a < b"),
        ("greater-than", "b > a"),
        ("ampersand", "fish & chips"),
        ("double quote", r#"say "hello""#),
        ("apostrophe", "it's"),
        ("CDATA end", "]]> not the end"),
        ("already escaped", "&amp; &lt;b&gt; &#38; &quot;"),
        ("markup", "<Message><Body>injected</Body></Message>"),
        ("newlines and tabs", "line 1\nline 2\n\n\tindented\ttab"),
        ("leading and trailing spaces", "  padded  "),
        ("emoji", "🎉👍🏽 👨‍👩‍👧 ❤️"),
        ("Devanagari", "नमस्ते, आपका ऑर्डर तैयार है"),
        ("Arabic (RTL)", "مرحبا، طلبك جاهز"),
        ("mixed direction", "Order ‏#42‎ مرحبا abc"),
        ("long body", &long_body()),
    ];
    let mut cases: Vec<Value> = texts
        .iter()
        .map(|(name, text)| case(&format!("body: {name}"), &[body(text)]))
        .collect();
    let hostile = r#"a<b>&c"d'e]]>&amp;"#;
    cases.push(case(
        "hostile attributes and media URL",
        &[ReplyMessage {
            body: Some(hostile.into()),
            media: media(&[
                "https://e.x/a.png?w=1&h=2",
                &format!("https://e.x/{hostile}"),
            ]),
            to: Some(format!("whatsapp:+1{hostile}")),
            from: Some("whatsapp:+14155238886 \"quoted\" 'single'".into()),
            status_callback: Some(format!("https://e.x/sts?q={hostile}\tx\ny")),
        }],
    ));

    assert_helper_agrees(&cases);
}

#[test]
fn crlf_and_lone_cr_line_breaks_read_as_in_twilios_python_helper() {
    // The helper writes CR raw; a parser turns it into LF (XML 1.0 §2.11).
    let cases = [
        case(
            "CRLF (as a browser textarea sends)",
            &[body("one\r\ntwo\r\n")],
        ),
        case("lone CR", &[body("one\rtwo")]),
        case(
            "CR in a media URL",
            &[ReplyMessage {
                media: media(&["https://e.x/a\r\n.png"]),
                ..ReplyMessage::default()
            }],
        ),
    ];

    assert_helper_agrees(&cases);
}

#[test]
fn characters_xml_forbids_are_dropped_leaving_what_the_helper_writes_without_them() {
    // The helper writes these raw, so its own document would not parse; ours drops them.
    let dirty = ReplyMessage {
        body: Some(
            "bell\u{7} nul\u{0} esc\u{1b} vt\u{b} ff\u{c} nonchar\u{fffe}\u{ffff} ok".into(),
        ),
        media: media(&["https://e.x/\u{1}owl.png"]),
        status_callback: Some("https://e.x/sts\u{8}?id=1".into()),
        ..ReplyMessage::default()
    };
    let clean = ReplyMessage {
        body: Some("bell nul esc vt ff nonchar ok".into()),
        media: media(&["https://e.x/owl.png"]),
        status_callback: Some("https://e.x/sts?id=1".into()),
        ..ReplyMessage::default()
    };

    let cases = [case_with(
        "control characters",
        std::slice::from_ref(&clean),
        messaging_response(&[dirty]),
    )];

    assert_helper_agrees(&cases);
}

#[test]
fn the_comparison_fails_and_shows_both_documents_when_they_differ() {
    let ours = messaging_response(&[body("hello")]);
    let cases = [
        case_with("different text", &[body("hellO")], ours.clone()),
        case_with(
            "missing attribute",
            &[ReplyMessage {
                to: Some("whatsapp:+919900000000".into()),
                ..body("hello")
            }],
            ours.clone(),
        ),
        case_with(
            "no XML declaration",
            &[body("hello")],
            ours.replace(r#"<?xml version="1.0" encoding="UTF-8"?>"#, ""),
        ),
        case("control", &[body("hello")]),
    ];

    let report = compare_with_helper(&cases).expect_err("the documents differ");

    assert_eq!(report["matched"], 1, "{report:#}");
    let mismatches = report["mismatches"].as_array().unwrap();
    let names: Vec<&str> = mismatches
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["different text", "missing attribute", "no XML declaration"]
    );
    let first = &mismatches[0];
    assert_eq!(first["ours"], ours.as_str());
    assert!(
        first["theirs"]
            .as_str()
            .unwrap()
            .contains("<Body>hellO</Body>"),
        "{first:#}"
    );
}
