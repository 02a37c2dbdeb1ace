//! The "done when" scenario end to end over HTTP, with real logins: the admin
//! creates a patient and an invite; the patient registers from it and opens a case with
//! symptoms and an attachment; the clinician on the care team sees it pending, replies,
//! records an allergy and a diagnosis and prescribes; the patient downloads the PDF; a
//! clinician off the team is refused until break-glass; the admin sees no clinical content;
//! and every step is in the audit tables.

use reqwest::StatusCode;
use serde_json::json;
use uuid::Uuid;

use super::world::events;
use crate::common::spawn_app;

const PASSWORD: &str = "a long patient passphrase 42";

#[tokio::test]
async fn patient_case_to_prescription_with_break_glass_and_minimum_necessary_all_audited() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let (doc_id, otp) = app.create_user(&admin, "doc@general.example", "clinician").await;
    let doc = app.onboard("doc@general.example", &otp).await;
    let (other_id, otp) = app.create_user(&admin, "locum@general.example", "clinician").await;
    let other = app.onboard("locum@general.example", &otp).await;

    // Admin: patient record, care team, invite.
    let (s, pat) = app
        .post(
            "/v1/patients",
            Some(&admin.access),
            json!({ "mrn": "MRN-0001", "given_name": "Jane", "family_name": "Doe", "birth_date": "1980-02-03",
                    "sex": "female", "email": "jane@mail.example" }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{pat}");
    let p = pat["id"].as_str().unwrap().to_owned();
    let (s, b) =
        app.post(&format!("/v1/patients/{p}/care-team"), Some(&admin.access), json!({ "clinician_id": doc_id })).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let (s, inv) = app.post(&format!("/v1/patients/{p}/invite"), Some(&admin.access), json!({})).await;
    assert_eq!(s, StatusCode::CREATED, "{inv}");

    // Patient: takes the code from their mailbox, registers, signs in, opens a case with an
    // attachment.
    let code = crate::invites::delivered_code(&app, &inv, "jane@mail.example").await;
    let (s, reg) = app
        .register(json!({ "invite_code": code, "birth_date": "1980-02-03", "email": "jane@mail.example",
                    "password": PASSWORD }))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{reg}");
    let patient_id: Uuid = reg["user_id"].as_str().unwrap().parse().unwrap();
    let (s, t) = app.login("jane@mail.example", PASSWORD).await;
    assert_eq!(s, StatusCode::OK, "{t}");
    let pt = t["access_token"].as_str().unwrap().to_owned();
    let (s, conv) = app
        .post(
            &format!("/v1/patients/{p}/conversations"),
            Some(&pt),
            json!({ "subject": "rash on forearm", "message": "itchy since Monday",
                    "symptoms": [{ "name": "rash", "severity": 5, "onset": "2024-03-04" },
                                 { "name": "itch", "severity": 6 }] }),
        )
        .await;
    assert_eq!((s, conv["status"].as_str()), (StatusCode::CREATED, Some("pending")), "{conv}");
    let c = conv["id"].as_str().unwrap().to_owned();
    let photo = b"\x89PNG\r\n\x1a\nnot really a png".to_vec();
    let resp = app
        .client
        .post(app.url(&format!("/v1/conversations/{c}/attachments?filename=forearm.png")))
        .bearer_auth(&pt)
        .header("content-type", "image/png")
        .body(photo.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let att: serde_json::Value = resp.json().await.unwrap();
    let att_id = att["id"].as_str().unwrap().to_owned();

    // Clinician on the care team: sees it pending, replies, records, prescribes.
    let (s, pending) = app.get("/v1/conversations?status=pending", &doc.access).await;
    assert_eq!(s, StatusCode::OK);
    assert!(pending["items"].as_array().unwrap().iter().any(|i| i["id"] == c.as_str()), "{pending}");
    let (s, _) = app
        .post(
            &format!("/v1/conversations/{c}/messages"),
            Some(&doc.access),
            json!({ "body": "looks like contact dermatitis" }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let (_, now) = app.get(&format!("/v1/conversations/{c}"), &doc.access).await;
    assert_eq!(now["status"], "active");
    let resp =
        app.client.get(app.url(&format!("/v1/attachments/{att_id}"))).bearer_auth(&doc.access).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.bytes().await.unwrap().to_vec(), photo);
    let (s, _) = app
        .post(
            &format!("/v1/patients/{p}/allergies"),
            Some(&doc.access),
            json!({ "substance": "nickel", "reaction": "contact dermatitis", "severity": "mild" }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, _) = app
        .post(
            &format!("/v1/patients/{p}/history"),
            Some(&doc.access),
            json!({ "icd10_code": "L23.0", "description": "Allergic contact dermatitis due to metals", "diagnosed_on": "2024-03-06" }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, rx) = app
        .post(
            &format!("/v1/patients/{p}/prescriptions"),
            Some(&doc.access),
            json!({ "medication": "hydrocortisone 1% cream", "dose": "1 application", "quantity": 1, "refills_allowed": 1,
                    "instructions": "apply twice daily for 7 days" }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{rx}");
    let rx_id = rx["id"].as_str().unwrap().to_owned();

    // Patient: downloads the prescription.
    let resp =
        app.client.get(app.url(&format!("/v1/prescriptions/{rx_id}.pdf"))).bearer_auth(&pt).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.bytes().await.unwrap().starts_with(b"%PDF-"));

    // Clinician off the team: refused until break-glass, then in (flagged).
    let chart = format!("/v1/patients/{p}");
    assert_eq!(app.get(&chart, &other.access).await.0, StatusCode::NOT_FOUND);
    let (s, _) = app
        .post(
            &format!("/v1/patients/{p}/break-glass"),
            Some(&other.access),
            json!({ "reason": "covering the on-call shift, patient in emergency room" }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, seen) = app.get(&chart, &other.access).await;
    assert_eq!((s, seen["allergies"][0]["substance"].as_str()), (StatusCode::OK, Some("nickel")), "{seen}");

    // Admin: demographics only, no clinical content anywhere.
    let (s, demo) = app.get(&chart, &admin.access).await;
    assert_eq!((s, demo["given_name"].as_str()), (StatusCode::OK, Some("Jane")));
    for k in ["allergies", "medications", "history", "prescriptions", "medical_info"] {
        assert!(demo.get(k).is_none(), "admin sees {k}");
    }
    for path in [
        format!("/v1/patients/{p}/allergies"),
        format!("/v1/conversations/{c}"),
        format!("/v1/conversations/{c}/messages"),
        format!("/v1/prescriptions/{rx_id}"),
        format!("/v1/attachments/{att_id}"),
    ] {
        assert_eq!(app.get(&path, &admin.access).await.0, StatusCode::NOT_FOUND, "{path}");
    }

    // Every step, per actor, in order (inbox and, once sequenced, log).
    let steps = |ev: Vec<super::world::Event>| ev.into_iter().map(|e| (e.0, e.1, e.2, e.3)).collect::<Vec<_>>();
    let s = |a: &str, r: &str, o: &str, bg: bool| (a.to_owned(), r.to_owned(), o.to_owned(), bg);
    let patient_steps = steps(events(&app, patient_id).await);
    for want in [
        s("create", "conversation", "success", false),
        s("create", "attachment", "success", false),
        s("export", "prescription_pdf", "success", false),
    ] {
        assert!(patient_steps.contains(&want), "{want:?} in {patient_steps:?}");
    }
    let doc_steps = steps(events(&app, doc_id.parse().unwrap()).await);
    for want in [
        s("read", "conversation", "success", false),
        s("create", "message", "success", false),
        s("read", "attachment", "success", false),
        s("create", "allergy", "success", false),
        s("create", "diagnosis", "success", false),
        s("create", "prescription", "success", false),
    ] {
        assert!(doc_steps.contains(&want), "{want:?} in {doc_steps:?}");
    }
    let other_steps = steps(events(&app, other_id.parse().unwrap()).await);
    let tail: Vec<_> = other_steps.iter().rev().take(3).rev().cloned().collect();
    assert_eq!(
        tail,
        [
            s("read", "chart", "denied", false),
            s("break_glass", "break_glass_grant", "success", true),
            s("read", "chart", "success", true)
        ],
        "{other_steps:?}"
    );
    let admin_steps = steps(events(&app, admin.id.parse().unwrap()).await);
    assert!(admin_steps.contains(&s("create", "patient", "success", false)), "{admin_steps:?}");
    assert_eq!(admin_steps.iter().filter(|e| e.2 == "denied").count(), 5, "{admin_steps:?}");
}
