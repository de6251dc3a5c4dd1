//! Reads a `multipart/form-data` body (RFC 7578) that is already in memory: what a browser
//! sends for a form with a file input. Enough for the dashboard's small upload forms (a few
//! text fields and one file, bounded by the route's payload limit); it does not stream.
//!
//! Written here rather than taken from a crate: the one maintained for actix-web brings an old
//! `derive_more` and a second `rand` for what is, for a buffered body, a split on the boundary.

/// One field of the form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part<'a> {
    pub name: String,
    /// Present for a file input (empty when no file was chosen).
    pub filename: Option<String>,
    pub data: &'a [u8],
}

/// The boundary named by a `Content-Type: multipart/form-data; boundary=…` header.
pub fn boundary(content_type: &str) -> Option<String> {
    let mut params = split_params(content_type);
    let mime = params.next()?;
    if !mime.trim().eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    params
        .filter_map(param)
        .find(|(k, _)| k.eq_ignore_ascii_case("boundary"))
        .map(|(_, v)| v)
        // RFC 2046: 1 to 70 characters.
        .filter(|b| !b.is_empty() && b.len() <= 70)
}

/// Splits `body` into its parts. A body that does not follow the format is an error (it did
/// not come from a browser's form), never a partial result.
pub fn parse<'a>(body: &'a [u8], boundary: &str) -> Result<Vec<Part<'a>>, String> {
    let bad = |why: &str| format!("the form data is not valid multipart: {why}");
    let open = format!("--{boundary}");
    // Every delimiter after the first is preceded by a line break, which belongs to it.
    let delimiter = format!("\r\n--{boundary}");
    let start = if body.starts_with(open.as_bytes()) {
        open.len()
    } else {
        // A preamble before the first delimiter is allowed and ignored.
        find(body, delimiter.as_bytes()).ok_or_else(|| bad("no boundary"))? + delimiter.len()
    };
    let mut rest = &body[start..];
    let mut parts = Vec::new();
    loop {
        if rest.starts_with(b"--") {
            return Ok(parts);
        }
        // Transport padding (spaces, tabs) may follow a delimiter before its line break.
        let after_pad = rest
            .iter()
            .position(|b| *b != b' ' && *b != b'\t')
            .unwrap_or(rest.len());
        rest = rest[after_pad..]
            .strip_prefix(b"\r\n")
            .ok_or_else(|| bad("a boundary is not followed by a line break"))?;
        let head_end = find(rest, b"\r\n\r\n").ok_or_else(|| bad("a part has no headers"))?;
        let head = std::str::from_utf8(&rest[..head_end])
            .map_err(|_| bad("a part's headers are not UTF-8"))?;
        let content = &rest[head_end + 4..];
        let end =
            find(content, delimiter.as_bytes()).ok_or_else(|| bad("the body is cut short"))?;
        let (name, filename) = disposition(head).ok_or_else(|| bad("a part has no name"))?;
        parts.push(Part {
            name,
            filename,
            data: &content[..end],
        });
        rest = &content[end + delimiter.len()..];
    }
}

/// The first part named `name`.
pub fn field<'p, 'a>(parts: &'p [Part<'a>], name: &str) -> Option<&'p Part<'a>> {
    parts.iter().find(|p| p.name == name)
}

/// The first part named `name` as text (lossy: a form's text fields are UTF-8), or "".
pub fn text(parts: &[Part<'_>], name: &str) -> String {
    field(parts, name)
        .map(|p| String::from_utf8_lossy(p.data).into_owned())
        .unwrap_or_default()
}

/// `name` and `filename` from a part's `Content-Disposition: form-data; …` header.
fn disposition(head: &str) -> Option<(String, Option<String>)> {
    let value = head.split("\r\n").find_map(|line| {
        let (k, v) = line.split_once(':')?;
        k.trim()
            .eq_ignore_ascii_case("content-disposition")
            .then_some(v)
    })?;
    let mut params = split_params(value);
    if !params.next()?.trim().eq_ignore_ascii_case("form-data") {
        return None;
    }
    let (mut name, mut filename) = (None, None);
    for (k, v) in params.filter_map(param) {
        if k.eq_ignore_ascii_case("name") {
            name = Some(v);
        } else if k.eq_ignore_ascii_case("filename") {
            filename = Some(v);
        }
    }
    Some((name?, filename))
}

/// Splits a header value on the `;` that are not inside quotes.
fn split_params(value: &str) -> impl Iterator<Item = &str> {
    let mut quoted = false;
    let mut escaped = false;
    value.split(move |c: char| {
        if escaped {
            escaped = false;
        } else if quoted && c == '\\' {
            escaped = true;
        } else if c == '"' {
            quoted = !quoted;
        }
        c == ';' && !quoted
    })
}

/// `key=value` or `key="quoted value"` (browsers percent-encode a quote in a name; a
/// backslash escape is read too).
fn param(p: &str) -> Option<(String, String)> {
    let (k, v) = p.split_once('=')?;
    let v = v.trim();
    let v = match v.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
        Some(inner) => {
            let mut out = String::with_capacity(inner.len());
            let mut chars = inner.chars();
            while let Some(c) = chars.next() {
                out.push(if c == '\\' { chars.next()? } else { c });
            }
            out
        }
        None => v.to_owned(),
    };
    Some((k.trim().to_owned(), v))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    let first = *needle.first()?;
    let mut from = 0;
    while let Some(i) = haystack[from..].iter().position(|b| *b == first) {
        let at = from + i;
        if haystack[at..].starts_with(needle) {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A body as Firefox and Chromium send it for a token, a file and a textarea.
    const BODY: &[u8] = b"-----------------------------9051914041544843365972754266\r\n\
Content-Disposition: form-data; name=\"csrf\"\r\n\
\r\n\
tok123\r\n\
-----------------------------9051914041544843365972754266\r\n\
Content-Disposition: form-data; name=\"file\"; filename=\"rates; 2026.csv\"\r\n\
Content-Type: text/csv\r\n\
\r\n\
a,b\r\n1,2\r\n\
\r\n\
-----------------------------9051914041544843365972754266\r\n\
Content-Disposition: form-data; name=\"csv\"\r\n\
\r\n\
\r\n\
-----------------------------9051914041544843365972754266--\r\n";

    const CT: &str =
        "multipart/form-data; boundary=---------------------------9051914041544843365972754266";

    #[test]
    fn a_browsers_form_is_read_field_by_field_with_the_files_bytes_intact() {
        let b = boundary(CT).unwrap();
        let parts = parse(BODY, &b).unwrap();
        assert_eq!(parts.len(), 3);
        assert_eq!(text(&parts, "csrf"), "tok123");
        let file = field(&parts, "file").unwrap();
        assert_eq!(file.filename.as_deref(), Some("rates; 2026.csv"));
        assert_eq!(file.data, b"a,b\r\n1,2\r\n");
        assert_eq!(text(&parts, "csv"), "");
        assert_eq!(text(&parts, "missing"), "");
    }

    #[test]
    fn the_boundary_comes_from_the_content_type_quoted_or_not() {
        assert_eq!(
            boundary("multipart/form-data; boundary=\"a b\"").as_deref(),
            Some("a b")
        );
        assert_eq!(
            boundary("Multipart/Form-Data;boundary=xyz").as_deref(),
            Some("xyz")
        );
        for ct in [
            "application/x-www-form-urlencoded",
            "multipart/form-data",
            "multipart/form-data; boundary=",
            "multipart/mixed; boundary=xyz",
        ] {
            assert_eq!(boundary(ct), None, "{ct}");
        }
    }

    #[test]
    fn a_preamble_is_skipped_and_an_empty_form_has_no_parts() {
        let body =
            b"ignored\r\n--xyz\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n--xyz--";
        let parts = parse(body, "xyz").unwrap();
        assert_eq!((parts[0].name.as_str(), parts[0].data), ("a", &b"1"[..]));
        assert!(parse(b"--xyz--\r\n", "xyz").unwrap().is_empty());
    }

    #[test]
    fn a_body_that_is_not_a_form_is_refused_whole() {
        for body in [
            &b"no boundary at all"[..],
            b"--xyz\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\ncut short",
            b"--xyz\r\nContent-Type: text/plain\r\n\r\nno name\r\n--xyz--",
            b"--xyzgarbage",
        ] {
            assert!(
                parse(body, "xyz").is_err(),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }
}
