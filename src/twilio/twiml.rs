//! Messaging TwiML: the XML answer to an inbound `/wa` webhook that tells Twilio what to reply.
//!
//! See https://www.twilio.com/docs/messaging/twiml. The output is checked against Twilio's own
//! Python helper library (`tools/twiml-py/compare.py`, driven by `tests/api/twiml.rs`): both
//! documents must have the same canonical form (C14N 2.0), so they mean the same to any XML
//! parser — Twilio's included. They are not byte-identical: the helper sorts attributes by
//! name and writes `<Response />`, while this writer keeps `to`, `from`, `statusCallback` in
//! that order and writes `<Response/>`.
//!
//! Two deliberate changes to the text we are given, both so the reply is valid and reads the
//! same as one written by Twilio's helpers:
//! - Characters XML 1.0 forbids (C0 controls other than tab, LF and CR; U+FFFE; U+FFFF) are
//!   dropped. No escape can carry them — `&#1;` is itself ill-formed in XML 1.0 — and one
//!   stray control character would otherwise make Twilio reject the whole reply. (The Python
//!   helper writes them raw and so produces a document no parser accepts.)
//! - Line breaks in element text are written as LF: CRLF and lone CR become LF. The helpers
//!   write CR raw, which every XML parser turns into LF (XML 1.0 §2.11), so LF is what Twilio
//!   reads from them; escaping CR as `&#13;` instead would send CRLF pairs (as browsers submit
//!   a textarea's line breaks) to the recipient. Attribute values keep CR, LF and tab as
//!   character references, as the helpers do.

use std::borrow::Cow;

use quick_xml::Writer;
use quick_xml::escape::partial_escape;
use quick_xml::events::{BytesDecl, BytesText, Event};

/// One `<Message>` of a messaging response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplyMessage {
    pub body: Option<String>,
    pub media: Vec<String>,
    /// `to` / `from` attributes (optional; Twilio defaults them to the inbound's From/To).
    pub to: Option<String>,
    pub from: Option<String>,
    /// `statusCallback` attribute: where Twilio posts the reply's status callbacks.
    pub status_callback: Option<String>,
}

/// The whole `/wa` answer: `<?xml version="1.0" encoding="UTF-8"?><Response>…</Response>`;
/// with no messages it is `<?xml version="1.0" encoding="UTF-8"?><Response/>` exactly.
pub fn messaging_response(messages: &[ReplyMessage]) -> String {
    let mut writer = Writer::new(Vec::with_capacity(256));
    write_response(&mut writer, messages).expect("writing to a Vec cannot fail");
    String::from_utf8(writer.into_inner()).expect("built only from UTF-8 strings")
}

fn write_response(w: &mut Writer<Vec<u8>>, messages: &[ReplyMessage]) -> std::io::Result<()> {
    w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
    let response = w.create_element("Response");
    if messages.is_empty() {
        response.write_empty()?;
    } else {
        response.write_inner_content(|w| messages.iter().try_for_each(|m| write_message(w, m)))?;
    }
    Ok(())
}

fn write_message(w: &mut Writer<Vec<u8>>, message: &ReplyMessage) -> std::io::Result<()> {
    let attributes = [
        ("to", &message.to),
        ("from", &message.from),
        ("statusCallback", &message.status_callback),
    ];
    let mut element = w.create_element("Message");
    for (name, value) in attributes {
        if let Some(value) = value {
            // The `(&str, &str)` conversion escapes the value, tab/LF/CR included.
            element = element.with_attribute((name, &*xml_chars(value)));
        }
    }
    if message.body.is_none() && message.media.is_empty() {
        element.write_empty()?;
        return Ok(());
    }
    element.write_inner_content(|w| {
        if let Some(body) = &message.body {
            w.create_element("Body").write_text_content(text(body))?;
        }
        for url in &message.media {
            w.create_element("Media").write_text_content(text(url))?;
        }
        Ok(())
    })?;
    Ok(())
}

/// Element text: XML-valid characters, LF line breaks, and only `<`, `>`, `&` escaped (quotes
/// need no escaping outside attributes; `>` is escaped so `]]>` cannot appear).
fn text(raw: &str) -> BytesText<'static> {
    let normalized = lf_line_breaks(&xml_chars(raw)).into_owned();
    BytesText::from_escaped(partial_escape(normalized).into_owned())
}

/// Whether XML 1.0 allows `c` in a document (the `Char` production; surrogates cannot occur
/// in a Rust `str`).
fn is_xml_char(c: char) -> bool {
    !matches!(
        c,
        '\u{0}'..='\u{8}' | '\u{B}' | '\u{C}' | '\u{E}'..='\u{1F}' | '\u{FFFE}' | '\u{FFFF}'
    )
}

/// `raw` without the characters XML 1.0 forbids.
fn xml_chars(raw: &str) -> Cow<'_, str> {
    if raw.chars().all(is_xml_char) {
        Cow::Borrowed(raw)
    } else {
        Cow::Owned(raw.chars().filter(|&c| is_xml_char(c)).collect())
    }
}

/// CRLF and lone CR as LF, which is what a parser makes of them in element text.
fn lf_line_breaks(raw: &str) -> Cow<'_, str> {
    if raw.contains('\r') {
        Cow::Owned(raw.replace("\r\n", "\n").replace('\r', "\n"))
    } else {
        Cow::Borrowed(raw)
    }
}

#[cfg(test)]
mod tests {
    use quick_xml::events::Event;
    use quick_xml::{Reader, XmlVersion};

    use super::*;

    const DECL: &str = r#"<?xml version="1.0" encoding="UTF-8"?>"#;

    fn body(text: &str) -> ReplyMessage {
        ReplyMessage {
            body: Some(text.into()),
            ..ReplyMessage::default()
        }
    }

    /// What a parser reads back: each element's name with its attributes (unescaped, in
    /// document order), and the unescaped text of each element.
    #[derive(Debug, PartialEq, Eq)]
    enum Node {
        Open(String, Vec<(String, String)>),
        Text(String),
        Close(String),
    }

    fn parse(xml: &str) -> Vec<Node> {
        let mut reader = Reader::from_str(xml);
        let mut nodes = Vec::new();
        let open = |e: &quick_xml::events::BytesStart<'_>| {
            let attributes = e
                .attributes()
                .map(|a| {
                    let a = a.expect("well-formed attribute");
                    let key = a.key.as_ref().to_owned();
                    let value = a
                        .normalized_value(XmlVersion::Explicit1_0)
                        .expect("known entities")
                        .into_owned();
                    (key, value)
                })
                .collect();
            let name = e.name().as_ref().to_owned();
            (name, attributes)
        };
        loop {
            match reader.read_event().expect("well-formed XML") {
                Event::Decl(_) => {}
                Event::Start(e) => {
                    let (name, attributes) = open(&e);
                    nodes.push(Node::Open(name, attributes));
                }
                Event::Empty(e) => {
                    let (name, attributes) = open(&e);
                    nodes.push(Node::Open(name.clone(), attributes));
                    nodes.push(Node::Close(name));
                }
                Event::End(e) => {
                    let name = e.name().as_ref().to_owned();
                    nodes.push(Node::Close(name));
                }
                Event::Text(e) => {
                    let text = e.xml10_content().into_owned();
                    merge_text(&mut nodes, &text);
                }
                Event::GeneralRef(e) => {
                    let resolved = match e.resolve_char_ref().expect("valid char ref") {
                        Some(c) => c.to_string(),
                        None => quick_xml::escape::resolve_predefined_entity(&e.xml10_content())
                            .expect("predefined entity")
                            .to_owned(),
                    };
                    merge_text(&mut nodes, &resolved);
                }
                Event::Eof => break,
                other => panic!("unexpected event {other:?}"),
            }
        }
        nodes
    }

    fn merge_text(nodes: &mut Vec<Node>, text: &str) {
        if let Some(Node::Text(previous)) = nodes.last_mut() {
            previous.push_str(text);
        } else {
            nodes.push(Node::Text(text.to_owned()));
        }
    }

    fn open(name: &str, attributes: &[(&str, &str)]) -> Node {
        let attributes = attributes
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Node::Open(name.into(), attributes)
    }

    fn text_node(text: &str) -> Node {
        Node::Text(text.into())
    }

    fn close(name: &str) -> Node {
        Node::Close(name.into())
    }

    /// The text of the single `<Body>` in `xml`.
    fn body_text(xml: &str) -> String {
        let nodes = parse(xml);
        let at = nodes
            .iter()
            .position(|n| *n == open("Body", &[]))
            .expect("a Body element");
        match &nodes[at + 1] {
            Node::Text(t) => t.clone(),
            _ => String::new(),
        }
    }

    #[test]
    fn no_messages_is_the_exact_empty_response() {
        assert_eq!(
            messaging_response(&[]),
            r#"<?xml version="1.0" encoding="UTF-8"?><Response/>"#
        );
    }

    #[test]
    fn body_and_media_are_nested_elements_in_order() {
        let message = ReplyMessage {
            body: Some("Your order".into()),
            media: vec!["https://e.x/1.png".into(), "https://e.x/2.png".into()],
            ..ReplyMessage::default()
        };

        let xml = messaging_response(&[message, body("second")]);

        assert_eq!(
            xml,
            format!(
                "{DECL}<Response><Message><Body>Your order</Body>\
                 <Media>https://e.x/1.png</Media><Media>https://e.x/2.png</Media></Message>\
                 <Message><Body>second</Body></Message></Response>"
            )
        );
    }

    #[test]
    fn a_message_without_body_or_media_is_an_empty_element() {
        let xml = messaging_response(&[ReplyMessage::default()]);

        assert_eq!(xml, format!("{DECL}<Response><Message/></Response>"));
    }

    #[test]
    fn attributes_are_written_to_from_status_callback_in_that_order() {
        let message = ReplyMessage {
            body: Some("hi".into()),
            to: Some("whatsapp:+919900000000".into()),
            from: Some("whatsapp:+14155238886".into()),
            status_callback: Some("https://wadash.example.com/sts".into()),
            ..ReplyMessage::default()
        };

        let xml = messaging_response(&[message]);

        assert_eq!(
            xml,
            format!(
                "{DECL}<Response><Message to=\"whatsapp:+919900000000\" \
                 from=\"whatsapp:+14155238886\" statusCallback=\"https://wadash.example.com/sts\">\
                 <Body>hi</Body></Message></Response>"
            )
        );
    }

    #[test]
    fn absent_attributes_are_left_out() {
        let message = ReplyMessage {
            from: Some("whatsapp:+14155238886".into()),
            ..body("hi")
        };

        let xml = messaging_response(&[message]);

        assert!(
            xml.contains(r#"<Message from="whatsapp:+14155238886"><Body>"#),
            "{xml}"
        );
    }

    #[test]
    fn markup_characters_in_text_are_escaped() {
        let cases = [
            ("a < b", "a &lt; b"),
            ("a > b", "a &gt; b"),
            ("fish & chips", "fish &amp; chips"),
            ("&amp; stays literal", "&amp;amp; stays literal"),
            ("]]> is not a CDATA end", "]]&gt; is not a CDATA end"),
            (r#"say "hi" it's"#, r#"say "hi" it's"#),
        ];
        for (raw, written) in cases {
            let xml = messaging_response(&[body(raw)]);

            assert!(xml.contains(&format!("<Body>{written}</Body>")), "{xml}");
            assert_eq!(body_text(&xml), raw);
        }
    }

    #[test]
    fn markup_and_quote_characters_in_attributes_are_escaped() {
        let url = r#"https://e.x/sts?a=1&b=<2>&c="3"&d='4'"#;
        let message = ReplyMessage {
            status_callback: Some(url.into()),
            ..body("x")
        };

        let xml = messaging_response(&[message]);

        assert!(
            xml.contains(
                "statusCallback=\"https://e.x/sts?a=1&amp;b=&lt;2&gt;&amp;c=&quot;3&quot;&amp;d=&apos;4&apos;\""
            ),
            "{xml}"
        );
        assert_eq!(
            parse(&xml)[1],
            open("Message", &[("statusCallback", url)]),
            "{xml}"
        );
    }

    #[test]
    fn media_urls_are_escaped() {
        let message = ReplyMessage {
            media: vec!["https://e.x/a.png?w=1&h=2".into()],
            ..ReplyMessage::default()
        };

        let xml = messaging_response(&[message]);

        assert!(
            xml.contains("<Media>https://e.x/a.png?w=1&amp;h=2</Media>"),
            "{xml}"
        );
    }

    #[test]
    fn non_ascii_text_is_written_verbatim_as_utf8() {
        let text = "🎉 नमस्ते مرحبا שלום é";

        let xml = messaging_response(&[body(text)]);

        assert!(xml.contains(&format!("<Body>{text}</Body>")), "{xml}");
    }

    #[test]
    fn characters_xml_forbids_are_dropped_from_text_and_attributes() {
        let message = ReplyMessage {
            body: Some("a\u{0}b\u{7}c\u{1b}d\u{c}e\u{fffe}f\u{ffff}g".into()),
            media: vec!["https://e.x/\u{1}x.png".into()],
            to: Some("whatsapp:+1\u{8}555".into()),
            ..ReplyMessage::default()
        };

        let xml = messaging_response(&[message]);

        assert!(xml.chars().all(is_xml_char), "{xml:?}");
        assert_eq!(
            parse(&xml),
            [
                open("Response", &[]),
                open("Message", &[("to", "whatsapp:+1555")]),
                open("Body", &[]),
                text_node("abcdefg"),
                close("Body"),
                open("Media", &[]),
                text_node("https://e.x/x.png"),
                close("Media"),
                close("Message"),
                close("Response"),
            ]
        );
    }

    #[test]
    fn tabs_and_line_feeds_in_text_are_kept_and_carriage_returns_become_line_feeds() {
        let xml = messaging_response(&[body("a\tb\nc\r\nd\re")]);

        assert!(xml.contains("<Body>a\tb\nc\nd\ne</Body>"), "{xml}");
        assert_eq!(body_text(&xml), "a\tb\nc\nd\ne");
    }

    #[test]
    fn whitespace_in_attributes_survives_attribute_value_normalization() {
        let message = ReplyMessage {
            status_callback: Some("a\tb\nc\rd".into()),
            ..ReplyMessage::default()
        };

        let xml = messaging_response(&[message]);

        assert!(
            xml.contains(r#"statusCallback="a&#9;b&#10;c&#13;d""#),
            "{xml}"
        );
        assert_eq!(
            parse(&xml)[1],
            open("Message", &[("statusCallback", "a\tb\nc\rd")])
        );
    }

    #[test]
    fn every_shape_parses_back_to_what_was_written() {
        let messages = [
            ReplyMessage {
                body: Some("one & <two>".into()),
                media: vec!["https://e.x/1.png".into()],
                to: Some("whatsapp:+919900000000".into()),
                from: Some("whatsapp:+14155238886".into()),
                status_callback: Some("https://e.x/sts?id=1&x=\"".into()),
            },
            ReplyMessage {
                media: vec!["https://e.x/2.png".into()],
                ..ReplyMessage::default()
            },
            body("😀"),
        ];

        let nodes = parse(&messaging_response(&messages));

        assert_eq!(
            nodes,
            [
                open("Response", &[]),
                open(
                    "Message",
                    &[
                        ("to", "whatsapp:+919900000000"),
                        ("from", "whatsapp:+14155238886"),
                        ("statusCallback", "https://e.x/sts?id=1&x=\""),
                    ],
                ),
                open("Body", &[]),
                text_node("one & <two>"),
                close("Body"),
                open("Media", &[]),
                text_node("https://e.x/1.png"),
                close("Media"),
                close("Message"),
                open("Message", &[]),
                open("Media", &[]),
                text_node("https://e.x/2.png"),
                close("Media"),
                close("Message"),
                open("Message", &[]),
                open("Body", &[]),
                text_node("😀"),
                close("Body"),
                close("Message"),
                close("Response"),
            ]
        );
    }
}
