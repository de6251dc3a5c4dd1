//! A posted form that may carry one file: `multipart/form-data` from the page (a file input
//! named `file` beside the text fields), or URL-encoded without a file (a script, or a browser
//! that lost the `enctype`). The body is read up to a limit, with the refusal in words when it
//! is larger; then the session, the form token and the role are checked as `Posted` does.

use std::marker::PhantomData;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest};
use futures_util::StreamExt as _;
use futures_util::future::LocalBoxFuture;
use serde::de::DeserializeOwned;

use super::guard::CsrfForm;
use super::{CurrentUser, PageError, multipart};
use crate::routes::roles::{Least, Viewer};

/// The name of the file input.
pub const FILE_FIELD: &str = "file";

/// Largest body an upload form may send (see [`Limit`]); 16 MiB when the route sets none.
pub const DEFAULT_LIMIT: usize = 16 * 1024 * 1024;

/// The largest body a route's upload form may send: `.app_data(Limit(bytes))`.
#[derive(Debug, Clone, Copy)]
pub struct Limit(pub usize);

/// The chosen file: its name (as the browser gives it) and bytes.
#[derive(Debug, Clone)]
pub struct File {
    pub name: String,
    pub bytes: Vec<u8>,
}

/// A form with an optional file, posted by a logged-in person whose role is at least `R`.
pub struct Uploaded<T, R = Viewer> {
    pub user: CurrentUser,
    pub form: T,
    /// None when no file was chosen (or the form was URL-encoded).
    pub file: Option<File>,
    least: PhantomData<R>,
}

/// Megabytes, for people.
fn mib(bytes: usize) -> String {
    format!("{} MiB", bytes / (1024 * 1024))
}

/// Splits a multipart body into its text fields and its file.
fn fields_and_file(parts: Vec<multipart::Part>) -> (Vec<(String, String)>, Option<File>) {
    let mut fields = Vec::new();
    let mut file = None;
    for p in parts {
        if p.name == FILE_FIELD && p.filename.is_some() {
            if file.is_none() && !p.data.is_empty() {
                let name = p.filename.filter(|n| !n.is_empty());
                file = Some(File {
                    name: name.unwrap_or_else(|| "the file".into()),
                    bytes: p.data,
                });
            }
        } else {
            fields.push((p.name, String::from_utf8_lossy(&p.data).into_owned()));
        }
    }
    (fields, file)
}

impl<T, R> FromRequest for Uploaded<T, R>
where
    T: DeserializeOwned + CsrfForm + 'static,
    R: Least + 'static,
{
    type Error = PageError;
    type Future = LocalBoxFuture<'static, Result<Self, PageError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let user = CurrentUser::from_request(req, payload);
        let limit = req.app_data::<Limit>().map_or(DEFAULT_LIMIT, |l| l.0);
        let headers = req.headers().clone();
        let mut payload = payload.take();
        Box::pin(async move {
            let user = user.await?;
            let mut body = actix_web::web::BytesMut::new();
            while let Some(chunk) = payload.next().await {
                let chunk = chunk
                    .map_err(|e| PageError::BadRequest(format!("the form was cut short: {e}")))?;
                if body.len() + chunk.len() > limit {
                    return Err(PageError::BadRequest(format!(
                        "the upload is larger than {}: split the file, or send it through the API",
                        mib(limit)
                    )));
                }
                body.extend_from_slice(&chunk);
            }
            let body = body.freeze();
            let (form, file) = if multipart::is_multipart(&headers) {
                let parts = multipart::parse(&headers, body)
                    .await
                    .map_err(PageError::BadRequest)?;
                let (fields, file) = fields_and_file(parts);
                let encoded = serde_urlencoded::to_string(&fields).map_err(|e| {
                    PageError::BadRequest(format!("the form could not be read: {e}"))
                })?;
                let form: T = serde_urlencoded::from_str(&encoded).map_err(|e| {
                    PageError::BadRequest(format!("the form could not be read: {e}"))
                })?;
                (form, file)
            } else {
                let form: T = serde_urlencoded::from_bytes(&body).map_err(|e| {
                    PageError::BadRequest(format!("the form could not be read: {e}"))
                })?;
                (form, None)
            };
            user.check_csrf(form.csrf())?;
            user.require(R::ROLE)?;
            Ok(Uploaded {
                user,
                form,
                file,
                least: PhantomData,
            })
        })
    }
}

/// A file's text: UTF-8 (a byte-order mark dropped), or the refusal naming the file.
pub fn text_of(file: &File) -> Result<String, String> {
    let bytes = file
        .bytes
        .strip_prefix(b"\xEF\xBB\xBF")
        .unwrap_or(&file.bytes);
    String::from_utf8(bytes.to_vec()).map_err(|e| {
        format!(
            "{} is not UTF-8 text (byte {}): save it as plain text or CSV in UTF-8",
            file.name,
            e.utf8_error().valid_up_to() + 1
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(name: &str, filename: Option<&str>, data: &[u8]) -> multipart::Part {
        multipart::Part {
            name: name.into(),
            filename: filename.map(str::to_owned),
            data: data.to_vec(),
        }
    }

    #[test]
    fn the_file_is_set_apart_from_the_text_fields_and_an_empty_one_is_no_file() {
        let (fields, file) = fields_and_file(vec![
            part("csrf", None, b"tok"),
            part("file", Some("list.csv"), b"number\n+919900000001\n"),
            part("numbers", None, b""),
        ]);
        assert_eq!(
            fields,
            [
                ("csrf".into(), "tok".into()),
                ("numbers".into(), String::new())
            ]
        );
        let file = file.unwrap();
        assert_eq!(file.name, "list.csv");
        assert_eq!(text_of(&file).unwrap(), "number\n+919900000001\n");
        let (_, none) = fields_and_file(vec![part("file", Some(""), b"")]);
        assert!(none.is_none());
    }

    #[test]
    fn a_file_that_is_not_utf8_is_refused_with_its_name() {
        let f = File {
            name: "numbers.xlsx".into(),
            bytes: b"PK\x03\x04\xff".to_vec(),
        };
        let e = text_of(&f).unwrap_err();
        assert!(
            e.starts_with("numbers.xlsx is not UTF-8 text (byte 5)"),
            "{e}"
        );
        let bom = File {
            name: "a.csv".into(),
            bytes: b"\xEF\xBB\xBFnumber".to_vec(),
        };
        assert_eq!(text_of(&bom).unwrap(), "number");
    }
}
