//! The "new template" form's fields: read from the posted form (repeated parts as numbered
//! rows, `reply_title_0`, `reply_title_1`, …), turned into a [`Definition`] for
//! [`crate::templates::manage`], into Twilio's `types` as typed so far for the live preview,
//! and a refusal ([`Invalid`]) placed next to the field it names. Pure: no I/O.

use std::collections::{BTreeMap, HashMap};

use serde::Deserialize;
use serde_json::{Value, json};

use crate::templates::definition::{Action, Definition, Invalid, ListItem, TYPES};

/// The content types the form offers, with their labels.
pub const KINDS: &[(&str, &str)] = &[
    ("twilio/text", "Text"),
    ("twilio/media", "Media (image, video or document with text)"),
    ("twilio/quick-reply", "Quick reply (up to 10 buttons)"),
    (
        "twilio/call-to-action",
        "Call to action (URL or phone buttons)",
    ),
    (
        "twilio/list-picker",
        "List picker (a menu of up to 10 items)",
    ),
    ("twilio/card", "Card (title, subtitle, image, buttons)"),
];

/// The most rows of each repeated part (WhatsApp's limits; more would be refused anyway).
pub const MAX_SAMPLES: usize = 10;
pub const MAX_REPLIES: usize = 10;
pub const MAX_CTAS: usize = 2;
pub const MAX_ITEMS: usize = 10;

/// The repeated parts, by the name their rows and their "add another" button use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Samples,
    Replies,
    Ctas,
    Items,
}

impl Section {
    const ALL: [Section; 4] = [
        Section::Samples,
        Section::Replies,
        Section::Ctas,
        Section::Items,
    ];

    pub fn key(self) -> &'static str {
        match self {
            Section::Samples => "samples",
            Section::Replies => "replies",
            Section::Ctas => "ctas",
            Section::Items => "items",
        }
    }

    fn max(self) -> usize {
        match self {
            Section::Samples => MAX_SAMPLES,
            Section::Replies => MAX_REPLIES,
            Section::Ctas => MAX_CTAS,
            Section::Items => MAX_ITEMS,
        }
    }

    /// Rows on a blank form.
    fn first(self) -> usize {
        match self {
            Section::Samples | Section::Replies | Section::Items => 3,
            Section::Ctas => 2,
        }
    }

    /// The names of one row's fields (without the `_{index}`).
    fn fields(self) -> &'static [&'static str] {
        match self {
            Section::Samples => &["sample"],
            Section::Replies => &["reply_title", "reply_id"],
            Section::Ctas => &["cta_title", "cta_kind", "cta_target"],
            Section::Items => &["item_item", "item_id", "item_description"],
        }
    }
}

/// The form as posted. Rows come in `rest` (`sample_0`, `reply_title_0`, …).
#[derive(Debug, Default, Deserialize)]
pub struct PostedForm {
    #[serde(default)]
    pub csrf: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub language: String,
    #[serde(default, rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub body: String,
    #[serde(default)]
    pub media: String,
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub subtitle: String,
    /// A list picker's button text.
    #[serde(default)]
    pub button: String,
    /// Which button submitted the form: `add-samples` (and the other sections), `preview`,
    /// or empty (create).
    #[serde(default)]
    pub more: String,
    #[serde(flatten)]
    pub rest: HashMap<String, String>,
}

crate::routes::pages::guard::csrf_forms!(PostedForm);

/// An error shown next to a field.
pub type FieldError = Option<String>;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SampleRow {
    pub value: String,
    pub error: FieldError,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplyRow {
    pub title: String,
    pub id: String,
    pub title_error: FieldError,
    pub id_error: FieldError,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CtaRow {
    pub title: String,
    /// `URL` or `PHONE_NUMBER`.
    pub kind: String,
    /// The URL or the phone number.
    pub target: String,
    pub title_error: FieldError,
    pub kind_error: FieldError,
    pub target_error: FieldError,
}

impl Default for CtaRow {
    fn default() -> Self {
        Self {
            title: String::new(),
            kind: "URL".into(),
            target: String::new(),
            title_error: None,
            kind_error: None,
            target_error: None,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ItemRow {
    pub item: String,
    pub id: String,
    pub description: String,
    pub item_error: FieldError,
    pub id_error: FieldError,
    pub description_error: FieldError,
}

/// The errors of the form's single fields and sections, by field name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Errors(BTreeMap<&'static str, String>);

impl Errors {
    /// The error next to field `key` (`name`, `body`, `replies`, …), if any.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }
}

/// The form's fields as typed, with the errors placed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fields {
    pub name: String,
    pub language: String,
    pub kind: String,
    pub body: String,
    pub media: String,
    pub title: String,
    pub subtitle: String,
    pub button: String,
    pub samples: Vec<SampleRow>,
    pub replies: Vec<ReplyRow>,
    pub ctas: Vec<CtaRow>,
    pub items: Vec<ItemRow>,
    pub errors: Errors,
    /// The whole refusal, for the summary above the form, and the id of the field it names.
    pub summary: Option<(String, String)>,
}

impl Default for Fields {
    fn default() -> Self {
        let mut f = Self {
            name: String::new(),
            language: "en".into(),
            kind: "twilio/text".into(),
            body: String::new(),
            media: String::new(),
            title: String::new(),
            subtitle: String::new(),
            button: String::new(),
            samples: Vec::new(),
            replies: Vec::new(),
            ctas: Vec::new(),
            items: Vec::new(),
            errors: Errors::default(),
            summary: None,
        };
        for s in Section::ALL {
            f.pad(s, s.first());
        }
        f
    }
}

fn non_empty(s: &str) -> Option<String> {
    Some(s.trim().to_owned()).filter(|s| !s.is_empty())
}

impl Fields {
    /// The fields of a posted form; `more` adds an empty row to the section it names.
    pub fn of(form: &PostedForm) -> Self {
        let get = |name: &str, i: usize| {
            form.rest
                .get(&format!("{name}_{i}"))
                .cloned()
                .unwrap_or_default()
        };
        let rows = |s: Section| {
            let posted = form
                .rest
                .get(&format!("{}_rows", s.key()))
                .and_then(|n| n.trim().parse::<usize>().ok())
                .unwrap_or(0);
            let present = (0..s.max())
                .rev()
                .find(|i| {
                    s.fields()
                        .iter()
                        .any(|f| form.rest.contains_key(&format!("{f}_{i}")))
                })
                .map_or(0, |i| i + 1);
            posted.max(present).min(s.max())
        };
        let mut f = Self {
            name: form.name.clone(),
            language: form.language.clone(),
            kind: form.kind.clone(),
            body: form.body.clone(),
            media: form.media.clone(),
            title: form.title.clone(),
            subtitle: form.subtitle.clone(),
            button: form.button.clone(),
            samples: (0..rows(Section::Samples))
                .map(|i| SampleRow {
                    value: get("sample", i),
                    error: None,
                })
                .collect(),
            replies: (0..rows(Section::Replies))
                .map(|i| ReplyRow {
                    title: get("reply_title", i),
                    id: get("reply_id", i),
                    ..Default::default()
                })
                .collect(),
            ctas: (0..rows(Section::Ctas))
                .map(|i| CtaRow {
                    title: get("cta_title", i),
                    kind: Some(get("cta_kind", i))
                        .filter(|k| !k.is_empty())
                        .unwrap_or_else(|| "URL".into()),
                    target: get("cta_target", i),
                    ..Default::default()
                })
                .collect(),
            items: (0..rows(Section::Items))
                .map(|i| ItemRow {
                    item: get("item_item", i),
                    id: get("item_id", i),
                    description: get("item_description", i),
                    ..Default::default()
                })
                .collect(),
            errors: Errors::default(),
            summary: None,
        };
        for s in Section::ALL {
            let extra = usize::from(form.more == format!("add-{}", s.key()));
            f.pad(s, (f.len(s) + extra).max(s.first()));
        }
        f
    }

    pub fn len(&self, s: Section) -> usize {
        match s {
            Section::Samples => self.samples.len(),
            Section::Replies => self.replies.len(),
            Section::Ctas => self.ctas.len(),
            Section::Items => self.items.len(),
        }
    }

    /// Whether another row of `s` may be added.
    pub fn can_add(&self, s: &Section) -> bool {
        let s = *s;
        self.len(s) < s.max()
    }

    /// Adds empty rows to `s` up to `n` (at most its limit).
    fn pad(&mut self, s: Section, n: usize) {
        let n = n.min(s.max());
        match s {
            Section::Samples => self
                .samples
                .resize(n.max(self.samples.len()), SampleRow::default()),
            Section::Replies => self
                .replies
                .resize(n.max(self.replies.len()), ReplyRow::default()),
            Section::Ctas => self.ctas.resize(n.max(self.ctas.len()), CtaRow::default()),
            Section::Items => self
                .items
                .resize(n.max(self.items.len()), ItemRow::default()),
        }
    }

    fn is(&self, kind: &str) -> bool {
        self.kind.trim() == kind
    }

    /// The sample values given, by placeholder number.
    pub fn samples(&self) -> BTreeMap<String, String> {
        self.samples
            .iter()
            .enumerate()
            .filter(|(_, s)| !s.value.trim().is_empty())
            .map(|(i, s)| ((i + 1).to_string(), s.value.clone()))
            .collect()
    }

    /// The filled reply rows (title or id), with their row numbers.
    fn filled_replies(&self) -> Vec<(usize, &ReplyRow)> {
        self.replies
            .iter()
            .enumerate()
            .filter(|(_, r)| non_empty(&r.title).is_some() || non_empty(&r.id).is_some())
            .collect()
    }

    fn filled_ctas(&self) -> Vec<(usize, &CtaRow)> {
        self.ctas
            .iter()
            .enumerate()
            .filter(|(_, r)| non_empty(&r.title).is_some() || non_empty(&r.target).is_some())
            .collect()
    }

    fn filled_items(&self) -> Vec<(usize, &ItemRow)> {
        self.items
            .iter()
            .enumerate()
            .filter(|(_, r)| {
                [&r.item, &r.id, &r.description]
                    .iter()
                    .any(|s| non_empty(s).is_some())
            })
            .collect()
    }

    /// The parts of this kind: the buttons and the list items it has (others are ignored).
    fn actions(&self) -> (Vec<Action>, Vec<usize>) {
        if self.is("twilio/quick-reply") || self.is("twilio/card") {
            self.filled_replies()
                .into_iter()
                .map(|(i, r)| {
                    (
                        Action {
                            title: r.title.trim().to_owned(),
                            id: non_empty(&r.id),
                            kind: None,
                            url: None,
                            phone: None,
                        },
                        i,
                    )
                })
                .unzip()
        } else if self.is("twilio/call-to-action") {
            self.filled_ctas()
                .into_iter()
                .map(|(i, r)| {
                    let phone = r.kind == "PHONE_NUMBER";
                    let target = r.target.trim().to_owned();
                    (
                        Action {
                            title: r.title.trim().to_owned(),
                            id: None,
                            kind: Some(r.kind.clone()),
                            url: (!phone).then(|| target.clone()),
                            phone: phone.then_some(target),
                        },
                        i,
                    )
                })
                .unzip()
        } else {
            (Vec::new(), Vec::new())
        }
    }

    fn list_items(&self) -> (Vec<ListItem>, Vec<usize>) {
        if !self.is("twilio/list-picker") {
            return (Vec::new(), Vec::new());
        }
        self.filled_items()
            .into_iter()
            .map(|(i, r)| {
                (
                    ListItem {
                        item: r.item.trim().to_owned(),
                        id: r.id.trim().to_owned(),
                        description: non_empty(&r.description),
                    },
                    i,
                )
            })
            .unzip()
    }

    fn uses_media(&self) -> bool {
        self.is("twilio/media") || self.is("twilio/card")
    }

    /// The definition the services check and create.
    pub fn definition(&self) -> Definition {
        let card = self.is("twilio/card");
        Definition {
            name: self.name.trim().to_owned(),
            language: self.language.trim().to_owned(),
            kind: self.kind.trim().to_owned(),
            body: (!card).then(|| self.body.clone()),
            variables: self.samples(),
            actions: self.actions().0,
            media: non_empty(&self.media)
                .filter(|_| self.uses_media())
                .into_iter()
                .collect(),
            items: self.list_items().0,
            button: self
                .is("twilio/list-picker")
                .then(|| self.button.trim().to_owned()),
            title: card.then(|| self.title.clone()),
            subtitle: non_empty(&self.subtitle).filter(|_| card),
        }
    }

    /// Twilio's `types` as typed so far, unchecked (the live preview of a form still being
    /// filled in): the same shape [`Definition::check`] builds.
    pub fn preview_types(&self) -> Value {
        let kind = if TYPES.contains(&self.kind.trim()) {
            self.kind.trim()
        } else {
            "twilio/text"
        };
        let body = self.body.as_str();
        let media: Vec<String> = non_empty(&self.media).into_iter().collect();
        let actions = self.actions().0;
        let replies: Vec<Value> = actions
            .iter()
            .map(|a| {
                let id = a.id.clone().unwrap_or_else(|| a.title.clone());
                if kind == "twilio/card" {
                    json!({"type": "QUICK_REPLY", "title": a.title, "id": id})
                } else {
                    json!({"title": a.title, "id": id})
                }
            })
            .collect();
        let content = match kind {
            "twilio/media" => json!({"body": body, "media": media}),
            "twilio/quick-reply" => json!({"body": body, "actions": replies}),
            "twilio/call-to-action" => {
                let ctas: Vec<Value> = actions
                    .iter()
                    .map(|a| match (&a.url, &a.phone) {
                        (_, Some(p)) => {
                            json!({"type": "PHONE_NUMBER", "title": a.title, "phone": p})
                        }
                        (u, None) => json!({"type": "URL", "title": a.title, "url": u}),
                    })
                    .collect();
                json!({"body": body, "actions": ctas})
            }
            "twilio/list-picker" => {
                let items: Vec<Value> = self
                    .list_items()
                    .0
                    .iter()
                    .map(|i| json!({"item": i.item, "id": i.id, "description": i.description}))
                    .collect();
                json!({"body": body, "button": self.button.trim(), "items": items})
            }
            "twilio/card" => json!({"title": self.title, "subtitle": self.subtitle,
                "media": media, "actions": replies}),
            _ => json!({"body": body}),
        };
        json!({ kind: content })
    }

    /// Places `why` next to the field it names (rows by where they are on the form, not by
    /// their place among the filled ones) and keeps it for the summary.
    pub fn refuse(&mut self, why: &Invalid) {
        let (_, action_rows) = self.actions();
        let (_, item_rows) = self.list_items();
        let card = self.is("twilio/card");
        let cta = self.is("twilio/call-to-action");
        let reason = why.reason.clone();
        let field = why.field.as_str();
        // `actions[2].title` → ("actions", Some(2), "title").
        let (head, index, part) = match field.split_once('[') {
            Some((head, rest)) => {
                let (n, part) = rest.split_once(']').unwrap_or((rest, ""));
                (head, n.parse::<usize>().ok(), part.trim_start_matches('.'))
            }
            None => (field, None, ""),
        };
        let anchor: String = match (head, index) {
            ("actions", Some(n)) => {
                let row = action_rows.get(n).copied().unwrap_or(n);
                if cta {
                    if let Some(r) = self.ctas.get_mut(row) {
                        match part {
                            "title" => r.title_error = Some(reason.clone()),
                            "type" => r.kind_error = Some(reason.clone()),
                            _ => r.target_error = Some(reason.clone()),
                        }
                    }
                    format!(
                        "cta-{}-{row}",
                        match part {
                            "title" => "title",
                            "type" => "kind",
                            _ => "target",
                        }
                    )
                } else {
                    if let Some(r) = self.replies.get_mut(row) {
                        match part {
                            "id" => r.id_error = Some(reason.clone()),
                            _ => r.title_error = Some(reason.clone()),
                        }
                    }
                    format!("reply-{}-{row}", if part == "id" { "id" } else { "title" })
                }
            }
            ("items", Some(n)) => {
                let row = item_rows.get(n).copied().unwrap_or(n);
                if let Some(r) = self.items.get_mut(row) {
                    match part {
                        "id" => r.id_error = Some(reason.clone()),
                        "description" => r.description_error = Some(reason.clone()),
                        _ => r.item_error = Some(reason.clone()),
                    }
                }
                let part = if ["id", "description"].contains(&part) {
                    part
                } else {
                    "item"
                };
                format!("item-{part}-{row}")
            }
            ("media", _) => self.place("media", reason),
            ("actions", None) if cta => self.place("ctas", reason),
            ("actions", None) => self.place("replies", reason),
            ("items", None) => self.place("items", reason),
            _ if field.starts_with("variables.") => {
                let n = field["variables.".len()..].parse::<usize>().unwrap_or(0);
                match n.checked_sub(1).and_then(|i| self.samples.get_mut(i)) {
                    Some(row) => {
                        row.error = Some(reason.clone());
                        format!("sample-{}", n - 1)
                    }
                    None => self.place("samples", reason),
                }
            }
            // A card's placeholders are in its title.
            ("body", _) if card => self.place("title", reason),
            ("name" | "language" | "type" | "body" | "title" | "subtitle" | "button", _) => {
                let key = match head {
                    "name" => "name",
                    "language" => "language",
                    "type" => "type",
                    "body" => "body",
                    "title" => "title",
                    "subtitle" => "subtitle",
                    _ => "button",
                };
                self.place(key, reason)
            }
            _ => self.place("form", reason),
        };
        self.summary = Some((why.to_string(), anchor));
    }

    /// Puts an error on single field `key`; returns the id of its element.
    fn place(&mut self, key: &'static str, reason: String) -> String {
        self.errors.0.insert(key, reason);
        format!("t-{key}")
    }
}

/// A name WhatsApp takes, suggested from a friendly name: lower case, anything other than a
/// letter or a digit as one underscore.
pub fn whatsapp_name(friendly: &str) -> String {
    let mut out = String::new();
    for c in friendly.trim().chars().flat_map(char::to_lowercase) {
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            out.push(c);
        } else if !out.ends_with('_') && !out.is_empty() {
            out.push('_');
        }
    }
    out.trim_end_matches('_').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn posted(pairs: &[(&str, &str)]) -> PostedForm {
        let body = serde_urlencoded::to_string(pairs).unwrap();
        serde_urlencoded::from_str(&body).unwrap()
    }

    #[test]
    fn a_blank_form_has_its_first_rows_and_more_adds_one_up_to_the_limit() {
        let f = Fields::default();
        assert_eq!((f.samples.len(), f.replies.len(), f.ctas.len()), (3, 3, 2));
        let more = Fields::of(&posted(&[
            ("more", "add-replies"),
            ("replies_rows", "3"),
            ("reply_title_0", "Yes"),
        ]));
        assert_eq!(more.replies.len(), 4);
        assert_eq!(more.replies[0].title, "Yes");
        let full = Fields::of(&posted(&[("more", "add-ctas"), ("ctas_rows", "2")]));
        assert_eq!(full.ctas.len(), 2, "at most two calls to action");
        assert!(!full.can_add(&Section::Ctas));
        let forged = Fields::of(&posted(&[("samples_rows", "99999")]));
        assert_eq!(forged.samples.len(), MAX_SAMPLES);
    }

    #[test]
    fn the_definition_takes_only_the_filled_rows_of_the_chosen_type() {
        let f = Fields::of(&posted(&[
            ("name", "Order update"),
            ("language", "en"),
            ("type", "twilio/quick-reply"),
            ("body", "Hi {{1}}, is it right?"),
            ("sample_0", "Ada"),
            ("reply_title_0", "Yes"),
            ("reply_title_2", "No"),
            ("reply_id_2", "no"),
            ("item_item_0", "ignored"),
            ("cta_title_0", "ignored"),
        ]));
        let d = f.definition();
        let types = d.check().unwrap();
        assert_eq!(
            types["twilio/quick-reply"]["actions"],
            json!([{"title": "Yes", "id": "Yes"}, {"title": "No", "id": "no"}])
        );
        assert!(d.items.is_empty());
        assert_eq!(f.preview_types(), Value::Object(types));
    }

    #[test]
    fn a_refusal_lands_next_to_the_row_it_names() {
        let mut f = Fields::of(&posted(&[
            ("name", "x"),
            ("language", "en"),
            ("type", "twilio/quick-reply"),
            ("body", "Hi"),
            ("reply_title_1", &"y".repeat(30)),
        ]));
        let why = f.definition().check().unwrap_err();
        assert_eq!(why.field, "actions[0].title");
        f.refuse(&why);
        assert!(
            f.replies[1].title_error.is_some(),
            "row 1, where it was typed"
        );
        assert_eq!(f.summary.unwrap().1, "reply-title-1");

        let mut g = Fields::of(&posted(&[
            ("name", "x"),
            ("language", "en"),
            ("type", "twilio/text"),
            ("body", "Hi {{1}} {{2}}"),
            ("sample_0", "a"),
        ]));
        let why = g.definition().check().unwrap_err();
        g.refuse(&why);
        assert!(g.samples[1].error.is_some(), "{why}");
        let mut card = Fields::of(&posted(&[
            ("name", "x"),
            ("language", "en"),
            ("type", "twilio/card"),
            ("title", ""),
        ]));
        let why = card.definition().check().unwrap_err();
        card.refuse(&why);
        assert!(card.errors.get("title").is_some());
    }

    #[test]
    fn whatsapp_names_are_suggested_from_friendly_ones() {
        assert_eq!(whatsapp_name("Order update #2!"), "order_update_2");
        assert_eq!(whatsapp_name("  --x--  "), "x");
        assert!(
            crate::templates::definition::check_whatsapp_name(&whatsapp_name("Ünïcode Sale"))
                .is_ok()
        );
    }
}
