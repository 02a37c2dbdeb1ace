#!/usr/bin/env python3
"""Seeds a fresh Custos server for ci/openapi-check, through its API only.

Signs in the bootstrapped admin (one-time password -> new password -> TOTP enrolment ->
sign-in with a second factor), creates a clinician and an auditor the same way and a patient
through an invite (its code read from the development outbox file, as the patient receives
it), and writes a little data (patients, chart entries, a prescription, a conversation, an
attachment) so that GETs meet real rows. Each role also gets a second, spare session for
schemathesis to revoke. Prints one JSON object: the four roles' access tokens, their current
and spare session ids, and the ids of what it created. Standard library only.
"""

import base64
import hashlib
import hmac
import json
import os
import struct
import sys
import time
import urllib.error
import urllib.request

BASE = sys.argv[1]
ADMIN_EMAIL = sys.argv[2]
ADMIN_OTP = sys.argv[3]
PASSWORD = "Openapi-Check-Horse-Battery-7781!"
# The patient's own browser: a registration from the issuer's client (same address and user
# agent as a live staff session) is refused (src/auth/invites.rs).
PATIENT_AGENT = "openapi-check-patient/1"


def call(method, path, token=None, body=None, raw=None, ctype=None, expect=(200, 201, 204), agent=None):
    headers = {"User-Agent": agent} if agent else {}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    if raw is not None:
        data, headers["Content-Type"] = raw, ctype
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(BASE + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            status, text = resp.status, resp.read()
    except urllib.error.HTTPError as e:
        status, text = e.code, e.read()
    if status not in expect:
        sys.exit(f"seed: {method} {path} answered {status}: {text[:300]!r}")
    return json.loads(text) if text and text[:1] in b"{[" else None


def totp(secret_b32, step):
    key = base64.b32decode(secret_b32 + "=" * (-len(secret_b32) % 8), casefold=True)
    mac = hmac.new(key, struct.pack(">Q", step), hashlib.sha1).digest()
    off = mac[-1] & 0x0F
    return "%06d" % ((struct.unpack(">I", mac[off : off + 4])[0] & 0x7FFFFFFF) % 1_000_000)


def staff_sign_in(email, one_time_password):
    """First sign-in of a staff account, through to a full session with a second factor."""
    t = call("POST", "/v1/auth/login", body={"email": email, "password": one_time_password})
    call("POST", "/v1/me/password", t["access_token"],
         {"current_password": one_time_password, "new_password": PASSWORD})
    t = call("POST", "/v1/auth/login", body={"email": email, "password": PASSWORD})
    enrol = call("POST", "/v1/me/mfa/enroll", t["access_token"])
    step = int(time.time()) // 30
    codes = call("POST", "/v1/me/mfa/confirm", t["access_token"], {"code": totp(enrol["secret_base32"], step)})
    challenge = call("POST", "/v1/auth/login", body={"email": email, "password": PASSWORD})
    # The confirmation used this step; the next one is inside the ±1 window and not a replay.
    t = call("POST", "/v1/auth/mfa/verify",
             body={"mfa_token": challenge["mfa_token"], "code": totp(enrol["secret_base32"], step + 1)})
    assert not t["password_change_required"] and not t["mfa_enrollment_required"], t
    # A second session (a recovery code for its second factor), for schemathesis to revoke.
    challenge = call("POST", "/v1/auth/login", body={"email": email, "password": PASSWORD})
    spare = call("POST", "/v1/auth/mfa/verify",
                 body={"mfa_token": challenge["mfa_token"], "code": codes["recovery_codes"][0]})
    return t["access_token"], spare["access_token"]


def session_id(token):
    """The id of the session a token names (GET /v1/me/sessions marks it `current`)."""
    return next(s["id"] for s in call("GET", "/v1/me/sessions", token)["sessions"] if s["current"])


def delivered_code(to):
    """The invite code as the patient receives it: the issuer's answer holds none, and without
    CUSTOS_SMTP_URL the server's outbox sender appends the message to CUSTOS_DATA_DIR/outbox.mbox."""
    path = os.path.join(os.environ["CUSTOS_DATA_DIR"], "outbox.mbox")
    for _ in range(200):
        recipient, code = None, None
        try:
            with open(path) as f:
                for line in f:
                    if line.startswith("To: "):
                        recipient = line[4:].strip()
                    elif line.startswith("Invite code: ") and recipient and to in recipient:
                        code = line[len("Invite code: "):].strip()
        except FileNotFoundError:
            pass
        if code:
            return code
        time.sleep(0.05)
    sys.exit(f"seed: no invite delivered to {to} in {path} within 10 s")


def patient_body(mrn, given):
    return {"mrn": mrn, "given_name": given, "family_name": "Checkperson", "birth_date": "1980-02-29",
            "sex": "female", "phone": "+1 555 0100", "email": f"{given.lower()}@mail.example",
            "address": "1 Main St"}


def main():
    admin, admin_spare = staff_sign_in(ADMIN_EMAIL, ADMIN_OTP)
    spares = {"admin": admin_spare}
    me = call("GET", "/v1/me", admin)
    tokens = {"admin": admin}
    users = {}
    for role in ("clinician", "auditor"):
        email = f"{role}@openapi-check.example"
        u = call("POST", "/v1/admin/users", admin, {"email": email, "role": role, "display_name": role.title()})
        users[role] = u["id"]
        tokens[role], spares[role] = staff_sign_in(email, u["one_time_password"])

    p1 = call("POST", "/v1/patients", admin, patient_body("OC-0001", "Ada"))["id"]
    p2 = call("POST", "/v1/patients", admin, patient_body("OC-0002", "Bea"))["id"]
    for p in (p1, p2):
        call("POST", f"/v1/patients/{p}/care-team", admin, {"clinician_id": users["clinician"]})
    call("POST", f"/v1/patients/{p1}/invite", admin)
    call("POST", "/v1/auth/register", body={"invite_code": delivered_code("ada@mail.example"), "birth_date": "1980-02-29",
                                           "email": "ada@portal.example", "password": PASSWORD},
         agent=PATIENT_AGENT)
    tokens["patient"], spares["patient"] = (
        call("POST", "/v1/auth/login", body={"email": "ada@portal.example", "password": PASSWORD},
             agent=PATIENT_AGENT)["access_token"]
        for _ in range(2)
    )

    c = tokens["clinician"]
    call("POST", f"/v1/patients/{p1}/allergies", c, {"substance": "penicillin", "severity": "severe"})
    med = call("POST", f"/v1/patients/{p1}/medications", c,
               {"name": "metformin", "dose": 500, "unit": "mg", "route": "oral", "frequency": "twice daily",
                "start_date": "2026-01-01"})
    call("POST", f"/v1/patients/{p1}/history", c, {"icd10_code": "E11.9", "diagnosed_on": "2025-06-01"})
    rx = call("POST", f"/v1/patients/{p1}/prescriptions", c,
              {"medication": "amoxicillin", "dose": "500 mg", "quantity": 30, "refills_allowed": 5})
    conv = call("POST", f"/v1/patients/{p1}/conversations", tokens["patient"],
                {"subject": "cough", "message": "since monday", "symptoms": []})
    call("POST", f"/v1/conversations/{conv['id']}/messages", c, {"body": "how is the cough today?"})
    att = call("POST", f"/v1/patients/{p1}/attachments?filename=scan.pdf", tokens["patient"],
               raw=b"%PDF-1.4 openapi check\n", ctype="application/pdf")
    print(json.dumps({
        "tokens": tokens,
        "sessions": {r: {"current": session_id(t), "spare": session_id(spares[r])} for r, t in tokens.items()},
        "org": me["org_id"], "patient": p1, "patient2": p2, "clinician": users["clinician"],
        "auditor": users["auditor"], "medication": med["id"], "prescription": rx["id"],
        "conversation": conv["id"], "attachment": att["id"],
    }))


main()
