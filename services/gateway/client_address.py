"""The client's address, as the trusted proxies in front of the gateway saw it.

Each proxy appends the address it received the request from to `X-Forwarded-For`; everything
to the left of what our own proxies appended is whatever the client wrote, and can be forged.
So with N trusted hops (Cloud Run's front end is one), the client is the Nth entry from the
right, never the leftmost. With 0 hops the socket's peer is the client.
"""

import ipaddress

from starlette.types import ASGIApp, Receive, Scope, Send


def client_from_forwarded_for(values: list[str], hops: int) -> str | None:
    """The address the outermost of `hops` trusted proxies appended; None if the request did
    not come through that many (then it did not come through them at all)."""
    entries = [entry.strip() for value in values for entry in value.split(",")]
    if hops < 1 or len(entries) < hops:
        return None
    candidate = entries[-hops]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return None


class ClientAddressMiddleware:
    def __init__(self, app: ASGIApp, hops: int) -> None:
        self.app = app
        self.hops = hops

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.hops:
            values = [v.decode("latin-1") for k, v in scope["headers"] if k == b"x-forwarded-for"]
            client = client_from_forwarded_for(values, self.hops)
            if client is not None:
                scope = {**scope, "client": (client, 0)}
        await self.app(scope, receive, send)
