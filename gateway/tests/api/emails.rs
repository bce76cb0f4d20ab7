//! One mailbox, one account: every spelling of an address (case of the
//! domain, full-width and other UTS #46 look-alikes, a trailing dot, white
//! space around it, a composed or decomposed local part) is the same
//! address, on every route and subject, and `auth-worker migrate` brings
//! the rows stored by earlier versions to that one spelling, or refuses and
//! says which accounts share a mailbox.

use std::net::SocketAddr;

use axum::{Router, extract::Request, routing::any};
use reqwest::Method;
use serde_json::{Value, json};
use shared::Role;
use testkit::{PASSWORD, TestDb, assert_error, db_settings};

use crate::{
    helpers::{Options, TestApp, claims, proxy_settings, spawn_app_with},
    proxy,
};

/// A stack that lets one client sign up more often than the default
/// allows (these tests sign up many spellings from one address).
async fn stack() -> TestApp {
    spawn_app_with(Options {
        auth: |s| s.throttle.signup_max_per_address = 100,
        ..Options::default()
    })
    .await
}

#[tokio::test]
async fn look_alike_spellings_of_a_taken_address_are_409_at_sign_up() {
    let app = stack().await;
    let ada = app.signup_ok("ADA@Example.COM").await;
    // The domain is stored lower-cased; the local part keeps its case.
    assert_eq!(ada["email"], "ADA@example.com");
    for spelling in [
        "ada@example.com",
        // Full-width letters, and a full-width full stop.
        "ada@ｅｘａｍｐｌｅ.com",
        "ada@ＥＸＡＭＰＬＥ．ＣＯＭ",
        // The root's trailing dot.
        "ada@example.com.",
        " ada@example.com ",
        "\u{3000}Ada@Example.com.\t",
    ] {
        let response = app.signup(spelling, PASSWORD).await;
        let body = assert_error(response, 409, "/api/auth/signup").await;
        assert_eq!(body["message"], "email already registered", "{spelling:?}");
    }
    assert_eq!(app.db.count("users").await, 1);
}

#[tokio::test]
async fn composed_and_decomposed_local_parts_are_one_mailbox() {
    let app = stack().await;
    let composed = "jos\u{e9}@example.com";
    let decomposed = "jose\u{301}@example.com";
    assert_eq!(app.signup_ok(composed).await["email"], composed);
    let body = assert_error(
        app.signup(decomposed, PASSWORD).await,
        409,
        "/api/auth/signup",
    )
    .await;
    assert_eq!(body["message"], "email already registered");

    // Stored composed (NFC) whichever way it was typed.
    let rene = app.signup_ok("rene\u{301}@example.com").await;
    assert_eq!(rene["email"], "ren\u{e9}@example.com");
    assert_error(
        app.signup("REN\u{c9}@example.com", PASSWORD).await,
        409,
        "/api/auth/signup",
    )
    .await;
    assert_eq!(
        app.login_ok("ren\u{e9}@EXAMPLE.com", PASSWORD).await["user"]["id"],
        rene["id"]
    );
}

#[tokio::test]
async fn a_look_alike_spelling_logs_in_to_the_same_account() {
    let app = stack().await;
    let id = app.signup_ok("Ada@Example.com").await["id"].clone();
    for spelling in [
        "Ada@example.com",
        "ada@ＥＸＡＭＰＬＥ.com",
        " ADA@example.com. ",
    ] {
        let reply = app.login_ok(spelling, PASSWORD).await;
        assert_eq!(reply["user"]["id"], id, "{spelling:?}");
        assert_eq!(reply["user"]["email"], "Ada@example.com", "{spelling:?}");
    }
    // The browser's session login too.
    let response = app
        .session_login("ada@ｅｘａｍｐｌｅ．com.", PASSWORD)
        .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["user"]["id"], id);
    // A wrong password is still wrong, whatever the spelling.
    assert_eq!(
        app.login("ada@ＥＸＡＭＰＬＥ.com", "not the password")
            .await
            .status(),
        401
    );
}

/// `auth.get_user` asked straight over NATS for `email`: status and reply.
async fn get_user(app: &TestApp, email: &str) -> (Option<u16>, Value) {
    app.nats_request("auth.get_user", None, &json!({ "email": email }))
        .await
}

#[tokio::test]
async fn auth_get_user_finds_the_account_by_a_look_alike_email() {
    let app = stack().await;
    let id = app.signup_ok("Ada@Example.com").await["id"].clone();
    let (status, user) = get_user(&app, " ADA@ｅｘａｍｐｌｅ．com. ").await;
    assert_eq!(status, None, "{user}");
    assert_eq!(user["id"], id);
    assert_eq!(user["email"], "Ada@example.com");
    let (status, _) = get_user(&app, "nobody@ｅｘａｍｐｌｅ.com").await;
    assert_eq!(status, Some(404));
}

/// An upstream that answers with the identity headers it received.
async fn whoami_upstream() -> SocketAddr {
    let app = Router::new().fallback(any(|request: Request| async move {
        let header = |name: &str| {
            request
                .headers()
                .get(name)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        };
        axum::Json(json!({
            "email": header("x-forwarded-email"),
            "assertion": header("x-auth-assertion"),
        }))
    }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

#[tokio::test]
async fn the_upstream_and_the_assertion_carry_the_normalized_address() {
    let mut app = stack().await;
    let upstream = whoami_upstream().await;
    let mut settings = app.gateway_settings();
    let doc = format!(
        "[[proxy.routes]]\nname = \"whoami\"\nupstream = \"http://{upstream}\"\nroles = \"USER\"\n"
    );
    settings.proxy = proxy_settings(&doc);
    let api = app.start_gateway(settings).await;
    app.set_api(api);

    let spelling = " Ada@ＥＸＡＭＰＬＥ.com";
    let user = app.signup_ok(spelling).await;
    let cookie = proxy::session(&app, spelling).await;
    let seen: Value = app
        .same_origin(Method::GET, "/proxy/whoami/", &cookie)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(seen["email"], "Ada@example.com", "{seen}");
    let assertion = claims(seen["assertion"].as_str().expect("an assertion"));
    assert_eq!(assertion["email"], "Ada@example.com", "{assertion}");

    // Minted straight on NATS, the same.
    let id = user["id"].as_i64().unwrap();
    let (status, minted) = app
        .nats_request(
            "auth.proxy_assertion",
            Some((id, Role::User)),
            &json!({"audience": "proxy:whoami", "roles": ["USER"]}),
        )
        .await;
    assert_eq!(status, None, "{minted}");
    assert_eq!(minted["user"]["email"], "Ada@example.com");
    assert_eq!(
        claims(minted["assertion"].as_str().unwrap())["email"],
        "Ada@example.com"
    );
}

#[tokio::test]
async fn set_role_finds_the_user_by_a_look_alike_email() {
    let app = stack().await;
    let id = app.signup_ok("ada@example.com").await["id"].clone();
    let settings = app.auth_worker_settings().migrator;
    let user = auth_worker::set_role(&settings, " ADA@ｅｘａｍｐｌｅ.com. ", Role::Admin)
        .await
        .unwrap();
    assert_eq!(user.id, id.as_i64().unwrap());
    assert_eq!(app.role_of(user.id).await, "ADMIN");
}

/// Rows as earlier versions stored them (an email as typed, trimmed),
/// inserted behind the workers' backs; their ids in order.
async fn insert_rows(db: &TestDb, emails: &[&str]) -> Vec<i64> {
    let pool = db.pool().await;
    let mut ids = Vec::new();
    for email in emails {
        let id = sqlx::query_scalar(
            "insert into users (email, password_hash) values ($1, '$argon2id$v=19$x') returning id",
        )
        .bind(email)
        .fetch_one(&pool)
        .await
        .unwrap();
        ids.push(id);
    }
    ids
}

/// The database as it was before `0007_normalized_emails`: that migration
/// only changes rows, so forgetting that it ran makes `migrate` apply it
/// again, as it would on a database of an earlier version.
async fn forget_0007(db: &TestDb) {
    sqlx::query("delete from _sqlx_migrations where version = 7")
        .execute(&db.pool().await)
        .await
        .unwrap();
}

async fn emails(db: &TestDb, ids: &[i64]) -> Vec<String> {
    let mut out = Vec::new();
    for id in ids {
        out.push(
            sqlx::query_scalar("select email from users where id = $1")
                .bind(id)
                .fetch_one(&db.pool().await)
                .await
                .unwrap(),
        );
    }
    out
}

async fn migrate(db: &TestDb) -> anyhow::Result<()> {
    auth_worker::migrate(&db_settings(
        &db.url_as(auth_worker::provision::MIGRATOR_ROLE),
    ))
    .await
}

#[tokio::test]
async fn migrate_normalizes_the_emails_earlier_versions_stored_and_can_run_again() {
    let db = TestDb::create().await;
    let ids = insert_rows(
        &db,
        &[
            "Ada@Example.COM",
            "bob@ｅｘａｍｐｌｅ.org",
            "carol@BÜCHER.de",
            "dave@example.net",
        ],
    )
    .await;
    forget_0007(&db).await;
    migrate(&db).await.unwrap();
    let normalized = [
        "Ada@example.com",
        "bob@example.org",
        "carol@xn--bcher-kva.de",
        "dave@example.net",
    ];
    assert_eq!(emails(&db, &ids).await, normalized);
    // Again: nothing left to do, nothing changes.
    migrate(&db).await.unwrap();
    assert_eq!(emails(&db, &ids).await, normalized);
    // A row written since by an earlier version still running (a rolling
    // upgrade) is caught by the next run.
    let late = insert_rows(&db, &["erin@ＥＸＡＭＰＬＥ.org"]).await;
    migrate(&db).await.unwrap();
    assert_eq!(emails(&db, &late).await, ["erin@example.org"]);
}

#[tokio::test]
async fn migrate_refuses_to_merge_two_accounts_of_one_mailbox_and_names_them() {
    let db = TestDb::create().await;
    let stored = [
        "ada@example.com",
        "ADA@ｅｘａｍｐｌｅ.com",
        "carol@BÜCHER.de",
    ];
    let ids = insert_rows(&db, &stored).await;
    forget_0007(&db).await;
    let err = migrate(&db)
        .await
        .expect_err("two accounts would share ada@example.com");
    let report = format!("{err:#}");
    for (id, email) in ids.iter().zip(stored).take(2) {
        assert!(report.contains(&format!("id {id} ")), "{report}");
        assert!(report.contains(&format!("{email:?}")), "{report}");
    }
    assert!(!report.contains("carol"), "{report}");
    // Nothing changed, not even the row that collides with nobody.
    assert_eq!(emails(&db, &ids).await, stored);

    // Once an operator has dealt with the pair, the migration completes.
    sqlx::query("delete from users where id = $1")
        .bind(ids[1])
        .execute(&db.pool().await)
        .await
        .unwrap();
    migrate(&db).await.unwrap();
    assert_eq!(
        emails(&db, &[ids[0], ids[2]]).await,
        ["ada@example.com", "carol@xn--bcher-kva.de"]
    );
}

#[tokio::test]
async fn the_sql_migration_lower_cases_ascii_domains_exactly_as_the_parser_does() {
    let db = TestDb::create().await;
    let stored = [
        "Ada@Example.COM",
        "Eve@Sub.EXAMPLE.org",
        "bob@ｅｘａｍｐｌｅ.org",
        "carol@BÜCHER.de",
        "dave@example.net",
    ];
    let ids = insert_rows(&db, &stored).await;
    sqlx::raw_sql(include_str!(
        "../../../migrations/0007_normalized_emails.sql"
    ))
    .execute(&db.pool().await)
    .await
    .unwrap();
    let after = emails(&db, &ids).await;
    // The ASCII domains, by SQL alone; the others are the data step's.
    assert_eq!(
        after,
        [
            "Ada@example.com",
            "Eve@sub.example.org",
            "bob@ｅｘａｍｐｌｅ.org",
            "carol@BÜCHER.de",
            "dave@example.net",
        ]
    );
    for (before, after) in stored.iter().zip(&after) {
        if before != after {
            let parsed = shared::types::Email::parse(before).unwrap();
            assert_eq!(parsed.as_str(), after.as_str());
        }
    }
}
