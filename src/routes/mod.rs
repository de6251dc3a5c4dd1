//! The route table. Each module registers its own routes.

pub mod api;
pub mod health;
pub mod live;
pub mod message_query;
pub mod pages;
pub mod price_estimate;
pub mod roles;
pub mod transfer;
pub mod webhooks;

use actix_web::web;

pub fn configure(cfg: &mut web::ServiceConfig) {
    webhooks::configure(cfg);
    health::configure(cfg);
    cfg.service(web::scope("/api/v1").configure(api::configure));
    live::configure(cfg);
    pages::configure(cfg);
}

/// Headers on every response: a Content Security Policy that allows only this site's own
/// stylesheet and script (no inline script, no framing), no MIME sniffing, no referrer
/// leaking to other sites.
pub fn security_headers() -> actix_web::middleware::DefaultHeaders {
    actix_web::middleware::DefaultHeaders::new()
        .add((
            "Content-Security-Policy",
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
             frame-ancestors 'none'",
        ))
        .add(("X-Content-Type-Options", "nosniff"))
        .add(("X-Frame-Options", "DENY"))
        .add(("Referrer-Policy", "same-origin"))
}
