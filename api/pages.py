"""Cursor pages of the API's lists.

A list endpoint returns one page of rows as its body and the URL of the next
page in a ``Link: <URL>; rel="next"`` header (RFC 8288), absent on the last
page. The cursor is Cassandra's paging state, signed for its list
(``sinks.cassandra_store.make_cursor``): a page ends exactly where the next
begins, rows that share a timestamp included.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Query, Request, Response

Cursor = Annotated[str | None, Query(max_length=4096, description="Where a page starts: the cursor of the previous "
                                                                  "page's Link header (rel=next)")]
PAGED = {200: {"headers": {"Link": {"description": 'The next page: <URL>; rel="next" (absent on the last page)',
                                    "schema": {"type": "string"}}}}}


def paged(request: Request, response: Response, rows: list, after: str | None) -> list:
    """A page's rows; the next page's URL in a Link header (RFC 8288), the
    same query with the cursor Cassandra gave for it."""
    if after is not None:
        response.headers["Link"] = f'<{request.url.include_query_params(cursor=after)}>; rel="next"'
    return rows
