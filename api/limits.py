"""Request-body size limits, enforced while the body streams in (ASGI middleware): job
specs, hardware documents and estimates get ``max_spec_bytes``; trace uploads
(``POST /v1/traces``) get ``max_trace_bytes``. Over the limit: 413 with the limit."""

from __future__ import annotations

import json
from typing import Any

from api.errors import TooLarge
from api.settings import Settings

TRACE_UPLOAD = "/v1/traces"


class BodyLimit:
    def __init__(self, app: Any, settings: Settings) -> None:
        self.app, self.settings = app, settings

    def limit_for(self, path: str) -> int:
        if path.rstrip("/") == TRACE_UPLOAD:
            return self.settings.max_trace_bytes
        return self.settings.max_spec_bytes

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > limit:
                await _too_large(send, limit)
                return
        seen = 0
        started = False

        async def limited_receive() -> dict:
            nonlocal seen
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > limit:  # answered 413 by the app's ApiProblem handler
                    raise _BodyTooLarge(f"request body over this server's limit of {limit:,} bytes")
            return msg

        async def tracking_send(msg: dict) -> None:
            nonlocal started
            if msg["type"] == "http.response.start":
                started = True
            await send(msg)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _BodyTooLarge:
            if not started:
                await _too_large(send, limit)


class _BodyTooLarge(TooLarge):
    pass


async def _too_large(send: Any, limit: int) -> None:
    body = json.dumps(
        {"detail": f"request body over this server's limit of {limit:,} bytes"}
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": body})
