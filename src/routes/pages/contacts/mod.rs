//! `/contacts`: the people the business talks to. The list (filters in the URL, keyset
//! pages, a tag list), one contact with its consent history, previous numbers and 24-hour
//! window, the operator's forms (consent, tags and name, number change), and CSV import
//! (pasted into a form) and export. Everything goes through `crate::contacts`, as the API
//! does, so both validate and record alike.

mod contact;
mod import;
mod list;

use actix_web::web;
use chrono::{DateTime, Utc};

use crate::contacts::view::ContactView;
use crate::domain::window::{self, Window};
use crate::routes::pages::format;
use crate::storage::contacts::ContactRow;

pub fn configure(cfg: &mut web::ServiceConfig) {
    // The fixed paths first: `/contacts/{number}` would otherwise take them.
    list::configure(cfg);
    import::configure(cfg);
    contact::configure(cfg);
}

/// A consent state as the pages show it: the CSS class suffix and the words.
fn consent_label(consent: &str) -> &'static str {
    match consent {
        "opted_in" => "opted in",
        "opted_out" => "opted out",
        "deauthorized" => "de-authorized",
        _ => "unknown",
    }
}

/// A contact as the list and the contact page show it.
struct ContactItem {
    number: String,
    name: String,
    consent: String,
    consent_label: &'static str,
    window_left: String,
    tags: Vec<TagLink>,
    /// None: never heard from.
    last_inbound: Option<format::Stamp>,
}

struct TagLink {
    tag: String,
    href: String,
    count: i64,
}

fn tag_link(tag: &str, count: i64) -> TagLink {
    TagLink {
        href: format!(
            "/contacts?{}",
            serde_urlencoded::to_string([("tag", tag)]).unwrap_or_default()
        ),
        tag: tag.to_owned(),
        count,
    }
}

fn item(c: ContactRow, now: DateTime<Utc>, tz: chrono_tz::Tz) -> ContactItem {
    let left = window::time_left(Window::at(c.last_inbound_at, now), now);
    let v = ContactView::new(c, now);
    ContactItem {
        consent_label: consent_label(&v.consent),
        tags: v.tags.iter().map(|t| tag_link(t, 0)).collect(),
        last_inbound: format::Stamp::of(v.last_inbound_at, tz),
        window_left: left,
        name: v.profile_name.unwrap_or_default(),
        number: v.number,
        consent: v.consent,
    }
}
