"""Who is calling. Every read, list and delete is scoped to this identity."""

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from branet_gateway.settings import GatewaySettings


@dataclass(frozen=True)
class User:
    id: str


def current_user(request: Request) -> User:
    settings: GatewaySettings = request.state.settings
    # AUTH_MODE=none: the embedded default, one local user. Firebase ID tokens come later.
    return User(id=settings.local_user)


CurrentUser = Annotated[User, Depends(current_user)]
