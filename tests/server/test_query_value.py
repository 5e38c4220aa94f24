"""The status poll reads its task id as Starlette would, without building the whole query."""

from __future__ import annotations

import pytest
from starlette.datastructures import QueryParams

from happyhorse.server.routes_api import query_value

QUERIES = [
    "task_id=n92abc",
    "",
    "task_id=",
    "task_id",
    "other=1&task_id=n92x&z=2",
    "task_id=first&task_id=last",
    "task%5Fid=n92enc",
    "task_id=a%20b+c",
    "task_id=%E2%82%AC%ZZ",
    "task_id=%ff",
    "&&task_id=x&&",
    "task_id=a=b",
    "TASK_ID=upper",
]


@pytest.mark.parametrize("query", QUERIES)
def test_same_as_starlette(query: str) -> None:
    scope = {"query_string": query.encode("latin-1")}
    assert query_value(scope, "task_id") == QueryParams(query).get("task_id", "")
