//! The stylesheet and the scripts (live updates, form help), compiled into the binary (one file to deploy, no CDN).

use actix_web::{HttpRequest, HttpResponse, web};

const APP_CSS: &str = include_str!("../../../static/app.css");
const LIVE_JS: &str = include_str!("../../../static/live.js");
const FORMS_JS: &str = include_str!("../../../static/forms.js");
const TEMPLATE_FORM_JS: &str = include_str!("../../../static/template_form.js");
/// The demo bot's picture answer (src/bots/demo.rs): public, since Twilio fetches it.
const DEMO_BOT_PNG: &[u8] = include_bytes!("../../../static/demo-bot.png");

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/static/app.css", web::get().to(css))
        .route("/static/live.js", web::get().to(js))
        .route("/static/forms.js", web::get().to(forms_js))
        .route("/static/template_form.js", web::get().to(template_form_js))
        .route(crate::bots::demo::PICTURE_PATH, web::get().to(demo_bot_png));
}

/// A short content hash, used as the ETag and in the URLs the layout links to, so a new
/// build is fetched at once and an unchanged one is cached.
pub fn version(content: &str) -> String {
    use sha2::Digest;
    crate::domain::hex(&sha2::Sha256::digest(content.as_bytes())[..6])
}

pub fn css_version() -> &'static str {
    static V: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    V.get_or_init(|| version(APP_CSS))
}

pub fn js_version() -> &'static str {
    static V: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    V.get_or_init(|| version(LIVE_JS))
}

pub fn forms_js_version() -> &'static str {
    static V: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    V.get_or_init(|| version(FORMS_JS))
}

/// The "new template" form's script (only that page loads it).
pub fn template_form_js_version() -> &'static str {
    static V: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    V.get_or_init(|| version(TEMPLATE_FORM_JS))
}

fn serve(req: &HttpRequest, body: &'static str, etag: &str, content_type: &str) -> HttpResponse {
    let tag = format!("\"{etag}\"");
    if req
        .headers()
        .get("If-None-Match")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == tag)
    {
        return HttpResponse::NotModified().finish();
    }
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header(("ETag", tag))
        .insert_header(("Cache-Control", "public, max-age=86400"))
        .body(body)
}

async fn css(req: HttpRequest) -> HttpResponse {
    serve(&req, APP_CSS, css_version(), "text/css; charset=utf-8")
}

async fn js(req: HttpRequest) -> HttpResponse {
    serve(
        &req,
        LIVE_JS,
        js_version(),
        "text/javascript; charset=utf-8",
    )
}

async fn forms_js(req: HttpRequest) -> HttpResponse {
    serve(
        &req,
        FORMS_JS,
        forms_js_version(),
        "text/javascript; charset=utf-8",
    )
}

async fn template_form_js(req: HttpRequest) -> HttpResponse {
    serve(
        &req,
        TEMPLATE_FORM_JS,
        template_form_js_version(),
        "text/javascript; charset=utf-8",
    )
}

async fn demo_bot_png() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("image/png")
        .insert_header(("Cache-Control", "public, max-age=86400"))
        .body(DEMO_BOT_PNG)
}
