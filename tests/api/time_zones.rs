//! The zone each person reads times in: chosen on the account page (an IANA name, checked),
//! kept per user, and used by the pages they see (the charts' times here).

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use wadash::domain::Role;

use crate::helpers::{TestApp, input_value};

/// Bar tooltips of the overview's traffic chart: "2026-12-06 14:30: 0 outbound".
fn bar_minutes(page: &str) -> Vec<String> {
    page.split("<rect class=\"out\"")
        .skip(1)
        .filter_map(|r| {
            let title = r.split("<title>").nth(1)?;
            let (when, _) = title.split_once(": ")?;
            Some(when.rsplit(':').next()?.to_owned())
        })
        .collect()
}

#[sqlx::test]
async fn each_person_reads_times_in_the_zone_they_choose(_: PgPoolOptions, opts: PgConnectOptions) {
    let app = TestApp::spawn(opts).await;
    let mut admin = app.admin_browser().await;
    let mut viewer = app.browser_as("vera", Role::Viewer).await;

    // By default: UTC, where the overview's hourly buckets start on whole hours.
    let (_, _, page) = admin.get("/account").await;
    assert_eq!(input_value(&page, "time_zone").as_deref(), Some("UTC"));
    let (_, _, overview) = admin.get("/").await;
    let minutes = bar_minutes(&overview);
    assert_eq!(minutes.len(), 24, "one bar per hour");
    assert!(minutes.iter().all(|m| m == "00"), "{minutes:?}");

    // A name that is no zone is refused, with the form again, and nothing changes.
    let csrf = admin.csrf().await;
    let (status, _, page) = admin
        .post(
            "/account/time-zone",
            &[("csrf", &csrf), ("time_zone", "Mars/Olympus")],
        )
        .await;
    assert_eq!(status, 400);
    assert!(page.contains("is not a known time zone"), "{page}");
    assert_eq!(
        input_value(&page, "time_zone").as_deref(),
        Some("Mars/Olympus")
    );
    let zone: Option<String> =
        sqlx::query_scalar("SELECT time_zone FROM users WHERE username = 'admin'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(zone, None);

    // Kolkata (UTC+05:30), typed in any case: the same UTC hours start at half past.
    let (status, location, _) = admin
        .post(
            "/account/time-zone",
            &[("csrf", &csrf), ("time_zone", "asia/kolkata")],
        )
        .await;
    assert_eq!(status, 303);
    assert_eq!(location.as_deref(), Some("/account?done=zone"));
    let (_, _, page) = admin.get("/account?done=zone").await;
    assert!(
        page.contains("Times are now shown in Asia/Kolkata."),
        "{page}"
    );
    assert_eq!(
        input_value(&page, "time_zone").as_deref(),
        Some("Asia/Kolkata")
    );
    let (_, _, overview) = admin.get("/").await;
    let minutes = bar_minutes(&overview);
    assert!(
        minutes.len() == 24 && minutes.iter().all(|m| m == "30"),
        "{minutes:?}"
    );

    // Another person keeps their own zone.
    let (_, _, overview) = viewer.get("/").await;
    assert!(bar_minutes(&overview).iter().all(|m| m == "00"));

    // Back to UTC: stored as no choice.
    let (status, _, _) = admin
        .post(
            "/account/time-zone",
            &[("csrf", &csrf), ("time_zone", "UTC")],
        )
        .await;
    assert_eq!(status, 303);
    let zone: Option<String> =
        sqlx::query_scalar("SELECT time_zone FROM users WHERE username = 'admin'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(zone, None);

    // The form needs its token.
    let (status, _, _) = admin
        .post(
            "/account/time-zone",
            &[("csrf", "wrong"), ("time_zone", "Europe/Berlin")],
        )
        .await;
    assert_eq!(status, 403);
}
