"""No dashboard form reaches a route with a value the database cannot store.

PostgreSQL's text cannot hold a NUL character: a key name, webhook URL, grant note or e-mail with
one (``%00`` in a form body) made the insert or lookup a 500 in distributed mode. ``form_guard``
runs on every dashboard router, after ``csrf_guard``, and answers such a form 400 before a route
reads it. What counts as storable is ``contract.check_storable``'s call, the same as for API bodies.
"""

from __future__ import annotations

from fastapi import Request

from happyhorse.contract import check_storable
from happyhorse.errors import InvalidRequest

FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


class UnstorableForm(Exception):
    """A form field holds what no column can store: answered 400."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


async def form_guard(request: Request) -> None:
    """Router dependency: the text fields of a posted form are checked before the route runs."""
    if not request.headers.get("content-type", "").startswith(FORM_TYPES):
        return
    form = await request.form()  # Starlette caches the parsed form for the route
    try:
        check_storable([value for value in form.values() if isinstance(value, str)])
    except InvalidRequest as exc:
        raise UnstorableForm(exc.message.replace("request body", "the form")) from None
