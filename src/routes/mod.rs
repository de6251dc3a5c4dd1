//! The route table. Each module registers its own routes.

pub mod api;
pub mod health;
pub mod webhooks;

use actix_web::web;

pub fn configure(cfg: &mut web::ServiceConfig) {
    webhooks::configure(cfg);
    health::configure(cfg);
    cfg.service(web::scope("/api/v1").configure(api::configure));
}
