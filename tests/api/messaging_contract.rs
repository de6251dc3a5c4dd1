//! Contract tests: the Messaging API client (WhatsApp senders, Messaging Services) against
//! Stoplight Prism serving Twilio's official `twilio_messaging_v2.json` (senders) and
//! `twilio_messaging_v1.json` (services). Prism answers 422 to a request that breaks the spec
//! (a sender without `sender_id`, a channel sender without `Sid`) and 401 without
//! credentials. `scripts/test` starts one Prism per spec and sets
//! `WADASH_TEST_PRISM_MESSAGING_URL` (v2) and `WADASH_TEST_PRISM_MESSAGING_V1_URL`.
//!
//! Prism's limits where they bite: it answers each call with the spec's first example, so
//! a created sender comes back `ONLINE`-shaped whatever was sent; what is checked is the
//! request (path, method, body, content type) and that every answer decodes.

use serde_json::json;
use wadash::twilio::messaging::{
    MessagingClient, NewSender, Profile, SenderConfiguration, SenderUpdate, Webhook,
};

const AC: &str = "AC0123456789abcdef0123456789abcdef";
const XE: &str = "XEaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const MG: &str = "MGaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

fn prism_at(var: &str) -> MessagingClient {
    let url = std::env::var(var).unwrap_or_else(|_| {
        panic!("{var} is not set: run the suite with scripts/test, which starts Prism")
    });
    crate::helpers::twilio_double("http://127.0.0.1:9", AC, "prism-auth-token", 1)
        .messaging(&url)
        .unwrap()
}

fn senders() -> MessagingClient {
    prism_at("WADASH_TEST_PRISM_MESSAGING_URL")
}

#[tokio::test]
async fn listing_and_fetching_whatsapp_senders_satisfies_twilios_contract() {
    let c = senders();
    let all = c.list_senders().await.expect("Prism accepts the list");
    assert!(all.iter().all(|s| s.sid.starts_with("XE")));
    let one = c.fetch_sender(XE).await.expect("Prism accepts the fetch");
    assert_eq!(one.sid, XE);
    assert!(!one.status.is_empty(), "the example's status decodes");
}

#[tokio::test]
async fn registering_verifying_and_removing_a_sender_satisfies_twilios_contract() {
    let c = senders();
    let created = c
        .create_sender(&NewSender {
            sender_id: "whatsapp:+15017122661".into(),
            configuration: SenderConfiguration {
                waba_id: Some("12345678912345".into()),
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
                about: Some("Flights and more".into()),
                vertical: Some("Travel".into()),
                websites: vec!["https://owl.example".into()],
                ..Profile::default()
            },
        })
        .await
        .expect("Prism accepts the create");
    assert!(created.sid.starts_with("XE"));
    c.update_sender(
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
    .expect("Prism accepts the verification code");
    c.delete_sender(XE).await.expect("Prism accepts the delete");
}

#[tokio::test]
async fn messaging_services_and_their_senders_satisfy_twilios_contract() {
    let c = prism_at("WADASH_TEST_PRISM_MESSAGING_V1_URL");
    let services = c.list_services().await.expect("Prism accepts the list");
    assert!(services.iter().all(|s| s.sid.starts_with("MG")));
    let inside = c
        .list_channel_senders(MG)
        .await
        .expect("Prism accepts the channel sender list");
    assert!(inside.iter().all(|s| s.sid.starts_with("XE")));
    let attached = c
        .attach_sender(MG, XE)
        .await
        .expect("Prism accepts the attach");
    assert!(attached.messaging_service_sid.starts_with("MG"));
    c.detach_sender(MG, XE)
        .await
        .expect("Prism accepts the detach");
}

#[tokio::test]
async fn prism_refuses_what_breaks_the_spec_so_the_contract_is_really_checked() {
    let v2 = std::env::var("WADASH_TEST_PRISM_MESSAGING_URL").unwrap();
    let http = reqwest::Client::new();
    let no_sender_id = http
        .post(format!("{v2}/v2/Channels/Senders"))
        .basic_auth(AC, Some("prism-auth-token"))
        .json(&json!({"profile": {"name": "x"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(no_sender_id.status().as_u16(), 422);
    let no_channel = http
        .get(format!("{v2}/v2/Channels/Senders"))
        .basic_auth(AC, Some("prism-auth-token"))
        .send()
        .await
        .unwrap();
    assert_eq!(no_channel.status().as_u16(), 422, "Channel is required");
    let v1 = std::env::var("WADASH_TEST_PRISM_MESSAGING_V1_URL").unwrap();
    let no_sid = http
        .post(format!("{v1}/v1/Services/{MG}/ChannelSenders"))
        .basic_auth(AC, Some("prism-auth-token"))
        .form(&[("Other", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(no_sid.status().as_u16(), 422);
    let unauthenticated = http.get(format!("{v1}/v1/Services")).send().await.unwrap();
    assert_eq!(unauthenticated.status().as_u16(), 401);
}
