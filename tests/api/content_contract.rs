//! Contract tests: the Content API client (templates) against Stoplight Prism serving
//! Twilio's official `twilio_content_v1.json` and `twilio_content_v2.json`. Prism answers 422
//! to a request that breaks the spec (a missing `types`, a wrong content type, a query
//! parameter of the wrong type) and 401 without credentials. `scripts/test` starts one Prism
//! per spec and sets `WADASH_TEST_PRISM_CONTENT_URL` and `WADASH_TEST_PRISM_CONTENT_V2_URL`.

use serde_json::json;
use wadash::twilio::content::{ContentClient, NewTemplate, Search, Submission};

const AC: &str = "AC0123456789abcdef0123456789abcdef";
const HX: &str = "HXaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

fn prism() -> ContentClient {
    prism_at("WADASH_TEST_PRISM_CONTENT_URL")
}

fn prism_at(var: &str) -> ContentClient {
    let url = std::env::var(var).unwrap_or_else(|_| {
        panic!("{var} is not set: run the suite with scripts/test, which starts Prism")
    });
    crate::helpers::twilio_double("http://127.0.0.1:9", AC, "prism-auth-token", 1)
        .content(&url)
        .unwrap()
}

#[tokio::test]
async fn listing_templates_with_approvals_satisfies_twilios_contract() {
    // Prism answers with the spec's first example (an empty page); what is checked is the
    // request (path, PageSize within 1..=1000, credentials) and that its answer decodes.
    let all = prism()
        .list_with_approvals()
        .await
        .expect("Prism accepts the list");
    assert!(all.iter().all(|t| t.sid.starts_with("HX")));
}

#[tokio::test]
async fn fetching_a_template_and_its_approval_satisfies_twilios_contract() {
    let c = prism();
    let t = c.fetch(HX).await.expect("Prism accepts the fetch");
    assert_eq!(t.sid, HX);
    assert!(!t.types.is_empty(), "the example's types decode");
    let a = c
        .approval(HX)
        .await
        .expect("Prism accepts the approval fetch")
        .expect("the example carries a WhatsApp approval");
    assert_eq!(a.status, "approved");
    assert_eq!(a.category, "utility", "Twilio's UTILITY, lower-cased");
}

#[tokio::test]
async fn creating_submitting_and_deleting_a_template_satisfies_twilios_contract() {
    let c = prism();
    let created = c
        .create(&NewTemplate {
            friendly_name: "order_update".into(),
            language: "en".into(),
            variables: [("1".to_owned(), "Ada".to_owned())].into(),
            types: json!({"twilio/quick-reply": {"body": "Hi {{1}}, is your order right?",
                "actions": [{"title": "Yes", "id": "yes"}, {"title": "No", "id": "no"}]}})
            .as_object()
            .unwrap()
            .clone(),
        })
        .await
        .expect("Prism accepts the create");
    assert!(created.sid.starts_with("HX"));
    c.submit(
        &created.sid,
        &Submission {
            name: "order_update".into(),
            category: "utility".into(),
        },
    )
    .await
    .expect("Prism accepts the approval request");
    c.delete(&created.sid)
        .await
        .expect("Prism accepts the delete");
}

#[tokio::test]
async fn prism_refuses_a_template_without_types_so_the_contract_is_really_checked() {
    // `types` is required by the spec: a client that dropped it would be caught.
    let url = std::env::var("WADASH_TEST_PRISM_CONTENT_URL").unwrap();
    let resp = reqwest::Client::new()
        .post(format!("{url}/v1/Content"))
        .basic_auth(AC, Some("prism-auth-token"))
        .json(&json!({"friendly_name": "x", "language": "en"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 422);
    let unauthenticated = reqwest::Client::new()
        .get(format!("{url}/v1/ContentAndApprovals"))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthenticated.status().as_u16(), 401);
}

#[tokio::test]
async fn searching_templates_by_name_language_and_type_satisfies_twilios_v2_contract() {
    // v2's filtered list: Prism checks the query (PageSize in range, repeated Language and
    // ContentType arrays, ContentName a string) and answers the spec's first example.
    let c = prism_at("WADASH_TEST_PRISM_CONTENT_V2_URL");
    let mut filter = Search::exact_name("order update (v2)", "en");
    filter.languages.push("pt_BR".into());
    filter.content_types = vec!["twilio/quick-reply".into(), "twilio/text".into()];
    let found = c
        .search(&filter, 5)
        .await
        .expect("Prism accepts the search");
    assert!(found.len() <= 5 && found.iter().all(|t| t.sid.starts_with("HX")));
    // A v2 page size outside Twilio's range would be refused: the client keeps it within.
    c.search(&Search::default(), 5000)
        .await
        .expect("a large limit is sent as a page size Twilio accepts");
}

#[tokio::test]
async fn a_bots_choices_as_quick_replies_and_as_a_list_satisfy_twilios_contract() {
    use wadash::bots::choices::{Shape, content, shape_of};
    use wadash::domain::bot::{ChoiceOption, ChoiceSet};
    let c = prism();
    let few = ChoiceSet {
        body: "What can I help you with?".into(),
        options: vec![
            "Opening hours".into(),
            ChoiceOption::with_value("Small", "small"),
        ],
    };
    let many = ChoiceSet {
        body: "Which one?".into(),
        options: (1..=10).map(|i| format!("Option {i}").into()).collect(),
    };
    for (set, shape) in [(few, Shape::QuickReply), (many, Shape::ListPicker)] {
        assert_eq!(shape_of(&set), shape);
        let made = content(AC, shape, &set).unwrap();
        let created = c
            .create(&NewTemplate {
                friendly_name: made.friendly_name.clone(),
                language: wadash::bots::choices::LANGUAGE.into(),
                variables: Default::default(),
                types: made.types.clone(),
            })
            .await
            .unwrap_or_else(|e| panic!("Prism refuses the {shape:?} Content: {e}"));
        assert!(created.sid.starts_with("HX"));
    }
    // A list item without its id breaks the spec: the check above is a real one.
    let url = std::env::var("WADASH_TEST_PRISM_CONTENT_URL").unwrap();
    let resp = reqwest::Client::new()
        .post(format!("{url}/v1/Content"))
        .basic_auth(AC, Some("prism-auth-token"))
        .json(
            &json!({"friendly_name": "x", "language": "en", "types": {"twilio/list-picker":
            {"body": "Which?", "button": "Choose", "items": [{"item": "A"}]}}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 422);
}
