//! What one accepted webhook (or REST response) contributes to the database: facts about the
//! message, one status report, and the raw parameters for the event log.

use chrono::{DateTime, Utc};
use sha2::Digest;

use crate::domain::{Direction, EventSource, MessageSid, StatusReport};

/// One media attachment (`MediaUrlN` / `MediaContentTypeN`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Media {
    pub url: String,
    pub content_type: Option<String>,
}

/// Facts about a message that do not change once known. On merge the first non-empty value
/// wins, so a bare status callback never erases the body an inbound webhook stored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageFacts {
    pub account_sid: Option<String>,
    pub messaging_service_sid: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub body: Option<String>,
    pub num_media: i32,
    pub media: Vec<Media>,
    pub profile_name: Option<String>,
    pub wa_id: Option<String>,
    /// A button tapped or a list item chosen (inbound messages only).
    pub interactive: Option<crate::domain::interactive::InteractiveReply>,
}

impl MessageFacts {
    pub fn fill_from(&mut self, other: &MessageFacts) {
        fn fill(slot: &mut Option<String>, v: &Option<String>) {
            if slot.is_none() {
                slot.clone_from(v);
            }
        }
        fill(&mut self.account_sid, &other.account_sid);
        fill(
            &mut self.messaging_service_sid,
            &other.messaging_service_sid,
        );
        fill(&mut self.from, &other.from);
        fill(&mut self.to, &other.to);
        fill(&mut self.body, &other.body);
        fill(&mut self.profile_name, &other.profile_name);
        fill(&mut self.wa_id, &other.wa_id);
        if self.interactive.is_none() {
            self.interactive.clone_from(&other.interactive);
        }
        if self.media.is_empty() && !other.media.is_empty() {
            self.media.clone_from(&other.media);
        }
        self.num_media = self.num_media.max(other.num_media);
    }
}

/// One event to store.
#[derive(Debug, Clone)]
pub struct EventRecord {
    pub sid: MessageSid,
    pub direction: Direction,
    pub facts: MessageFacts,
    pub report: StatusReport,
    /// Every parameter as received, as the text of a JSON object (repeated names become
    /// arrays). Kept as text: it is stored as `json` text, which PostgreSQL only validates,
    /// so building a `serde_json::Value` on the hot path would only cost allocations.
    pub params: String,
    pub source: EventSource,
    /// Identifies a duplicate: the same source and exactly the same parameters.
    pub dedup_key: [u8; 16],
    pub received_at: DateTime<Utc>,
}

impl EventRecord {
    /// An event from `source` with the parameters `params` as received: the stored parameters
    /// and the key that identifies a duplicate both come from them.
    pub fn new(
        sid: MessageSid,
        direction: Direction,
        facts: MessageFacts,
        report: StatusReport,
        source: EventSource,
        params: &[(String, String)],
        received_at: DateTime<Utc>,
    ) -> Self {
        Self {
            sid,
            direction,
            facts,
            report,
            params: params_json(params),
            source,
            dedup_key: dedup_key(source, params),
            received_at,
        }
    }
}

/// Hash of the source and the sorted parameters. Twilio's retries and duplicated callbacks
/// repeat the body byte for byte, so equal parameters mean the same callback; two callbacks
/// that differ in any field (a new status, an error code) are two events.
pub fn dedup_key(source: EventSource, params: &[(String, String)]) -> [u8; 16] {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort_unstable();
    let mut h = sha2::Sha256::new();
    h.update(source.as_str().as_bytes());
    for (k, v) in sorted {
        h.update([0u8]);
        h.update(k.as_bytes());
        h.update([0u8]);
        h.update(v.as_bytes());
    }
    let digest = h.finalize();
    let mut key = [0u8; 16];
    key.copy_from_slice(&digest[..16]);
    key
}

/// The parameters as the text of a JSON object, in the order received, keeping every field;
/// a name that occurs more than once maps to the array of its values.
pub fn params_json(params: &[(String, String)]) -> String {
    fn string(out: &mut Vec<u8>, s: &str) {
        serde_json::to_writer(&mut *out, s).expect("writing to a Vec cannot fail");
    }
    let mut out = Vec::with_capacity(
        params
            .iter()
            .map(|(k, v)| k.len() + v.len() + 6)
            .sum::<usize>()
            + 2,
    );
    out.push(b'{');
    for (i, (k, v)) in params.iter().enumerate() {
        if params[..i].iter().any(|(seen, _)| seen == k) {
            continue; // written with its first occurrence
        }
        if out.len() > 1 {
            out.push(b',');
        }
        string(&mut out, k);
        out.push(b':');
        let mut repeats = params[i + 1..]
            .iter()
            .filter(|(other, _)| other == k)
            .peekable();
        if repeats.peek().is_none() {
            string(&mut out, v);
        } else {
            out.push(b'[');
            string(&mut out, v);
            for (_, more) in repeats {
                out.push(b',');
                string(&mut out, more);
            }
            out.push(b']');
        }
    }
    out.push(b'}');
    String::from_utf8(out).expect("JSON of UTF-8 strings is UTF-8")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect()
    }

    #[test]
    fn dedup_key_ignores_parameter_order_but_not_values_or_source() {
        let a = p(&[("A", "1"), ("B", "2")]);
        let b = p(&[("B", "2"), ("A", "1")]);
        let c = p(&[("A", "1"), ("B", "3")]);
        let k = dedup_key(EventSource::StatusCallback, &a);
        assert_eq!(k, dedup_key(EventSource::StatusCallback, &b));
        assert_ne!(k, dedup_key(EventSource::StatusCallback, &c));
        assert_ne!(k, dedup_key(EventSource::Inbound, &a));
        // Field boundaries matter: "AB"="" is not "A"="B".
        assert_ne!(
            dedup_key(EventSource::Inbound, &p(&[("AB", "")])),
            dedup_key(EventSource::Inbound, &p(&[("A", "B")]))
        );
    }

    #[test]
    fn params_keep_repeated_names_and_escape_everything() {
        let text = params_json(&p(&[
            ("X", "1"),
            ("Y", "2\"\\\n<\u{1}"),
            ("X", "3"),
            ("X", "4"),
        ]));
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["X"], serde_json::json!(["1", "3", "4"]));
        assert_eq!(v["Y"], "2\"\\\n<\u{1}");
        assert_eq!(v.as_object().unwrap().len(), 2);
        assert_eq!(params_json(&[]), "{}");
    }
}
