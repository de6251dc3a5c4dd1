//! `/templates/new` (admin): the create form for the six content types, server-rendered and
//! working without JavaScript (rows added by "add another" buttons, a refusal shown next to
//! the field it names with everything typed kept), and `POST /templates/preview`, the same
//! preview the template's page shows, as an HTML fragment for the page's script to put beside
//! the form while the admin types. Creating goes through [`crate::templates::manage`].

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;

use super::template_form::{Fields, KINDS, PostedForm, Section};
use super::template_preview::{Preview, previews};
use super::{Allowed, Chrome, CurrentUser, PageError, Posted, html_with};
use crate::routes::roles::Admin;
use crate::state::AppState;
use crate::templates::definition::Invalid;
use crate::templates::manage::{self, ManageError};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/templates/new", web::get().to(form))
        .route("/templates/new", web::post().to(create))
        .route("/templates/preview", web::post().to(preview));
}

/// Languages offered as suggestions (any code WhatsApp knows may be typed).
const LANGUAGES: &[&str] = &[
    "en", "en_US", "en_GB", "es", "es_MX", "pt_BR", "fr", "de", "it", "hi", "ar", "id",
];

#[derive(Template)]
#[template(path = "template_new.html")]
struct NewPage {
    chrome: Chrome,
    f: Fields,
    kinds: &'static [(&'static str, &'static str)],
    languages: &'static [&'static str],
    previews: Vec<Preview>,
    /// Twilio's refusal (nothing typed is lost).
    twilio_error: Option<String>,
    /// The template that already has the name typed (its SID).
    taken: Option<String>,
    samples: Section,
    replies: Section,
    items: Section,
}

impl NewPage {
    fn new(user: &CurrentUser, state: &AppState, f: Fields) -> Self {
        Self {
            chrome: Chrome::for_user(user, state, "templates"),
            previews: previews(&f.preview_types(), &f.samples()),
            f,
            kinds: KINDS,
            languages: LANGUAGES,
            twilio_error: None,
            taken: None,
            samples: Section::Samples,
            replies: Section::Replies,
            items: Section::Items,
        }
    }

    /// The error next to single field `key`.
    fn err(&self, key: &str) -> Option<&str> {
        self.f.errors.get(key)
    }

    /// Whether the chosen type has the part shown by a fieldset for `types`.
    fn shows(&self, types: &str) -> bool {
        types.split(' ').any(|t| t == self.f.kind.trim())
    }
}

async fn form(user: Allowed<Admin>, state: web::Data<AppState>) -> Result<HttpResponse, PageError> {
    html_with(
        &NewPage::new(&user, &state, Fields::default()),
        StatusCode::OK,
    )
}

async fn create(
    Posted { user, form, .. }: Posted<PostedForm, Admin>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let mut fields = Fields::of(&form);
    if !form.more.is_empty() {
        // "Add another …" or "Update preview": the form again, nothing created.
        return html_with(&NewPage::new(&user, &state, fields), StatusCode::OK);
    }
    match manage::create(&state.pool, &state.content, &fields.definition()).await {
        Ok(t) => {
            tracing::info!(admin = %user.username, template = %t.sid, kind = %fields.kind, "template created");
            Ok(super::done_redirect(
                &format!("/templates/{}", t.sid),
                "created",
            ))
        }
        Err(ManageError::Invalid(why)) => {
            fields.refuse(&why);
            html_with(
                &NewPage::new(&user, &state, fields),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
        }
        Err(ManageError::Taken { sid, .. }) => {
            // Shown next to the name, with the way to the template that has it.
            fields.refuse(&Invalid {
                field: "name".into(),
                reason: "Twilio already has a template of this name in this language; choose another name (or language)".into(),
            });
            let mut page = NewPage::new(&user, &state, fields);
            page.taken = Some(sid);
            html_with(&page, StatusCode::CONFLICT)
        }
        Err(ManageError::Twilio(e)) => {
            tracing::warn!(admin = %user.username, error = %e, "Twilio refused a new template");
            let mut page = NewPage::new(&user, &state, fields);
            page.twilio_error = Some(e.to_string());
            html_with(&page, StatusCode::BAD_GATEWAY)
        }
        Err(ManageError::NotFound(sid)) => Err(PageError::NotFound(format!(
            "Twilio created {sid}, but it is not in the catalogue yet; sync and look again."
        ))),
        Err(ManageError::Database(e)) => Err(e.into()),
    }
}

#[derive(Template)]
#[template(path = "template_preview_fragment.html")]
struct PreviewFragment {
    previews: Vec<Preview>,
    /// What is still missing or wrong, as the create button would say it.
    problem: Option<String>,
}

/// The live preview of the form as typed so far (admin: it is part of creating).
async fn preview(
    Posted { form, .. }: Posted<PostedForm, Admin>,
) -> Result<HttpResponse, PageError> {
    let fields = Fields::of(&form);
    let fragment = PreviewFragment {
        previews: previews(&fields.preview_types(), &fields.samples()),
        problem: fields.definition().check().err().map(|e| e.to_string()),
    };
    html_with(&fragment, StatusCode::OK)
}
