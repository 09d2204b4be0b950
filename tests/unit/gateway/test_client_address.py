"""The client's address is what the trusted proxies appended, never what the client wrote."""

import pytest

from branet_gateway.client_address import client_from_forwarded_for


@pytest.mark.parametrize(
    ("values", "hops", "client"),
    [
        (["203.0.113.7"], 1, "203.0.113.7"),
        (["1.2.3.4, 203.0.113.7"], 1, "203.0.113.7"),  # the left entry is the client's own
        (["1.2.3.4", "203.0.113.7"], 1, "203.0.113.7"),  # several headers read as one list
        (["1.2.3.4, 203.0.113.7, 10.0.0.2"], 2, "203.0.113.7"),  # a load balancer, then Run
        (["2001:db8::1"], 1, "2001:db8::1"),
        ([], 1, None),  # not through the proxy: the socket's peer stands
        (["203.0.113.7"], 2, None),
        (["not-an-address"], 1, None),
        (["203.0.113.7"], 0, None),
    ],
)
def test_the_client_is_the_entry_the_outermost_trusted_proxy_appended(
    values: list[str], hops: int, client: str | None
) -> None:
    assert client_from_forwarded_for(values, hops) == client
