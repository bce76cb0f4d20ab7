"""Schemathesis hooks of `cargo xtask fuzz`, loaded through schemathesis.toml.

One custom check, `unauthenticated_request_rejected`: an operation whose
security requirement is a bearer token (`security: [{"bearer": []}]`) must
answer 401, with `WWW-Authenticate: Bearer`, to every request that does not
carry the valid token xtask got by logging in (no Authorization header, or a
generated, malformed or forged one).

Schemathesis's own `ignored_auth` check only probes an operation once it has
answered 2xx with the token, so a route that ignores authentication but
answers 404 or 403 for the fuzzer's ids (`DELETE /api/users/{id}`, say) would
slip through it; xtask's second pass sends no valid token at all, and this
check judges every one of its responses.
"""

import os

import schemathesis
from schemathesis.core.parameters import ParameterLocation

# The valid token, as xtask passes it to schemathesis (-H) in the first pass.
VALID_AUTHORIZATION = (
    f"Bearer {os.environ['NATSAUTH_FUZZ_TOKEN']}" if os.environ.get("NATSAUTH_FUZZ_TOKEN") else None
)


def _requirements(case):
    """The operation's security requirements (its own, else the document's)."""
    raw = case.operation.definition.raw
    if "security" in raw:
        return raw["security"] or []
    return case.operation.schema.raw_schema.get("security") or []


@schemathesis.check
def unauthenticated_request_rejected(ctx, response, case):
    """A route that requires a bearer token answers 401 without a valid one."""
    requirements = _requirements(case)
    # Public, or the token is optional (an empty requirement `{}` is listed).
    if not requirements or any(not requirement for requirement in requirements):
        return None
    # The coverage phase also sends methods the route does not have (TRACE,
    # …): no operation is reached, and 405 is the right answer.
    if response.request.method.upper() != case.operation.method.upper():
        return None
    sent = response.request.headers.get("Authorization")
    if VALID_AUTHORIZATION is not None and sent == VALID_AUTHORIZATION:
        return None
    status = response.status_code
    # An invalid path parameter may not reach the route at all (the same
    # exemption `ignored_auth` makes); a 4xx is all that is asked of it.
    if case.meta is not None and case.meta.is_negative_at(ParameterLocation.PATH) and 400 <= status < 500:
        return None
    how = "without an Authorization header" if sent is None else "with an invalid bearer token"
    if status != 401:
        raise AssertionError(
            f"{case.operation.label} requires a bearer token but answered {status} to a request {how} "
            "(expected 401)"
        )
    challenge = " ".join(response.headers.get("www-authenticate", []))
    if not challenge.lower().startswith("bearer"):
        raise AssertionError(
            f"{case.operation.label} answered 401 {how} without `WWW-Authenticate: Bearer` "
            f"(got {challenge!r})"
        )
    return None
