//! The Content API client against wiremock: paging, retries, the JSON it sends.

use serde_json::json;
use wiremock::matchers::{body_json, header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::*;

const HX: &str = "HX0123456789abcdef0123456789abcdef";

fn content(server: &MockServer) -> ContentClient {
    crate::twilio::client::double()
        .content(&server.uri())
        .unwrap()
}

fn item(sid: &str, status: &str) -> serde_json::Value {
    json!({"sid": sid, "friendly_name": "t", "language": "en", "variables": {"1": "x"},
        "types": {"twilio/text": {"body": "Hi {{1}}"}},
        "approval_requests": {"name": "t", "category": "UTILITY", "status": status, "rejection_reason": ""}})
}

#[tokio::test]
async fn the_catalogue_is_read_page_by_page_and_every_page_stays_on_the_configured_base() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/ContentAndApprovals"))
        .and(query_param("PageToken", "p2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "contents": [item("HX00000000000000000000000000000002", "pending")],
            "meta": {"next_page_url": null}})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/ContentAndApprovals"))
        .and(query_param("PageSize", "500"))
        .and(header(
            "authorization",
            "Basic QUMwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDp0b2s=",
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "contents": [item(HX, "approved")],
            // Twilio's own host: followed on ours, never there.
            "meta": {"next_page_url": "https://content.twilio.com/v1/ContentAndApprovals?PageSize=500&Page=1&PageToken=p2"}})))
        .expect(1)
        .mount(&server)
        .await;
    let all = content(&server).list_with_approvals().await.unwrap();
    let statuses: Vec<_> = all
        .iter()
        .map(|t| t.whatsapp.as_ref().unwrap().status.as_str())
        .collect();
    assert_eq!(statuses, ["approved", "pending"]);
}

#[tokio::test]
async fn a_next_page_outside_the_content_api_is_refused() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/ContentAndApprovals"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "contents": [], "meta": {"next_page_url": "https://evil.example/steal"}})))
        .mount(&server)
        .await;
    let err = content(&server).list_with_approvals().await.unwrap_err();
    assert!(err.to_string().contains("next_page_url"), "{err}");
}

#[tokio::test]
async fn reads_are_retried_on_5xx_and_creates_are_not() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(format!("/v1/Content/{HX}")))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/v1/Content/{HX}")))
        .respond_with(ResponseTemplate::new(200).set_body_json(item(HX, "approved")))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/Content"))
        .respond_with(ResponseTemplate::new(500))
        .expect(1)
        .mount(&server)
        .await;
    let c = content(&server);
    assert_eq!(c.fetch(HX).await.unwrap().sid, HX);
    let new = NewTemplate {
        friendly_name: "x".into(),
        language: "en".into(),
        variables: Default::default(),
        types: json!({"twilio/text": {"body": "hi"}})
            .as_object()
            .unwrap()
            .clone(),
    };
    assert!(c.create(&new).await.is_err());
}

#[tokio::test]
async fn create_and_submit_send_twilios_json_and_delete_expects_204() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/Content"))
        .and(body_json(
            json!({"friendly_name": "order_update", "language": "en",
            "variables": {"1": "Ada"}, "types": {"twilio/text": {"body": "Hi {{1}}"}}}),
        ))
        .respond_with(ResponseTemplate::new(201).set_body_json(item(HX, "unsubmitted")))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("/v1/Content/{HX}/ApprovalRequests/whatsapp")))
        .and(body_json(
            json!({"name": "order_update", "category": "utility"}),
        ))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({
            "name": "order_update", "category": "UTILITY", "status": "received"})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .and(path(format!("/v1/Content/{HX}")))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    let c = content(&server);
    let created = c
        .create(&NewTemplate {
            friendly_name: "order_update".into(),
            language: "en".into(),
            variables: [("1".to_owned(), "Ada".to_owned())].into(),
            types: json!({"twilio/text": {"body": "Hi {{1}}"}})
                .as_object()
                .unwrap()
                .clone(),
        })
        .await
        .unwrap();
    assert_eq!(created.sid, HX);
    let a = c
        .submit(
            HX,
            &Submission {
                name: "order_update".into(),
                category: "utility".into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (a.status.as_str(), a.category.as_str()),
        ("received", "utility")
    );
    c.delete(HX).await.unwrap();
}

#[tokio::test]
async fn a_malformed_sid_never_reaches_the_network() {
    let server = MockServer::start().await;
    let c = content(&server);
    for bad in [
        "",
        "HX../../v1/Services",
        "MG0123456789abcdef0123456789abcdef",
    ] {
        assert!(
            matches!(c.fetch(bad).await, Err(TwilioError::Invalid(_))),
            "{bad}"
        );
    }
    assert!(server.received_requests().await.unwrap().is_empty());
}
