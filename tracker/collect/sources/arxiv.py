"""Papers from the arXiv API, parsed by the ``arxiv`` package.

Requests go through tracker's own HTTP client rather than the package's, so
that timeouts, the size cap, the User-Agent and arXiv's rate guidance (one
request at a time, three seconds apart; see ``tracker.collect.http.DEFAULT_RULES``)
hold here as everywhere. The package parses the Atom responses into
``arxiv.Result``s, which ``paper_item`` normalises to version-less ids.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Literal
from urllib.parse import urlencode

import arxiv
import lxml.etree
from arxiv import _feed as arxiv_feed  # the package's parser; pinned to arxiv>=4,<5
from pydantic import Field, model_validator
from pydantic_core import PydanticCustomError

from tracker.collect.http import Response
from tracker.collect.sources.base import CollectContext
from tracker.config.kinds import SourceKind, SourceSettings
from tracker.errors import FetchError, HTTPStatusError, ParseError
from tracker.models import Fetched, Item, ItemKind, content_hash
from tracker.text import one_line, unwrap
from tracker.urls import split_arxiv_id


class ArxivSource(SourceSettings):
    """Papers from the arXiv API: a search query, a list of ids, or both."""

    kind: Literal["arxiv"]
    query: str = Field(default="", description="arXiv search query, e.g. cat:cs.CL AND abs:LLM")
    ids: list[str] = Field(default_factory=list, description="arXiv ids to follow.")
    max_results: int = Field(default=50, ge=1, le=2000, description="Results per run.")
    page_size: int = Field(default=100, ge=1, le=2000, description="Results per request.")
    sort_by: Literal["submitted", "updated", "relevance"] = Field(
        default="submitted", description="Order of results; newest submissions by default."
    )

    @model_validator(mode="after")
    def _needs_query_or_ids(self) -> ArxivSource:
        if not self.query.strip() and not self.ids:
            raise PydanticCustomError(
                "arxiv_query",
                "an arxiv source needs a query or ids",
                {"fix": "add for example  query: cat:cs.CL  or  ids: [2104.12255]"},
            )
        return self


API_URL = "https://export.arxiv.org/api/query"
_ATOM = "http://www.w3.org/2005/Atom"

_SORT = {
    "submitted": arxiv.SortCriterion.SubmittedDate,
    "updated": arxiv.SortCriterion.LastUpdatedDate,
    "relevance": arxiv.SortCriterion.Relevance,
}


def query_url(source: ArxivSource, start: int, page_size: int) -> str:
    """One page of the source's search, with parameters in the arxiv package's order."""
    args = {
        "search_query": source.query,
        "id_list": ",".join(source.ids),
        "sortBy": _SORT[source.sort_by].value,
        "sortOrder": arxiv.SortOrder.Descending.value,
        "start": str(start),
        "max_results": str(page_size),
    }
    return f"{source.url or API_URL}?{urlencode(args)}"


def parse_page(content: bytes, url: str) -> tuple[list[arxiv.Result], int]:
    """The results on one page and the total the query matches.

    arXiv reports a bad query as a feed with a single entry titled "Error";
    that becomes a ParseError carrying arXiv's own explanation.
    """
    explanation = _error_entry(content)
    if explanation is not None:
        raise ParseError(f"arXiv rejected the query: {explanation}")
    if not _is_atom_feed(content):
        # The package's parser recovers from anything, so an HTML maintenance page
        # or a proxy's error page would otherwise read as "no results".
        raise ParseError(f"{url} did not return an arXiv Atom feed (is the url right?)")
    feed = arxiv_feed.parse(content)
    if feed.malformed:
        raise ParseError(f"arXiv sent a response that is not valid Atom ({feed.error})")
    return feed.results, feed.header.total_results


def _is_atom_feed(content: bytes) -> bool:
    head = content[:4096]
    return b"<feed" in head and b"http://www.w3.org/2005/Atom" in head


def _error_entry(content: bytes) -> str | None:
    """The summary of arXiv's error entry, which the package's parser skips as incomplete."""
    if b"/api/errors" not in content:
        return None
    try:
        root = lxml.etree.fromstring(
            content, lxml.etree.XMLParser(resolve_entities=False, no_network=True)
        )
    except lxml.etree.XMLSyntaxError:
        return None
    for entry in root.iterfind(f"{{{_ATOM}}}entry"):
        if "/api/errors" in (entry.findtext(f"{{{_ATOM}}}id") or ""):
            return one_line(entry.findtext(f"{{{_ATOM}}}summary") or "unknown error")
    return None


def _api_error(response: Response) -> ParseError | None:
    """arXiv's explanation in the body of a 4xx, when it gives one."""
    try:
        parse_page(response.content, response.url)
    except ParseError as exc:
        return exc
    return None


def paper_item(source: ArxivSource, result: arxiv.Result) -> Item:
    paper_id, version = split_arxiv_id(result.entry_id)
    abstract = unwrap(result.summary)
    return Item(
        id=f"arxiv:{paper_id}",
        source=source.name,
        source_kind=source.kind,
        kind=ItemKind.PAPER,
        url=f"https://arxiv.org/abs/{paper_id}",
        title=" ".join(result.title.split()),  # plain text: "<think>" stays
        text=abstract,
        authors=tuple(a.name for a in result.authors),
        published=result.published,
        updated=result.updated,
        extra={
            "arxiv_id": paper_id,
            "version": version,
            "categories": list(result.categories),
            "primary_category": result.primary_category,
            "pdf_url": result.pdf_url,
            "comment": result.comment,
            "doi": result.doi,
            "journal_ref": result.journal_ref,
        },
        fingerprint=content_hash(
            paper_id, version, result.title, abstract, result.updated.isoformat()
        ),
    )


class ArxivCollector:
    """Collects one arXiv search (a query, a list of ids, or both)."""

    def collect(self, source: ArxivSource, ctx: CollectContext) -> Fetched:
        items: list[Item] = []
        seen: set[str] = set()
        page_size = min(source.page_size, source.max_results)
        start = 0
        while start < source.max_results:
            url = query_url(source, start, min(page_size, source.max_results - start))
            response = ctx.get(url, accept="application/atom+xml", error_body=True)
            if response.status >= 400:
                raise _api_error(response) or HTTPStatusError(
                    f"arXiv answered {response.status} for {url}", response.status
                )
            results, total = parse_page(response.content, response.url)
            if not results and start < total:
                # arXiv sometimes sends an empty page mid-way; the arxiv package retries
                # these. Fail the run (nothing is stored) so backoff tries again later.
                raise FetchError(
                    f"arXiv returned an empty page at result {start} of {total}; "
                    "will try again later"
                )
            page = [paper_item(source, r) for r in results]
            fresh = [i for i in page if ctx.known.get(i.id) != i.version_key]
            for item in page:
                if item.id not in seen:
                    seen.add(item.id)
                    items.append(item)
            start += len(results)
            if not results or start >= total:
                break
            if source.sort_by != "relevance" and not fresh:
                break  # newest first, and this whole page is already stored: the rest is too
        return Fetched(items=items)


KIND = SourceKind(
    name="arxiv",
    settings=ArxivSource,
    collector=ArxivCollector(),
    # arXiv announces once a day, and its API asks for restraint.
    endpoint=("query", "ids", "sort_by"),
    interval=timedelta(hours=6),
    example="query: cat:cs.CL",
)
