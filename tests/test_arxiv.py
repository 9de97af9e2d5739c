"""arXiv: version-less ids, revisions as updates, arXiv's own error messages, paging."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.conftest import FeedServer
from tracker.collect.http import HttpClient
from tracker.collect.sources.arxiv import ArxivCollector, ArxivSource, query_url
from tracker.collect.sources.base import CollectContext
from tracker.errors import FetchError, ParseError
from tracker.models import ItemKind
from tracker.settings import Settings

ENTRY = """
  <entry>
    <id>http://arxiv.org/abs/{id}v{version}</id>
    <updated>{updated}</updated>
    <published>{published}</published>
    <title>{title}</title>
    <summary>  {abstract}
    </summary>
    <author><name>Ada Lovelace</name></author>
    <author><name>Charles Babbage</name></author>
    <link href="http://arxiv.org/abs/{id}v{version}" rel="alternate" type="text/html"/>
    <link title="pdf" href="http://arxiv.org/pdf/{id}v{version}" rel="related" type="application/pdf"/>
    <arxiv:primary_category term="cs.CL"/>
    <category term="cs.CL"/>
    <category term="cs.LG"/>
  </entry>"""


def page(entries: list[dict], total: int | None = None, start: int = 0) -> str:
    defaults = {
        "version": 1,
        "day": 1,
        "abstract": "An abstract.",
        "published": "2026-11-01T10:00:00Z",
    }
    body = "".join(
        ENTRY.format(**{"updated": f"2026-11-{e.get('day', 1):02d}T10:00:00Z", **defaults, **e})
        for e in entries
    )
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xmlns:opensearch="http://a9.com/-/spec/opensearch/1.1/"
      xmlns:arxiv="http://arxiv.org/schemas/atom">
  <title>ArXiv Query</title>
  <id>http://arxiv.org/api/x</id>
  <updated>2026-11-24T00:00:00Z</updated>
  <opensearch:totalResults>{len(entries) if total is None else total}</opensearch:totalResults>
  <opensearch:startIndex>{start}</opensearch:startIndex>
  <opensearch:itemsPerPage>{len(entries)}</opensearch:itemsPerPage>{body}
</feed>"""


ERROR_PAGE = """<?xml version="1.0" encoding="UTF-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
  <id>https://arxiv.org/</id><title>arXiv Search Results</title><updated>2026-11-24T00:00:00Z</updated>
  <entry>
    <id>https://arxiv.org/api/errors#incorrect_id_format_for_nope</id>
    <title>Error</title><updated>2026-11-24T00:00:00Z</updated>
    <summary>incorrect id format for nope</summary>
    <author><name>arXiv api core</name></author>
  </entry>
</feed>"""


def source(server: FeedServer, **fields) -> ArxivSource:
    return ArxivSource(name="papers", kind="arxiv", url=server.url("/api/query"), **fields)


def run(settings: Settings, src: ArxivSource):
    with HttpClient(settings) as http:
        return ArxivCollector().collect(src, CollectContext(http=http))


def serve(
    server: FeedServer, src: ArxivSource, start: int, size: int, body: str, status: int = 200
) -> None:
    server.add(
        urlsplit(query_url(src, start, size))._replace(scheme="", netloc="").geturl(),
        body,
        status=status,
        content_type="application/atom+xml",
    )


def test_papers_get_version_less_ids_and_keep_the_version(
    settings: Settings, server: FeedServer
) -> None:
    src = source(server, query="cat:cs.CL", max_results=10)
    serve(
        server,
        src,
        0,
        10,
        page(
            [
                {
                    "id": "2104.12255",
                    "version": 2,
                    "title": "A\n   paper",
                    "abstract": "We  study\n things.",
                }
            ]
        ),
    )
    (item,) = run(settings, src).items
    assert item.id == "arxiv:2104.12255" and item.kind is ItemKind.PAPER
    assert item.url == "https://arxiv.org/abs/2104.12255"
    assert item.extra["version"] == 2 and item.extra["categories"] == ["cs.CL", "cs.LG"]
    assert item.extra["pdf_url"] == "http://arxiv.org/pdf/2104.12255v2"
    assert item.title == "A paper" and item.text == "We study things."
    assert item.authors == ("Ada Lovelace", "Charles Babbage")
    assert item.published == datetime(2026, 11, 1, 10, 0, tzinfo=UTC)


def test_a_new_version_changes_the_fingerprint_but_not_the_id(
    settings: Settings, server: FeedServer
) -> None:
    src = source(server, ids=["2104.12255"])
    serve(server, src, 0, 50, page([{"id": "2104.12255", "version": 1, "title": "T"}]))
    v1 = run(settings, src).items[0]
    serve(server, src, 0, 50, page([{"id": "2104.12255", "version": 2, "day": 9, "title": "T"}]))
    v2 = run(settings, src).items[0]
    assert v1.id == v2.id and v1.version_key != v2.version_key


def test_the_query_follows_the_arxiv_api_and_sorts_newest_first(server: FeedServer) -> None:
    src = source(server, query="cat:cs.CL AND abs:LLM", ids=["2104.12255", "1707.08567"])
    args = parse_qs(urlsplit(query_url(src, 20, 10)).query)
    assert args["search_query"] == ["cat:cs.CL AND abs:LLM"]
    assert args["id_list"] == ["2104.12255,1707.08567"]
    assert args["sortBy"] == ["submittedDate"] and args["sortOrder"] == ["descending"]
    assert (args["start"], args["max_results"]) == (["20"], ["10"])


def test_results_are_paged_until_max_results(settings: Settings, server: FeedServer) -> None:
    src = source(server, query="x", max_results=5, page_size=2)
    papers = [{"id": f"2401.0000{i}", "title": f"P{i}"} for i in range(6)]
    serve(server, src, 0, 2, page(papers[0:2], total=6))
    serve(server, src, 2, 2, page(papers[2:4], total=6, start=2))
    serve(server, src, 4, 1, page(papers[4:5], total=6, start=4))
    items = run(settings, src).items
    assert [i.id for i in items] == [f"arxiv:2401.0000{i}" for i in range(5)]


def test_arxivs_error_feed_becomes_a_clear_error_not_an_item(
    settings: Settings, server: FeedServer
) -> None:
    src = source(server, ids=["nope"])
    serve(server, src, 0, 50, ERROR_PAGE, status=400)
    with pytest.raises(ParseError, match="arXiv rejected the query: incorrect id format for nope"):
        run(settings, src)


def test_an_empty_result_is_not_an_error(settings: Settings, server: FeedServer) -> None:
    src = source(server, ids=["0000.0000"])
    serve(server, src, 0, 50, page([]))
    assert run(settings, src).items == []


def test_an_html_page_instead_of_the_api_is_an_error(
    settings: Settings, server: FeedServer
) -> None:
    src = source(server, ids=["2104.12255"])
    serve(server, src, 0, 50, "<html><body><h1>Service Unavailable</h1></body></html>")
    with pytest.raises(ParseError, match="did not return an arXiv Atom feed"):
        run(settings, src)


def test_an_empty_page_mid_way_is_a_transient_error(settings: Settings, server: FeedServer) -> None:
    src = source(server, query="x", max_results=4, page_size=2)
    serve(
        server,
        src,
        0,
        2,
        page([{"id": "2401.00001", "title": "P1"}, {"id": "2401.00002", "title": "P2"}], total=4),
    )
    serve(server, src, 2, 2, page([], total=4, start=2))
    with pytest.raises(FetchError, match="empty page at result 2 of 4"):
        run(settings, src)


def test_paging_stops_at_the_first_page_that_is_all_stored(
    settings: Settings, server: FeedServer
) -> None:
    src = source(server, query="x", max_results=6, page_size=2)
    papers = [{"id": f"2401.0000{i}", "title": f"P{i}"} for i in range(6)]
    for start in (0, 2, 4):
        serve(server, src, start, 2, page(papers[start : start + 2], total=6, start=start))
    first = run(settings, src)
    assert len(first.items) == 6
    known = {i.id: i.version_key for i in first.items}
    with HttpClient(settings) as http:
        again = ArxivCollector().collect(src, CollectContext(http=http, known=known))
    assert [i.id for i in again.items] == ["arxiv:2401.00000", "arxiv:2401.00001"]
