//! The case flow's edges: attachment limits (413, 415) that store nothing; a conversation's
//! close, replies refused once closed (409), and messages that cannot be changed.

use custos::db::{self, ClaimRole, Claims};
use reqwest::StatusCode;
use serde_json::json;
use uuid::Uuid;

use super::world::{self, call, events};
use crate::common::{TestApp, spawn_app_with};

async fn upload(app: &TestApp, token: &str, path: &str, ctype: &str, body: Vec<u8>) -> StatusCode {
    let resp = app
        .client
        .post(app.url(path))
        .bearer_auth(token)
        .header("content-type", ctype)
        .body(body)
        .send()
        .await
        .unwrap();
    resp.status()
}

async fn count(app: &TestApp, sql: &'static str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(&app.pool).await.unwrap()
}

#[tokio::test]
async fn attachments_over_the_limit_or_of_an_unlisted_type_store_nothing() {
    let app = spawn_app_with(&[("CUSTOS_ATTACHMENT_MAX_BYTES", "1024")]).await;
    let w = world::build(&app).await;
    let path = format!("/v1/patients/{}/attachments?filename=scan.pdf", w.p1);
    let (before_events, pdf) = (events(&app, w.pa1.id).await.len(), b"%PDF-1.4 ".to_vec());

    let mut big = pdf.clone();
    big.resize(1025, b'x');
    assert_eq!(upload(&app, &w.pa1.token, &path, "application/pdf", big).await, StatusCode::PAYLOAD_TOO_LARGE);
    let html = format!("/v1/patients/{}/attachments?filename=page.html", w.p1);
    assert_eq!(
        upload(&app, &w.pa1.token, &html, "text/html", b"<p>hi</p>".to_vec()).await,
        StatusCode::UNSUPPORTED_MEDIA_TYPE
    );
    assert_eq!(
        upload(&app, &w.pa1.token, &path, "application/x-msdownload", b"MZ".to_vec()).await,
        StatusCode::UNSUPPORTED_MEDIA_TYPE
    );
    assert_eq!(count(&app, "SELECT count(*) FROM attachments").await, 0, "nothing stored");
    // Refused before any record was touched: each refusal is one `denied` event, nothing else.
    let after = events(&app, w.pa1.id).await;
    let refusals: Vec<_> =
        after[before_events..].iter().map(|e| (e.2.as_str(), e.4.clone().unwrap_or_default())).collect();
    assert_eq!(refusals.len(), 3, "{refusals:?}");
    assert!(refusals[0].0 == "denied" && refusals[0].1.starts_with("payload_too_large "), "{refusals:?}");
    assert!(
        refusals[1..].iter().all(|(o, r)| *o == "denied" && r.starts_with("unsupported_media_type ")),
        "{refusals:?}"
    );

    // At the limit exactly: accepted.
    let mut exact = pdf;
    exact.resize(1024, b'x');
    assert_eq!(upload(&app, &w.pa1.token, &path, "application/pdf", exact).await, StatusCode::CREATED);
    assert_eq!(count(&app, "SELECT count(*) FROM attachments").await, 1);
}

/// A chunked upload (no Content-Length) cannot slip past the limit: the body is counted as
/// it streams in, refused with 413 once it passes the limit, and nothing is stored.
#[tokio::test]
async fn a_chunked_upload_without_content_length_is_cut_off_at_the_limit() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = spawn_app_with(&[("CUSTOS_ATTACHMENT_MAX_BYTES", "1024")]).await;
    let w = world::build(&app).await;
    let chunked = async |len: usize| {
        let addr = app.address.trim_start_matches("http://").to_owned();
        let mut tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let head = format!(
            "POST /v1/patients/{}/attachments?filename=scan.pdf HTTP/1.1\r\nHost: {addr}\r\n\
             Authorization: Bearer {}\r\nContent-Type: application/pdf\r\nTransfer-Encoding: chunked\r\n\
             Connection: close\r\n\r\n",
            w.p1, w.pa1.token
        );
        tcp.write_all(head.as_bytes()).await.unwrap();
        let mut left = len;
        while left > 0 {
            let n = left.min(300);
            // Writes after a 413 may meet a closed socket: that is the point.
            let _ = tcp.write_all(format!("{n:x}\r\n{}\r\n", "x".repeat(n)).as_bytes()).await;
            left -= n;
        }
        let _ = tcp.write_all(b"0\r\n\r\n").await;
        let mut response = Vec::new();
        let _ = tcp.read_to_end(&mut response).await;
        String::from_utf8_lossy(&response).lines().next().unwrap_or_default().to_owned()
    };
    let status = chunked(5000).await;
    assert!(status.contains(" 413 "), "{status}");
    assert_eq!(count(&app, "SELECT count(*) FROM attachments").await, 0, "nothing stored");
    let status = chunked(1000).await;
    assert!(status.contains(" 201 "), "under the limit, chunked is fine: {status}");
    assert_eq!(count(&app, "SELECT count(*) FROM attachments").await, 1);
}

#[tokio::test]
async fn a_closed_conversation_refuses_replies_and_messages_never_change() {
    let app = spawn_app_with(&[]).await;
    let w = world::build(&app).await;
    let (p, pt, doc) = (w.p1, &w.pa1, &w.ca1);
    let (s, conv) = call(
        &app,
        "POST",
        &format!("/v1/patients/{p}/conversations"),
        pt,
        Some(json!({ "subject": "cough", "message": "for a week",
                     "symptoms": [{ "name": "cough", "severity": 4, "onset": "2024-01-02" }] })),
    )
    .await;
    assert_eq!((s, conv["status"].as_str()), (StatusCode::CREATED, Some("pending")), "{conv}");
    let id = conv["id"].as_str().unwrap().to_owned();
    let msgs = format!("/v1/conversations/{id}/messages");

    let (s, _) = call(&app, "POST", &msgs, doc, Some(json!({ "body": "any fever?" }))).await;
    assert_eq!(s, StatusCode::CREATED);
    let (_, c) = call(&app, "GET", &format!("/v1/conversations/{id}"), pt, None).await;
    assert_eq!(c["status"], "active", "a clinician's reply makes it active");
    let (s, _) = call(&app, "POST", &msgs, pt, Some(json!({ "body": "no fever" }))).await;
    assert_eq!(s, StatusCode::CREATED);

    let (s, closed) = call(&app, "POST", &format!("/v1/conversations/{id}/close"), doc, None).await;
    assert_eq!((s, closed["status"].as_str()), (StatusCode::OK, Some("closed")), "{closed}");
    let (s, _) = call(&app, "POST", &format!("/v1/conversations/{id}/close"), doc, None).await;
    assert_eq!(s, StatusCode::CONFLICT, "closing twice");
    for who in [pt, doc] {
        let (s, e) = call(&app, "POST", &msgs, who, Some(json!({ "body": "one more thing" }))).await;
        assert_eq!(s, StatusCode::CONFLICT, "{e}");
        assert!(e["error"]["message"].as_str().unwrap().contains("closed"), "{e}");
    }
    let (s, list) = call(&app, "GET", &msgs, pt, None).await;
    assert_eq!(s, StatusCode::OK);
    let bodies: Vec<&str> = list["items"].as_array().unwrap().iter().map(|m| m["body"].as_str().unwrap()).collect();
    assert_eq!(bodies, ["for a week", "any fever?", "no fever"]);
    let ev = events(&app, pt.id).await;
    assert!(ev.iter().any(|e| e.0 == "create" && e.1 == "message" && e.2 == "denied"), "{ev:?}");

    // No route edits or deletes a message...
    for method in ["PUT", "PATCH", "DELETE"] {
        let (s, _) = call(&app, method, &msgs, doc, Some(json!({ "body": "edited" }))).await;
        assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED, "{method}");
    }
    // ...and the database refuses it to the app role, for its author too.
    let author: Uuid =
        sqlx::query_scalar("SELECT sender_id FROM messages WHERE body_enc IS NOT NULL ORDER BY created_at LIMIT 1")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    let role = if author == pt.id { ClaimRole::Patient } else { ClaimRole::Clinician };
    for sql in ["UPDATE messages SET body_enc = body_enc", "DELETE FROM messages"] {
        let mut tx = db::begin(&app.pool, &Claims::user(author, w.org_a, role, None)).await.unwrap();
        let err = sqlx::query(sql).execute(&mut *tx).await.unwrap_err();
        assert!(err.to_string().contains("permission denied"), "{sql}: {err}");
    }
    assert_eq!(count(&app, "SELECT count(*) FROM messages").await, 3);
}

/// A `multipart/form-data` body with one part; returns (Content-Type, body).
fn form(part: &str, filename: &str, ctype: &str, content: &[u8]) -> (String, Vec<u8>) {
    let boundary = "custos-test-boundary-7f3a";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"{part}\"; filename=\"{filename}\"\r\nContent-Type: {ctype}\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(content);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

#[tokio::test]
async fn multipart_uploads_follow_the_same_rules_as_raw_ones() {
    let app = spawn_app_with(&[("CUSTOS_ATTACHMENT_MAX_BYTES", "1024")]).await;
    let w = world::build(&app).await;
    let path = format!("/v1/patients/{}/attachments", w.p1);
    let png = b"\x89PNG\r\n\x1a\n-multipart-".to_vec();

    for (part, ctype, content, want) in [
        ("file", "text/html", b"<p>x</p>".to_vec(), StatusCode::UNSUPPORTED_MEDIA_TYPE),
        ("file", "image/png", vec![b'x'; 1025], StatusCode::PAYLOAD_TOO_LARGE),
        ("upload", "image/png", png.clone(), StatusCode::UNPROCESSABLE_ENTITY),
    ] {
        let (t, body) = form(part, "x.png", ctype, &content);
        assert_eq!(upload(&app, &w.pa1.token, &path, &t, body).await, want, "{part} {ctype}");
    }
    assert_eq!(count(&app, "SELECT count(*) FROM attachments").await, 0, "nothing stored");

    let (t, body) = form("file", "elbow.png", "image/png", &png);
    let resp = app
        .client
        .post(app.url(&path))
        .bearer_auth(&w.pa1.token)
        .header("content-type", t)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let meta: serde_json::Value = resp.json().await.unwrap();
    assert_eq!((meta["filename"].as_str(), meta["content_type"].as_str()), (Some("elbow.png"), Some("image/png")));
    let resp = app
        .client
        .get(app.url(&format!("/v1/attachments/{}", meta["id"].as_str().unwrap())))
        .bearer_auth(&w.ca1.token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.bytes().await.unwrap().to_vec(), png);
}
