//! The message filters shared by the API (`GET /api/v1/messages`) and the dashboard's log
//! page and CSV export: one parser, one meaning for every parameter.

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::{MessageStatus, PhoneNumber, WhatsAppAddress};
use crate::storage::messages::{Cursor, MessageFilter};

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct ListQuery {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direction: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub q: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Parsed {
    pub filter: MessageFilter,
    pub cursor: Option<Cursor>,
    pub limit: i64,
}

fn nonempty(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// RFC 3339, or the `YYYY-MM-DDTHH:MM[:SS]` of a `datetime-local` field, read as UTC.
pub fn parse_time(name: &str, v: Option<&str>) -> Result<Option<DateTime<Utc>>, String> {
    let Some(s) = v.map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(Some(t.with_timezone(&Utc)));
    }
    for f in ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, f) {
            return Ok(Some(t.and_utc()));
        }
    }
    Err(format!(
        "{name} must be an RFC 3339 time such as 2026-11-24T09:00:00Z, got {s:?}"
    ))
}

impl ListQuery {
    pub fn parse(&self, default_limit: i64, max_limit: i64) -> Result<Parsed, String> {
        let status = match nonempty(&self.status) {
            None => None,
            Some(s) => match MessageStatus::parse(s) {
                MessageStatus::Other(o) => return Err(format!("unknown status {o:?}")),
                known => Some(known.as_str().to_owned()),
            },
        };
        let direction = match nonempty(&self.direction) {
            None => None,
            Some(d @ ("inbound" | "outbound")) => Some(d.to_owned()),
            Some(d) => return Err(format!("direction must be inbound or outbound, got {d:?}")),
        };
        let number = match nonempty(&self.number) {
            None => None,
            Some(n) => Some(PhoneNumber::parse(n)?.as_str().to_owned()),
        };
        let sender = match nonempty(&self.sender) {
            None => None,
            Some(s) if s.starts_with("MG") => Some(s.to_owned()),
            Some(s) => Some(
                WhatsAppAddress::parse(s)
                    .map_err(|e| format!("sender: {e}"))?
                    .as_str()
                    .to_owned(),
            ),
        };
        let error_code = match nonempty(&self.error_code) {
            None => None,
            Some(c) => Some(
                c.parse::<i32>()
                    .map_err(|_| format!("error_code must be a number, got {c:?}"))?,
            ),
        };
        let limit = match nonempty(&self.limit) {
            None => default_limit,
            Some(l) => match l.parse::<i64>() {
                Ok(n) if (1..=max_limit).contains(&n) => n,
                _ => {
                    return Err(format!(
                        "limit must be between 1 and {max_limit}, got {l:?}"
                    ));
                }
            },
        };
        let cursor = match nonempty(&self.cursor) {
            None => None,
            Some(c) => Some(Cursor::decode(c).ok_or("cursor is not one this server returned")?),
        };
        Ok(Parsed {
            filter: MessageFilter {
                status,
                direction,
                number,
                since: parse_time("since", self.since.as_deref())?,
                until: parse_time("until", self.until.as_deref())?,
                text: nonempty(&self.q).map(str::to_owned),
                error_code,
                sender,
            },
            cursor,
            limit,
        })
    }

    /// The same filters as a query string, with another cursor (for "next page" links).
    pub fn with_cursor(&self, cursor: Option<String>) -> String {
        let mut q = self.clone();
        q.cursor = cursor;
        q.limit = None;
        serde_urlencoded::to_string(&q).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_parse_or_explain() {
        let q = ListQuery {
            status: Some("Delivered".into()),
            number: Some("+91 99000 00000".into()),
            sender: Some("+14155238886".into()),
            since: Some("2026-11-24T09:00".into()),
            ..Default::default()
        };
        let p = q.parse(50, 500).unwrap();
        assert_eq!(p.filter.status.as_deref(), Some("delivered"));
        assert_eq!(p.filter.number.as_deref(), Some("+919900000000"));
        assert_eq!(p.filter.sender.as_deref(), Some("whatsapp:+14155238886"));
        assert_eq!(
            p.filter.since.unwrap().to_rfc3339(),
            "2026-11-24T09:00:00+00:00"
        );
        for bad in [
            ListQuery {
                status: Some("lost".into()),
                ..Default::default()
            },
            ListQuery {
                direction: Some("up".into()),
                ..Default::default()
            },
            ListQuery {
                limit: Some("0".into()),
                ..Default::default()
            },
            ListQuery {
                cursor: Some("???".into()),
                ..Default::default()
            },
            ListQuery {
                since: Some("yesterday".into()),
                ..Default::default()
            },
        ] {
            assert!(bad.parse(50, 500).is_err(), "{bad:?}");
        }
        assert_eq!(
            ListQuery {
                status: Some("read".into()),
                ..Default::default()
            }
            .with_cursor(Some("abc".into())),
            "status=read&cursor=abc"
        );
    }
}
