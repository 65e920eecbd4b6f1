"""HTTP-facing errors: each carries its status and a message a user can act on."""

from __future__ import annotations

from codesign.errors import CodesignError


class ApiProblem(CodesignError):
    """An error answered with ``status`` and ``{"detail": message}``."""

    status = 400

    def __init__(self, detail: str, status: int | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        if status is not None:
            self.status = status


class Unauthorized(ApiProblem):
    status = 401


class Forbidden(ApiProblem):
    status = 403


class Missing(ApiProblem):
    status = 404


class Conflict(ApiProblem):
    status = 409


class TooLarge(ApiProblem):
    status = 413


class Invalid(ApiProblem):
    """A request the server understood but cannot accept (answered in FastAPI's 422 shape)."""

    status = 422

    def __init__(self, detail: str, loc: tuple[str | int, ...] = ("body",)) -> None:
        super().__init__(detail)
        self.loc = loc


class TooMany(ApiProblem):
    status = 429
