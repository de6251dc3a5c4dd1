//! Reads a `multipart/form-data` body (RFC 7578) that is already in memory, what a browser
//! sends for a form with a file input, with actix-multipart: the dashboard's upload forms are
//! a few text fields and one file, bounded by the route's payload limit, so the body is
//! buffered first and its parts collected whole.

use actix_web::http::header::{CONTENT_TYPE, HeaderMap};
use actix_web::web::Bytes;
use futures_util::StreamExt as _;

/// One field of the form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    pub name: String,
    /// Present for a file input (empty when no file was chosen).
    pub filename: Option<String>,
    pub data: Vec<u8>,
}

/// Whether the request says its body is `multipart/form-data`.
pub fn is_multipart(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("multipart/form-data"))
}

/// Splits `body` into its parts. A body that does not follow the format is an error (it did
/// not come from a browser's form), never a partial result.
pub async fn parse(headers: &HeaderMap, body: Bytes) -> Result<Vec<Part>, String> {
    let bad = |why: String| format!("the form data is not valid multipart: {why}");
    let stream = futures_util::stream::once(async move { Ok(body) });
    let mut form = actix_multipart::Multipart::new(headers, stream);
    let mut parts = Vec::new();
    while let Some(field) = form.next().await {
        let mut field = field.map_err(|e| bad(e.to_string()))?;
        let name = field
            .name()
            .ok_or_else(|| bad("a part has no name".into()))?
            .to_owned();
        let filename = field
            .content_disposition()
            .and_then(|d| d.get_filename())
            .map(str::to_owned);
        let mut data = Vec::new();
        while let Some(chunk) = field.next().await {
            data.extend_from_slice(&chunk.map_err(|e| bad(e.to_string()))?);
        }
        parts.push(Part {
            name,
            filename,
            data,
        });
    }
    Ok(parts)
}

/// The first part named `name`.
pub fn field<'p>(parts: &'p [Part], name: &str) -> Option<&'p Part> {
    parts.iter().find(|p| p.name == name)
}

/// The first part named `name` as text (lossy: a form's text fields are UTF-8), or "".
pub fn text(parts: &[Part], name: &str) -> String {
    field(parts, name)
        .map(|p| String::from_utf8_lossy(&p.data).into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use actix_web::http::header::HeaderValue;

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

    fn headers(ct: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(CONTENT_TYPE, HeaderValue::from_str(ct).unwrap());
        h
    }

    async fn read(ct: &str, body: &'static [u8]) -> Result<Vec<Part>, String> {
        parse(&headers(ct), Bytes::from_static(body)).await
    }

    #[actix_web::test]
    async fn a_browsers_form_is_read_field_by_field_with_the_files_bytes_intact() {
        let parts = read(CT, BODY).await.unwrap();
        assert_eq!(parts.len(), 3);
        assert_eq!(text(&parts, "csrf"), "tok123");
        let file = field(&parts, "file").unwrap();
        assert_eq!(file.filename.as_deref(), Some("rates; 2026.csv"));
        assert_eq!(file.data, b"a,b\r\n1,2\r\n");
        assert_eq!(text(&parts, "csv"), "");
        assert_eq!(text(&parts, "missing"), "");
    }

    #[test]
    fn only_form_data_is_multipart() {
        assert!(is_multipart(&headers("Multipart/Form-Data;boundary=xyz")));
        assert!(is_multipart(&headers(CT)));
        for ct in [
            "application/x-www-form-urlencoded",
            "multipart/mixed; boundary=xyz",
        ] {
            assert!(!is_multipart(&headers(ct)), "{ct}");
        }
        assert!(!is_multipart(&HeaderMap::new()));
    }

    #[actix_web::test]
    async fn a_quoted_boundary_and_a_preamble_are_read_and_an_empty_form_has_no_parts() {
        let body =
            b"ignored\r\n--a b\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n--a b--\r\n";
        let parts = read("multipart/form-data; boundary=\"a b\"", body)
            .await
            .unwrap();
        assert_eq!(
            (parts[0].name.as_str(), &parts[0].data[..]),
            ("a", &b"1"[..])
        );
        let ct = "multipart/form-data; boundary=xyz";
        assert!(read(ct, b"--xyz--\r\n").await.unwrap().is_empty());
    }

    #[actix_web::test]
    async fn a_body_that_is_not_a_form_is_refused_whole() {
        let ct = "multipart/form-data; boundary=xyz";
        for body in [
            &b"no boundary at all"[..],
            b"--xyz\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\ncut short",
            b"--xyz\r\nContent-Type: text/plain\r\n\r\nno name\r\n--xyz--",
            b"--xyzgarbage",
        ] {
            assert!(
                read(ct, body).await.is_err(),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        for ct in ["multipart/form-data", "multipart/form-data; boundary="] {
            assert!(read(ct, BODY).await.is_err(), "{ct}");
        }
    }
}
