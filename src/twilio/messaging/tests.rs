//! The Messaging API client against wiremock: paths, bodies, paging and refusals.

use serde_json::json;
use wiremock::matchers::{body_json, body_string, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::*;

const XE: &str = "XE0123456789abcdef0123456789abcdef";
const MG: &str = "MG0123456789abcdef0123456789abcdef";

fn client(server: &MockServer) -> MessagingClient {
    crate::twilio::client::double()
        .messaging(&server.uri())
        .unwrap()
}

#[tokio::test]
async fn senders_are_listed_page_after_page_on_our_base() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v2/Channels/Senders"))
        .and(query_param("Channel", "whatsapp"))
        .and(query_param("PageToken", "p2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "senders": [{"sid": "XE00000000000000000000000000000002", "status": "OFFLINE"}],
            "meta": {"next_page_url": null}})))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v2/Channels/Senders"))
        .and(query_param("Channel", "whatsapp"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "senders": [{"sid": "XE00000000000000000000000000000001", "status": "ONLINE"}],
            "meta": {"next_page_url": "https://messaging.twilio.com/v2/Channels/Senders?Channel=whatsapp&PageSize=100&PageToken=p2"}})))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    let all = client(&server).list_senders().await.unwrap();
    let statuses: Vec<&str> = all.iter().map(|s| s.status.as_str()).collect();
    assert_eq!(statuses, ["ONLINE", "OFFLINE"]);
}

#[tokio::test]
async fn a_sender_is_created_verified_and_deleted_with_twilios_bodies() {
    let server = MockServer::start().await;
    let answer = json!({"sid": XE, "status": "CREATING", "sender_id": "whatsapp:+15017122661"});
    Mock::given(method("POST"))
        .and(path("/v2/Channels/Senders"))
        .and(body_json(json!({
            "sender_id": "whatsapp:+15017122661",
            "configuration": {"waba_id": "1234567", "verification_method": "sms"},
            "webhook": {"callback_url": "https://ops.example/wa", "callback_method": "POST",
                "status_callback_url": "https://ops.example/sts", "status_callback_method": "POST"},
            "profile": {"name": "Owl Air",
                "websites": [{"website": "https://owl.example", "label": "Website"}]}
        })))
        .respond_with(ResponseTemplate::new(202).set_body_json(answer))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("/v2/Channels/Senders/{XE}")))
        .and(body_json(
            json!({"configuration": {"verification_code": "123456"}}),
        ))
        .respond_with(
            ResponseTemplate::new(202).set_body_json(json!({"sid": XE, "status": "VERIFYING"})),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .and(path(format!("/v2/Channels/Senders/{XE}")))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    let c = client(&server);
    let created = c
        .create_sender(&NewSender {
            sender_id: "whatsapp:+15017122661".into(),
            configuration: SenderConfiguration {
                waba_id: Some("1234567".into()),
                verification_method: Some("sms".into()),
                verification_code: None,
            },
            webhook: Webhook {
                callback_url: Some("https://ops.example/wa".into()),
                callback_method: Some("POST".into()),
                status_callback_url: Some("https://ops.example/sts".into()),
                status_callback_method: Some("POST".into()),
                ..Webhook::default()
            },
            profile: Profile {
                name: "Owl Air".into(),
                websites: vec!["https://owl.example".into()],
                ..Profile::default()
            },
        })
        .await
        .unwrap();
    assert_eq!(created.status, "CREATING");
    let verifying = c
        .update_sender(
            XE,
            &SenderUpdate {
                configuration: Some(SenderConfiguration {
                    verification_code: Some("123456".into()),
                    ..Default::default()
                }),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(verifying.status, "VERIFYING");
    c.delete_sender(XE).await.unwrap();
}

#[tokio::test]
async fn a_service_takes_and_gives_back_a_sender_by_form() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(format!("/v1/Services/{MG}/ChannelSenders")))
        .and(body_string(format!("Sid={XE}")))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({
            "sid": XE, "sender": "whatsapp:+15017122661", "sender_type": "WhatsApp",
            "messaging_service_sid": MG})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .and(path(format!("/v1/Services/{MG}/ChannelSenders/{XE}")))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    let c = client(&server);
    let attached = c.attach_sender(MG, XE).await.unwrap();
    assert_eq!(attached.messaging_service_sid, MG);
    c.detach_sender(MG, XE).await.unwrap();
}

#[tokio::test]
async fn sids_of_the_wrong_kind_never_reach_twilio() {
    let server = MockServer::start().await;
    let c = client(&server);
    assert!(c.fetch_sender("../2010-04-01/Accounts").await.is_err());
    assert!(
        c.attach_sender(XE, XE).await.is_err(),
        "a sender is not a service"
    );
    assert!(c.delete_sender(MG).await.is_err());
    assert!(server.received_requests().await.unwrap().is_empty());
}
