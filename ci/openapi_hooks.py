"""schemathesis hooks for ci/openapi-check (loaded with SCHEMATHESIS_HOOKS=openapi_hooks).

The session the run's token names must outlive the run. The stateful phase follows
`GET /v1/me/sessions` into `DELETE /v1/me/sessions/{id}`, and would revoke it: such a request
goes to OPENAPI_CHECK_SPARE_SESSION instead, a second session of the same user that the seed
opened for this (ci/openapi_seed.py), so the revocation itself is still exercised. Nothing
else is changed.
"""

import os

import schemathesis

CURRENT = os.environ.get("OPENAPI_CHECK_CURRENT_SESSION", "")
SPARE = os.environ.get("OPENAPI_CHECK_SPARE_SESSION", "")


@schemathesis.hook
def before_call(context, case, **kwargs):
    if (
        CURRENT
        and case.method.upper() == "DELETE"
        and case.operation.path == "/v1/me/sessions/{id}"
        and str((case.path_parameters or {}).get("id", "")).lower() == CURRENT.lower()
    ):
        case.path_parameters["id"] = SPARE
