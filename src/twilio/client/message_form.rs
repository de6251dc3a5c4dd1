//! The form sent to create a message (`POST Messages.json`), validated before anything is
//! sent: something to send, at most ten http(s) media URLs, template variables as a JSON object
//! with a value for each placeholder, text within Twilio's 1,600 characters and free of
//! placeholders nothing fills (`domain::message_text`).

use super::{CreateMessage, Sender, TwilioError};
use crate::domain::message_text;

/// Twilio accepts at most ten media URLs per message.
pub const MAX_MEDIA: usize = 10;

/// The exact form sent for `POST Messages.json` (validated before anything is sent). Public
/// so that the contract tests can show Prism the very bytes the client sends.
pub fn create_form(
    msg: &CreateMessage,
    status_callback: Option<&str>,
) -> Result<Vec<(&'static str, String)>, TwilioError> {
    let has_body = msg.body.as_deref().is_some_and(|b| !b.is_empty());
    if !has_body && msg.media_urls.is_empty() && msg.content_sid.is_none() {
        return Err(TwilioError::Invalid(
            "a message needs a body, a media URL or a template (content SID)".into(),
        ));
    }
    if msg.media_urls.len() > MAX_MEDIA {
        return Err(TwilioError::Invalid(format!(
            "Twilio accepts at most {MAX_MEDIA} media URLs, got {}",
            msg.media_urls.len()
        )));
    }
    for url in &msg.media_urls {
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            return Err(TwilioError::Invalid(format!(
                "media URL {url:?} must be an http(s) URL Twilio can fetch"
            )));
        }
    }
    if msg.content_variables.is_some() && msg.content_sid.is_none() {
        return Err(TwilioError::Invalid(
            "content variables need a content SID".into(),
        ));
    }
    if let Some(vars) = &msg.content_variables {
        let Ok(serde_json::Value::Object(vars)) = serde_json::from_str::<serde_json::Value>(vars)
        else {
            return Err(TwilioError::Invalid(
                "content variables must be a JSON object, e.g. {\"1\": \"Ada\"}".into(),
            ));
        };
        message_text::check_variables(&vars).map_err(TwilioError::Invalid)?;
    }
    if let Some(body) = msg.body.as_deref() {
        message_text::check_body("the text", body, msg.content_sid.is_some())
            .map_err(TwilioError::Invalid)?;
    }
    let mut form: Vec<(&'static str, String)> = vec![("To", msg.to.as_str().to_owned())];
    match &msg.sender {
        Sender::From(from) => form.push(("From", from.as_str().to_owned())),
        Sender::MessagingService(sid) => form.push(("MessagingServiceSid", sid.clone())),
    }
    if let Some(body) = msg.body.as_deref().filter(|b| !b.is_empty()) {
        form.push(("Body", body.to_owned()));
    }
    for url in &msg.media_urls {
        form.push(("MediaUrl", url.clone()));
    }
    if let Some(c) = &msg.content_sid {
        form.push(("ContentSid", c.clone()));
    }
    if let Some(v) = &msg.content_variables {
        form.push(("ContentVariables", v.clone()));
    }
    if let Some(cb) = status_callback {
        form.push(("StatusCallback", cb.to_owned()));
    }
    Ok(form)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::twilio::client::tests::text;

    #[test]
    fn bad_messages_are_refused_before_sending() {
        let mut m = text("+919900000000", "");
        assert!(create_form(&m, None).is_err(), "nothing to send");
        m.media_urls = (0..11).map(|i| format!("https://x/{i}.png")).collect();
        assert!(
            create_form(&m, None)
                .unwrap_err()
                .to_string()
                .contains("at most 10")
        );
        m.media_urls = vec!["file:///etc/passwd".into()];
        assert!(create_form(&m, None).is_err());
        let mut t = text("+919900000000", "");
        t.content_sid = Some("HX123".into());
        t.content_variables = Some("[1]".into());
        assert!(create_form(&t, None).is_err());
        t.content_variables = Some("{\"1\":\"Ada\"}".into());
        let form = create_form(&t, None).unwrap();
        assert!(form.contains(&("ContentSid", "HX123".into())));
        t.content_variables = Some("{\"1\":\"Ada\",\"3\":\"x\"}".into());
        assert!(
            create_form(&t, None)
                .unwrap_err()
                .to_string()
                .contains("{{2}}")
        );
    }

    #[test]
    fn text_over_twilios_limit_or_with_unfilled_placeholders_is_refused() {
        let long = text("+919900000000", &"a".repeat(1601));
        let e = create_form(&long, None).unwrap_err().to_string();
        assert!(e.contains("21617"), "{e}");
        assert!(create_form(&text("+919900000000", &"a".repeat(1600)), None).is_ok());
        let e = create_form(&text("+919900000000", "Hi {{1}}"), None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("{{1}}"), "{e}");
    }
}
