#!/usr/bin/env python3
"""Mixed patient-data load for deploy/ha/failover-test (Python standard library only).

  load.py onboard BASE EMAIL OTP           -> prints an access token (password change, TOTP
                                              enrolment, sign-in with TOTP; waits for a fresh
                                              TOTP step where the server demands one)
  load.py run TOKEN SECONDS OUT BASE...    -> writes (POST /v1/patients) and reads
                                              (GET /v1/patients/{id}) round-robin over BASEs,
                                              one X-Request-Id per request; OUT gets one JSON
                                              line per request: id, kind, status, t_ms.
"""
import base64, hashlib, hmac, json, struct, sys, threading, time, urllib.error, urllib.request, uuid

NEW_PASSWORD = "failover drill correct horse battery"


def call(base, method, path, token=None, body=None, rid=None, timeout=10):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method)
    req.add_header("content-type", "application/json")
    if token:
        req.add_header("authorization", "Bearer " + token)
    if rid:
        req.add_header("x-request-id", rid)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            text = r.read().decode()
            return r.status, (json.loads(text) if text else None)
    except urllib.error.HTTPError as e:
        text = e.read().decode()
        try:
            return e.code, json.loads(text)
        except ValueError:
            return e.code, None
    except Exception:  # connection refused/reset, timeout: no answer
        return 0, None


def totp(secret_b32, step):
    key = base64.b32decode(secret_b32 + "=" * (-len(secret_b32) % 8))
    mac = hmac.new(key, struct.pack(">Q", step), hashlib.sha1).digest()
    o = mac[-1] & 0x0F
    return "%06d" % ((struct.unpack(">I", mac[o:o + 4])[0] & 0x7FFFFFFF) % 1000000)


def next_step(after):
    while int(time.time()) // 30 <= after:
        time.sleep(0.5)
    return int(time.time()) // 30


def onboard(base, email, otp):
    s, b = call(base, "POST", "/v1/auth/login", body={"email": email, "password": otp})
    assert s == 200, (s, b)
    t = b["access_token"]
    s, b = call(base, "POST", "/v1/me/password", t, {"current_password": otp, "new_password": NEW_PASSWORD})
    assert s == 204, (s, b)
    s, b = call(base, "POST", "/v1/me/mfa/enroll", t, {})
    assert s == 200, (s, b)
    secret = b["secret_base32"]
    step = int(time.time()) // 30
    s, b = call(base, "POST", "/v1/me/mfa/confirm", t, {"code": totp(secret, step)})
    assert s == 200, (s, b)
    call(base, "POST", "/v1/auth/logout", t, {})
    step = next_step(step)  # a code is accepted once: the sign-in needs the next step's
    s, b = call(base, "POST", "/v1/auth/login", body={"email": email, "password": NEW_PASSWORD})
    assert s == 200 and b.get("mfa_required"), (s, b)
    s, b = call(base, "POST", "/v1/auth/mfa/verify", body={"mfa_token": b["mfa_token"], "code": totp(secret, step)})
    assert s == 200, (s, b)
    return b["access_token"]


def run(token, seconds, out, bases, workers=4):
    lock = threading.Lock()
    stop = time.time() + seconds
    patients = []
    f = open(out, "w")

    def worker(n):
        i = 0
        while time.time() < stop:
            base = bases[(n + i) % len(bases)]
            rid = str(uuid.uuid4())
            t = int(time.time() * 1000)
            with lock:
                known = list(patients)
            if i % 2 == 0 or not known:
                kind = "write"
                mrn = "HA-" + rid[:13]
                s, b = call(base, "POST", "/v1/patients", token,
                            {"mrn": mrn, "given_name": "Ha", "family_name": "Load", "birth_date": "1970-01-01",
                             "sex": "other", "phone": "+1 555 0100", "email": "ha@load.example", "address": "1 Main St"},
                            rid)
                if s == 201:
                    with lock:
                        patients.append(b["id"])
            else:
                kind = "read"
                pid = known[(n * 7919 + i) % len(known)]
                s, _ = call(base, "GET", "/v1/patients/" + pid, token, rid=rid)
            with lock:
                f.write(json.dumps({"id": rid, "kind": kind, "status": s, "t_ms": t}) + "\n")
            i += 1
            if s == 0:
                time.sleep(0.05)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(workers)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    f.close()


if __name__ == "__main__":
    if sys.argv[1] == "onboard":
        print(onboard(sys.argv[2], sys.argv[3], sys.argv[4]))
    elif sys.argv[1] == "run":
        run(sys.argv[2], float(sys.argv[3]), sys.argv[4], sys.argv[5:])
    else:
        sys.exit(__doc__)
