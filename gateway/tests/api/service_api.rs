//! The workers speak the NATS service API (ADR-32), as `nats micro` expects.

use serde_json::{Value, json};
use testkit::{PASSWORD, error_fields};

use crate::helpers::{endpoint, spawn_app};

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

#[tokio::test]
async fn info_lists_every_endpoint_with_its_subject_and_queue_group() {
    let app = spawn_app().await;
    for (service, subjects) in [
        ("auth-worker", shared::auth::SUBJECTS),
        ("user-worker", shared::user::SUBJECTS),
    ] {
        let info = app.service_api(&format!("$SRV.INFO.{service}")).await;
        assert_eq!(info["type"], "io.nats.micro.v1.info_response");
        assert_eq!(info["name"], service);
        assert_eq!(info["version"], env!("CARGO_PKG_VERSION"));
        assert!(!info["description"].as_str().unwrap().is_empty());
        assert!(!info["id"].as_str().unwrap().is_empty());
        let endpoints = info["endpoints"].as_array().unwrap();
        let mut listed: Vec<&str> = endpoints
            .iter()
            .map(|e| e["subject"].as_str().unwrap())
            .collect();
        listed.sort_unstable();
        let mut expected = subjects.to_vec();
        expected.sort_unstable();
        assert_eq!(listed, expected);
        for e in endpoints {
            assert!(valid_name(e["name"].as_str().unwrap()), "{e}");
            assert_eq!(e["queue_group"], service);
        }

        let ping = app.service_api(&format!("$SRV.PING.{service}")).await;
        assert_eq!(ping["type"], "io.nats.micro.v1.ping_response");
        // The id-specific subject answers too.
        let by_id = app
            .service_api(&format!(
                "$SRV.PING.{service}.{}",
                info["id"].as_str().unwrap()
            ))
            .await;
        assert_eq!(by_id["id"], info["id"]);
    }
}

#[tokio::test]
async fn stats_count_requests_and_error_replies_per_endpoint() {
    let app = spawn_app().await;
    app.signup_ok("a@example.com").await;
    assert_eq!(app.signup("a@example.com", PASSWORD).await.status(), 409);
    assert_eq!(
        app.login("a@example.com", "wrong password!").await.status(),
        401
    );

    let stats = app.service_api("$SRV.STATS.auth-worker").await;
    assert_eq!(stats["type"], "io.nats.micro.v1.stats_response");
    time::OffsetDateTime::parse(
        stats["started"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let create = endpoint(&stats, "auth.create_user");
    assert_eq!(create["num_requests"], 2);
    assert_eq!(create["num_errors"], 1);
    assert_eq!(create["last_error"], "409:email already registered");
    assert!(create["processing_time"].as_u64().unwrap() > 0);
    assert!(create["average_processing_time"].as_u64().unwrap() > 0);
    let login = endpoint(&stats, "auth.login");
    assert_eq!(login["num_requests"], 1);
    assert_eq!(login["num_errors"], 1);
    let jwks = endpoint(&stats, "auth.jwks");
    assert_eq!(jwks["num_errors"], 0);
}

#[tokio::test]
async fn a_request_published_straight_onto_nats_is_held_to_the_same_rules() {
    let app = spawn_app().await;
    // The gateway's NATS user may publish here, but skips the HTTP checks.
    let invalid = json!({"email": "not-an-email", "password": "short"});
    let (status, body) = app
        .nats_request_as("auth.create_user", None, &invalid)
        .await;
    assert_eq!(status, Some(400));
    assert_eq!(error_fields(&body), ["email", "password"]);
    assert_eq!(app.db.count("users").await, 0);
}

#[tokio::test]
async fn every_endpoint_publishes_the_json_schema_of_its_request_and_reply() {
    let app = spawn_app().await;
    for service in ["auth-worker", "user-worker"] {
        let info = app.service_api(&format!("$SRV.INFO.{service}")).await;
        for endpoint in info["endpoints"].as_array().unwrap() {
            for key in ["request_schema", "response_schema"] {
                let text = endpoint["metadata"][key]
                    .as_str()
                    .unwrap_or_else(|| panic!("{} has no {key}", endpoint["subject"]));
                let schema: Value = serde_json::from_str(text).unwrap();
                assert!(schema["schema"].is_object(), "{text}");
                assert!(schema["components"]["schemas"].is_object(), "{text}");
            }
        }
    }
    // Spot checks: the sign-up request and the login reply.
    let info = app.service_api("$SRV.INFO.auth-worker").await;
    let signup: Value = serde_json::from_str(
        endpoint(&info, "auth.create_user")["metadata"]["request_schema"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    let required: Vec<&str> = signup["schema"]["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(required, ["email", "password"]);
    assert_eq!(signup["schema"]["properties"]["password"]["minLength"], 8);
    let login: Value = serde_json::from_str(
        endpoint(&info, "auth.login")["metadata"]["response_schema"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    // Tokens, or the second factor to prove first.
    let replies: Vec<&str> = login["schema"]["oneOf"]
        .as_array()
        .unwrap_or_else(|| panic!("{login}"))
        .iter()
        .map(|v| v["$ref"].as_str().unwrap())
        .collect();
    assert_eq!(
        replies,
        [
            "#/components/schemas/TokenReply",
            "#/components/schemas/MfaChallenge"
        ]
    );
    assert_eq!(
        login["components"]["schemas"]["TokenReply"]["properties"]["user"]["$ref"],
        "#/components/schemas/User"
    );
    assert!(
        login["components"]["schemas"]["User"].is_object(),
        "{login}"
    );
}
