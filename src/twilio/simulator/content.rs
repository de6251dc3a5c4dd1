//! The simulator's Content API (`/v1/Content…`, `/v1/ContentAndApprovals`, v2's filtered
//! `/v2/ContentAndApprovals`): templates created
//! through wadash, a few samples present from the start, and WhatsApp's review played out in
//! time — `received`, then `pending`, then `approved` or (a configurable share) `rejected`
//! with a reason of the kind Meta gives. Sends with a template that is not approved fail with
//! Twilio's 63027, as Twilio's do.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{SimState, twilio_error};

/// Reasons WhatsApp gives for rejecting a template, in its own words' spirit.
const REJECTIONS: &[&str] = &[
    "The template has a variable at its start or end, which WhatsApp does not allow.",
    "The content looks promotional for the category chosen: submit it as marketing.",
    "Variables are not numbered in sequence from {{1}}.",
];

/// The SIDs of the sample templates every simulator has, approved: `order_update` (utility),
/// `appointment_reminder` (utility, quick replies) and `spring_sale` (marketing).
pub const SAMPLE_SIDS: [&str; 3] = [
    "HX00000000000000000000000000005a01",
    "HX00000000000000000000000000005a02",
    "HX00000000000000000000000000005a03",
];

/// Content types WhatsApp takes inside a session without approval that carry choices.
const SESSION_INTERACTIVE: [&str; 2] = ["twilio/quick-reply", "twilio/list-picker"];

#[derive(Debug, Clone)]
struct Review {
    name: String,
    category: String,
    submitted: DateTime<Utc>,
    /// Decided when submitted; shown once the review is over.
    rejection: Option<&'static str>,
}

#[derive(Debug, Clone)]
struct SimTemplate {
    sid: String,
    friendly_name: String,
    language: String,
    variables: Value,
    types: Value,
    created: DateTime<Utc>,
    review: Option<Review>,
}

/// The templates of the simulated account.
pub(super) struct Catalogue {
    templates: Mutex<BTreeMap<String, SimTemplate>>,
    review_takes: Duration,
    reject_share: f64,
}

/// WhatsApp's status of a review `elapsed` after submission.
fn status_after(review: &Review, elapsed: Duration, takes: Duration) -> &'static str {
    if elapsed < takes / 3 {
        "received"
    } else if elapsed < takes {
        "pending"
    } else if review.rejection.is_some() {
        "rejected"
    } else {
        "approved"
    }
}

impl Catalogue {
    /// A catalogue with the sample templates, already approved.
    pub(super) fn new(review_takes: Duration, reject_share: f64) -> Self {
        let now = Utc::now();
        let long_ago = now - chrono::TimeDelta::days(30);
        let sample = |n: usize, name: &str, category: &str, variables: Value, types: Value| {
            let sid = SAMPLE_SIDS[n - 1].to_owned();
            let t = SimTemplate {
                sid: sid.clone(),
                friendly_name: name.into(),
                language: "en".into(),
                variables,
                types,
                created: long_ago,
                review: Some(Review {
                    name: name.into(),
                    category: category.into(),
                    submitted: long_ago,
                    rejection: None,
                }),
            };
            (sid, t)
        };
        let templates = [
            sample(
                1,
                "order_update",
                "UTILITY",
                json!({"1": "Asha", "2": "A-1042", "3": "tomorrow"}),
                json!({"twilio/text": {"body": "Hi {{1}}, your order {{2}} has shipped and arrives {{3}}."}}),
            ),
            sample(
                2,
                "appointment_reminder",
                "UTILITY",
                json!({"1": "Dr Rao", "2": "Monday 10:00"}),
                json!({"twilio/quick-reply": {
                    "body": "Reminder: your appointment with {{1}} is on {{2}}. Will you come?",
                    "actions": [{"title": "Yes, I'll come", "id": "confirm"},
                                {"title": "Reschedule", "id": "reschedule"}]}}),
            ),
            sample(
                3,
                "spring_sale",
                "MARKETING",
                json!({"1": "20%"}),
                json!({"twilio/text": {"body": "Spring sale: {{1}} off everything until Sunday. Reply STOP to opt out."}}),
            ),
        ]
        .into_iter()
        .collect();
        Self {
            templates: Mutex::new(templates),
            review_takes,
            reject_share,
        }
    }

    /// Whether `sid` may be sent now: it exists and WhatsApp approved it.
    pub(super) fn approved(&self, sid: &str) -> bool {
        let all = self.templates.lock().expect("templates lock");
        all.get(sid)
            .and_then(|t| t.review.as_ref())
            .is_some_and(|r| self.status(r) == "approved")
    }

    /// Whether `sid` may be sent now: approved by WhatsApp, or never submitted and made only
    /// of types WhatsApp takes in a session without approval (quick replies, a list picker,
    /// text), as wadash creates for a bot's choices. (The simulator does not keep the 24-hour
    /// window: wadash's send policy checks it before.)
    pub(super) fn sendable(&self, sid: &str) -> bool {
        if self.approved(sid) {
            return true;
        }
        let all = self.templates.lock().expect("templates lock");
        all.get(sid).is_some_and(|t| {
            let types = t.types.as_object();
            t.review.is_none()
                && types.is_some_and(|o| {
                    o.keys().any(|k| SESSION_INTERACTIVE.contains(&k.as_str()))
                        && o.keys().all(|k| {
                            k == "twilio/text" || SESSION_INTERACTIVE.contains(&k.as_str())
                        })
                })
        })
    }

    /// The buttons of template `sid` as (id, title), in order, and whether they are list
    /// items (a list picker's) rather than quick-reply buttons; empty for a template of
    /// another type or one that does not exist.
    pub(super) fn buttons(&self, sid: &str) -> (Vec<(String, String)>, bool) {
        use crate::domain::interactive::{InteractiveKind, offered_buttons};
        let all = self.templates.lock().expect("templates lock");
        let offered = all
            .get(sid)
            .map(|t| offered_buttons(&t.types))
            .unwrap_or_default();
        let kind = offered.first().map(|b| b.kind);
        let buttons = offered
            .into_iter()
            .filter(|b| Some(b.kind) == kind)
            .map(|b| (b.payload, b.title))
            .collect();
        (buttons, kind == Some(InteractiveKind::List))
    }

    fn status(&self, r: &Review) -> &'static str {
        let elapsed = (Utc::now() - r.submitted).to_std().unwrap_or_default();
        status_after(r, elapsed, self.review_takes)
    }

    fn approval(&self, t: &SimTemplate) -> Value {
        match &t.review {
            None => json!({"name": "", "category": "", "content_type": content_type(t),
                "status": "unsubmitted", "rejection_reason": "", "allow_category_change": true}),
            Some(r) => {
                let status = self.status(r);
                json!({"name": r.name, "category": r.category, "content_type": content_type(t),
                    "status": status,
                    "rejection_reason": if status == "rejected" { r.rejection.unwrap_or_default() } else { "" },
                    "allow_category_change": true})
            }
        }
    }
}

fn content_type(t: &SimTemplate) -> String {
    t.types
        .as_object()
        .and_then(|o| o.keys().next().cloned())
        .unwrap_or_default()
}

fn resource(t: &SimTemplate, base: &str) -> Value {
    let date = t.created.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    json!({"sid": t.sid, "account_sid": null, "friendly_name": t.friendly_name,
        "language": t.language, "variables": t.variables, "types": t.types,
        "date_created": date, "date_updated": date,
        "url": format!("{base}/v1/Content/{}", t.sid)})
}

pub(super) fn base_of(req: &HttpRequest) -> String {
    let info = req.connection_info();
    format!("{}://{}", info.scheme(), info.host())
}

#[derive(Debug, Deserialize)]
pub(super) struct PageQuery {
    #[serde(rename = "PageSize")]
    page_size: Option<usize>,
    #[serde(rename = "PageToken")]
    page_token: Option<String>,
}

/// `GET /v1/ContentAndApprovals`: pages in SID order; the token is the last SID of the page.
pub(super) async fn list(
    req: HttpRequest,
    q: web::Query<PageQuery>,
    state: web::Data<SimState>,
) -> HttpResponse {
    let q = q.into_inner();
    page(&req, &state, "/v1/ContentAndApprovals", q, "", |_| true)
}

/// `GET /v2/ContentAndApprovals`: v1's list filtered as Twilio filters it — `ContentName` a
/// regular expression over the friendly name, `Language` and `ContentType` repeatable.
pub(super) async fn search(req: HttpRequest, state: web::Data<SimState>) -> HttpResponse {
    let mut q = PageQuery {
        page_size: None,
        page_token: None,
    };
    let (mut name, mut languages, mut types) = (None, Vec::new(), Vec::new());
    let mut kept = Vec::new();
    let query = reqwest::Url::parse(&format!("http://sim/?{}", req.query_string()))
        .expect("a query string parses");
    for (k, v) in query.query_pairs() {
        match k.as_ref() {
            "PageSize" => q.page_size = v.parse().ok(),
            "PageToken" => q.page_token = Some(v.into_owned()),
            "ContentName" => {
                match regex::RegexBuilder::new(&v).size_limit(64 * 1024).build() {
                    Ok(re) => name = Some(re),
                    Err(_) => {
                        return twilio_error(400, 20001, "ContentName is not a valid pattern");
                    }
                }
                kept.push((k.into_owned(), v.into_owned()));
            }
            "Language" => {
                languages.push(v.to_string());
                kept.push((k.into_owned(), v.into_owned()));
            }
            "ContentType" => {
                types.push(v.to_string());
                kept.push((k.into_owned(), v.into_owned()));
            }
            _ => {}
        }
    }
    let mut again = reqwest::Url::parse("http://sim/").expect("a fixed URL parses");
    again.query_pairs_mut().extend_pairs(&kept);
    let extra = again.query().map(|q| format!("&{q}")).unwrap_or_default();
    page(&req, &state, "/v2/ContentAndApprovals", q, &extra, |t| {
        name.as_ref().is_none_or(|re| re.is_match(&t.friendly_name))
            && (languages.is_empty() || languages.contains(&t.language))
            && (types.is_empty() || types.contains(&content_type(t)))
    })
}

/// One page of the templates `keep` admits, in SID order after the page token.
fn page(
    req: &HttpRequest,
    state: &SimState,
    path: &str,
    q: PageQuery,
    extra_query: &str,
    keep: impl Fn(&SimTemplate) -> bool,
) -> HttpResponse {
    let size = q.page_size.unwrap_or(50).clamp(1, 1000);
    let cat = &state.content;
    let all = cat.templates.lock().expect("templates lock");
    let after = q.page_token.unwrap_or_default();
    let page: Vec<&SimTemplate> = all
        .values()
        .filter(|t| t.sid > after && keep(t))
        .take(size + 1)
        .collect();
    let base = base_of(req);
    let more = page.len() > size;
    let items: Vec<Value> = page
        .iter()
        .take(size)
        .map(|t| {
            let mut v = resource(t, &base);
            v["approval_requests"] = cat.approval(t);
            v
        })
        .collect();
    let next = more.then(|| {
        format!(
            "{base}{path}?PageSize={size}&PageToken={}{extra_query}",
            page[size - 1].sid
        )
    });
    HttpResponse::Ok().json(json!({"contents": items,
        "meta": {"page_size": size, "key": "contents", "next_page_url": next}}))
}

pub(super) async fn fetch(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<SimState>,
) -> HttpResponse {
    let all = state.content.templates.lock().expect("templates lock");
    match all.get(path.as_str()) {
        Some(t) => HttpResponse::Ok().json(resource(t, &base_of(&req))),
        None => twilio_error(404, 20404, "The requested resource was not found"),
    }
}

pub(super) async fn approval(path: web::Path<String>, state: web::Data<SimState>) -> HttpResponse {
    let all = state.content.templates.lock().expect("templates lock");
    match all.get(path.as_str()) {
        Some(t) => {
            let mut whatsapp = state.content.approval(t);
            whatsapp["type"] = json!("whatsapp");
            HttpResponse::Ok().json(json!({"sid": t.sid, "whatsapp": whatsapp}))
        }
        None => twilio_error(404, 20404, "The requested resource was not found"),
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct NewTemplate {
    friendly_name: Option<String>,
    language: Option<String>,
    #[serde(default)]
    variables: Option<Value>,
    types: Option<Value>,
}

pub(super) async fn create(
    req: HttpRequest,
    body: web::Json<NewTemplate>,
    state: web::Data<SimState>,
) -> HttpResponse {
    let body = body.into_inner();
    let (Some(language), Some(types)) = (body.language, body.types) else {
        return twilio_error(400, 20001, "Missing required parameter language or types");
    };
    if types.as_object().is_none_or(|o| o.is_empty()) {
        return twilio_error(400, 20001, "types must name at least one content type");
    }
    let t = SimTemplate {
        sid: format!("HX{}", crate::domain::random_hex(16)),
        friendly_name: body.friendly_name.unwrap_or_default(),
        language,
        variables: body.variables.unwrap_or_else(|| json!({})),
        types,
        created: Utc::now(),
        review: None,
    };
    let out = resource(&t, &base_of(&req));
    state
        .content
        .templates
        .lock()
        .expect("templates lock")
        .insert(t.sid.clone(), t);
    HttpResponse::Created().json(out)
}

#[derive(Debug, Deserialize)]
pub(super) struct Submission {
    name: Option<String>,
    category: Option<String>,
}

pub(super) async fn submit(
    path: web::Path<String>,
    body: web::Json<Submission>,
    state: web::Data<SimState>,
) -> HttpResponse {
    let (Some(name), Some(category)) = (body.name.clone(), body.category.clone()) else {
        return twilio_error(400, 20001, "Missing required parameter name or category");
    };
    let cat = &state.content;
    let mut all = cat.templates.lock().expect("templates lock");
    let Some(t) = all.get_mut(path.as_str()) else {
        return twilio_error(404, 20404, "The requested resource was not found");
    };
    let rejection = (rand::random::<f64>() < cat.reject_share)
        .then(|| REJECTIONS[rand::random_range(0..REJECTIONS.len())]);
    let review = Review {
        name,
        category: category.to_uppercase(),
        submitted: Utc::now(),
        rejection,
    };
    t.review = Some(review);
    let mut out = cat.approval(t);
    out.as_object_mut()
        .map(|o| o.remove("allow_category_change"));
    HttpResponse::Created().json(out)
}

pub(super) async fn delete(path: web::Path<String>, state: web::Data<SimState>) -> HttpResponse {
    let removed = state
        .content
        .templates
        .lock()
        .expect("templates lock")
        .remove(path.as_str());
    match removed {
        Some(_) => HttpResponse::NoContent().finish(),
        None => twilio_error(404, 20404, "The requested resource was not found"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_review_is_received_then_pending_then_decided() {
        let takes = Duration::from_secs(30);
        let mut r = Review {
            name: "x".into(),
            category: "UTILITY".into(),
            submitted: Utc::now(),
            rejection: None,
        };
        let at = |s| Duration::from_secs(s);
        assert_eq!(status_after(&r, at(0), takes), "received");
        assert_eq!(status_after(&r, at(10), takes), "pending");
        assert_eq!(status_after(&r, at(30), takes), "approved");
        r.rejection = Some(REJECTIONS[0]);
        assert_eq!(status_after(&r, at(29), takes), "pending");
        assert_eq!(status_after(&r, at(31), takes), "rejected");
    }

    #[test]
    fn the_samples_are_approved_and_unknown_templates_are_not() {
        let c = Catalogue::new(Duration::from_secs(30), 0.0);
        let sids: Vec<String> = c.templates.lock().unwrap().keys().cloned().collect();
        assert_eq!(sids.len(), 3);
        assert!(sids.iter().all(|s| c.approved(s) && s.len() == 34));
        assert!(!c.approved("HX00000000000000000000000000000000"));
    }

    #[test]
    fn never_submitted_quick_replies_and_lists_are_sent_in_session_other_drafts_are_not() {
        let c = Catalogue::new(Duration::from_secs(3600), 0.0);
        let add = |sid: &str, types: Value, review: Option<Review>| {
            c.templates.lock().unwrap().insert(
                sid.into(),
                SimTemplate {
                    sid: sid.into(),
                    friendly_name: sid.into(),
                    language: "en".into(),
                    variables: json!({}),
                    types,
                    created: Utc::now(),
                    review,
                },
            );
        };
        let quick = json!({"twilio/quick-reply": {"body": "?", "actions": [{"title": "A", "id": "bot-choice-1"}]},
            "twilio/text": {"body": "?\n1. A"}});
        let list = json!({"twilio/list-picker": {"body": "?", "button": "Choose",
            "items": [{"item": "A", "id": "bot-choice-1"}]}});
        add("HXquick", quick.clone(), None);
        add("HXlist", list, None);
        add("HXtext", json!({"twilio/text": {"body": "hi"}}), None);
        let pending = Review {
            name: "x".into(),
            category: "UTILITY".into(),
            submitted: Utc::now(),
            rejection: None,
        };
        add("HXpending", quick, Some(pending));
        assert!(c.sendable("HXquick") && c.sendable("HXlist"));
        assert!(
            !c.sendable("HXtext"),
            "a text template still needs approval"
        );
        assert!(
            !c.sendable("HXpending"),
            "submitted: WhatsApp's review decides"
        );
        assert!(c.sendable(SAMPLE_SIDS[0]));
        assert_eq!(
            c.buttons("HXlist"),
            (vec![("bot-choice-1".into(), "A".into())], true)
        );
        assert!(
            !c.buttons("HXquick").1,
            "quick-reply buttons, not list items"
        );
    }
}
