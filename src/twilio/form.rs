//! Strict `application/x-www-form-urlencoded` parsing for webhook bodies.
//!
//! Unlike lenient decoders, which replace invalid UTF-8 and keep broken `%` escapes as text,
//! this refuses them: Twilio never sends such bodies, and storing a silently altered value
//! would lose what was actually received.

/// Parses `a=1&b=x+y%21` into pairs, in order, keeping repeated names.
pub fn parse(body: &[u8]) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::with_capacity(16);
    for field in body.split(|b| *b == b'&') {
        if field.is_empty() {
            continue;
        }
        let (name, value) = match field.iter().position(|b| *b == b'=') {
            Some(i) => (&field[..i], &field[i + 1..]),
            None => (field, &b""[..]),
        };
        out.push((decode(name)?, decode(value)?));
    }
    Ok(out)
}

fn decode(raw: &[u8]) -> Result<String, String> {
    if !raw.iter().any(|b| matches!(b, b'%' | b'+')) {
        return String::from_utf8(raw.to_vec())
            .map_err(|_| "a field is not valid UTF-8".to_owned());
    }
    let mut bytes = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'+' => bytes.push(b' '),
            b'%' => {
                let hi = raw.get(i + 1).and_then(|c| (*c as char).to_digit(16));
                let lo = raw.get(i + 2).and_then(|c| (*c as char).to_digit(16));
                match (hi, lo) {
                    (Some(h), Some(l)) => bytes.push((h * 16 + l) as u8),
                    _ => return Err(format!("broken percent-escape at byte {i}")),
                }
                i += 2;
            }
            b => bytes.push(b),
        }
        i += 1;
    }
    String::from_utf8(bytes).map_err(|_| "a field is not valid UTF-8 once decoded".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_like_twilio_encodes() {
        let p = parse(b"To=whatsapp%3A%2B1415&Body=hi+there%21&Empty=&Flag&Body=2").unwrap();
        assert_eq!(
            p,
            vec![
                ("To".into(), "whatsapp:+1415".into()),
                ("Body".into(), "hi there!".into()),
                ("Empty".into(), String::new()),
                ("Flag".into(), String::new()),
                ("Body".into(), "2".into()),
            ]
        );
        assert_eq!(parse(b"B=%E2%9C%93").unwrap()[0].1, "\u{2713}");
    }

    #[test]
    fn refuses_what_it_cannot_decode_faithfully() {
        assert!(parse(b"MessageSid=%FF%FE").is_err());
        assert!(parse(b"a=%zz").is_err());
        assert!(parse(b"a=%4").is_err());
        assert!(parse(&[b'a', b'=', 0xC3]).is_err());
    }

    #[test]
    fn agrees_with_the_lenient_decoder_on_valid_input() {
        let body = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../shared/fixtures/inbound-seed.form"
        ))
        .unwrap();
        let lenient: Vec<(String, String)> = serde_urlencoded::from_str(body.trim()).unwrap();
        assert_eq!(parse(body.trim().as_bytes()).unwrap(), lenient);
    }
}
