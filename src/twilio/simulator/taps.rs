//! Simulated recipients tapping quick-reply buttons or picking list items: which messages get
//! a tap and which button (both decided by the message's SID, so a test with share 1.0 knows what happens),
//! and the inbound webhook Twilio would post for the tap.

use secrecy::ExposeSecret;
use sha2::Digest;

use super::{SimMessage, SimState};
use crate::twilio::signature;

/// Whether the recipient of message `sid` taps, and which of `buttons` (id, title): a share
/// `share` of messages tap (1.0: every one, 0: none), the button chosen by the SID's hash.
pub(super) fn choose<'b>(
    sid: &str,
    share: f64,
    buttons: &'b [(String, String)],
) -> Option<(&'b str, &'b str)> {
    if buttons.is_empty() {
        return None;
    }
    let digest = sha2::Sha256::digest(sid.as_bytes());
    let word = |i: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&digest[i..i + 8]);
        u64::from_be_bytes(b)
    };
    // 53 random bits: a fraction in [0, 1), below 1.0 always and below 0 never.
    let fraction = (word(0) >> 11) as f64 / (1u64 << 53) as f64;
    if fraction >= share {
        return None;
    }
    let (id, title) = &buttons[(word(8) % buttons.len() as u64) as usize];
    Some((id, title))
}

/// The inbound webhook of a tap on button `id` / `title` of `msg` (or the choice of that
/// item of its list), as Twilio posts it: from the recipient to the sender, with the button's
/// payload and text (the item's id and title) and the message tapped.
pub(super) fn params(
    account_sid: &str,
    msg: &SimMessage,
    id: &str,
    title: &str,
) -> Vec<(String, String)> {
    let sid = format!("SM{}", crate::domain::random_hex(16));
    let wa_id = msg
        .to
        .trim_start_matches("whatsapp:")
        .trim_start_matches('+');
    [
        ("SmsMessageSid", sid.as_str()),
        ("SmsSid", sid.as_str()),
        ("MessageSid", sid.as_str()),
        ("AccountSid", account_sid),
        ("From", msg.to.as_str()),
        ("To", msg.from.as_str()),
        ("WaId", wa_id),
        ("SmsStatus", "received"),
        ("NumSegments", "1"),
        ("NumMedia", "0"),
        ("ReferralNumMedia", "0"),
        (
            "MessageType",
            if msg.list { "interactive" } else { "button" },
        ),
        ("Body", title),
        (if msg.list { "ListTitle" } else { "ButtonText" }, title),
        (if msg.list { "ListId" } else { "ButtonPayload" }, id),
        ("OriginalRepliedMessageSid", msg.sid.as_str()),
        ("OriginalRepliedMessageSender", msg.from.as_str()),
        ("ApiVersion", "2010-04-01"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect()
}

/// Posts a tap to `url`, signed with the account's token as Twilio signs.
pub(super) async fn post(state: &SimState, url: &str, params: &[(String, String)]) {
    let signature = signature::compute(state.token.expose_secret().as_bytes(), url, params);
    let result = state
        .http
        .post(url)
        .header("X-Twilio-Signature", signature)
        .form(params)
        .send()
        .await;
    match result {
        Ok(r) if r.status().is_success() => {}
        Ok(r) => {
            tracing::warn!(%url, http = r.status().as_u16(), "simulator: button tap refused")
        }
        Err(e) => tracing::warn!(%url, error = %e, "simulator: button tap not delivered"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn buttons() -> Vec<(String, String)> {
        vec![
            ("confirm".into(), "Yes".into()),
            ("reschedule".into(), "Reschedule".into()),
        ]
    }

    #[test]
    fn share_one_always_taps_share_zero_never_and_the_sid_picks_the_button() {
        let b = buttons();
        let sids: Vec<String> = (0..200).map(|i| format!("SM{i:032x}")).collect();
        let picked: Vec<&str> = sids
            .iter()
            .map(|s| choose(s, 1.0, &b).expect("share 1.0 always taps").0)
            .collect();
        assert!(sids.iter().all(|s| choose(s, 0.0, &b).is_none()));
        assert!(picked.contains(&"confirm") && picked.contains(&"reschedule"));
        // The same SID, the same decision.
        assert_eq!(choose(&sids[7], 1.0, &b), choose(&sids[7], 1.0, &b));
        assert_eq!(choose(&sids[7], 1.0, &[]), None, "no buttons, no tap");
        let some = sids.iter().filter(|s| choose(s, 0.3, &b).is_some()).count();
        assert!((20..=100).contains(&some), "about 30 % of 200 tap: {some}");
    }

    #[test]
    fn a_tap_comes_from_the_recipient_and_names_the_message() {
        let msg = SimMessage {
            sid: "SM00000000000000000000000000000001".into(),
            to: "whatsapp:+919900000001".into(),
            from: "whatsapp:+14155238886".into(),
            body: String::new(),
            num_media: 0,
            messaging_service_sid: None,
            status: "delivered".into(),
            error_code: None,
            error_message: None,
            created: chrono::Utc::now(),
            updated: chrono::Utc::now(),
            buttons: buttons(),
            list: false,
        };
        let p = params("AC1", &msg, "confirm", "Yes");
        let get = |k: &str| p.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("From"), Some("whatsapp:+919900000001"));
        assert_eq!(get("To"), Some("whatsapp:+14155238886"));
        assert_eq!(get("ButtonPayload"), Some("confirm"));
        assert_eq!(get("Body"), Some("Yes"));
        assert_eq!(get("WaId"), Some("919900000001"));
        assert_eq!(get("OriginalRepliedMessageSid"), Some(msg.sid.as_str()));
        assert_ne!(get("MessageSid"), Some(msg.sid.as_str()));
        assert_eq!(get("ListId"), None);

        let list = SimMessage { list: true, ..msg };
        let p = params("AC1", &list, "tue", "Tuesday");
        let get = |k: &str| p.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(
            (get("ListId"), get("ListTitle")),
            (Some("tue"), Some("Tuesday"))
        );
        assert_eq!(
            (get("ButtonPayload"), get("MessageType")),
            (None, Some("interactive"))
        );
    }
}
