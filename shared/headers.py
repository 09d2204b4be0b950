"""The security headers of every answer, from the app (`SecurityHeadersMiddleware`) or from
the server itself (`DeadlineProtocol`'s 400s). Answers hold medical data: not cached."""

API_POLICY = "default-src 'none'; frame-ancestors 'none'"
# The offline Swagger UI: its own files plus FastAPI's inline bootstrap script.
DOCS_POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; "
    "style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'"
)
COMMON_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"strict-transport-security", b"max-age=63072000; includeSubDomains"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
)
# What an API answer carries besides: its policy, and no caching.
SECURITY_HEADERS = (
    *COMMON_HEADERS,
    (b"content-security-policy", API_POLICY.encode()),
    (b"cache-control", b"no-store"),
)
