"""Feeds: every format parses to the same entries; teasers get their article; HTML is refused."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.conftest import DATA, FeedServer
from tracker.collect.http import HttpClient
from tracker.collect.sources.base import CollectContext
from tracker.collect.sources.entries import Entry
from tracker.collect.sources.feed import FeedCollector, FeedSource, is_teaser, item_id, parse_feed
from tracker.errors import ParseError
from tracker.models import ItemKind, Validators
from tracker.settings import Settings
from tracker.text import html_to_text, one_line


def parse(name: str, url: str = "https://feeds.example/feed") -> list[Entry]:
    return parse_feed((DATA / name).read_bytes(), url).entries


def test_rss2_entries_carry_content_authors_and_utc_dates() -> None:
    first, second = parse("rss2.xml")
    assert first.id == "inference-notes-42"
    assert first.title == "Speculative decoding in production"
    assert first.authors == ("Ada Lovelace",)
    assert first.published == datetime(2026, 11, 23, 8, 30, tzinfo=UTC)
    assert "draft model" in first.content
    assert second.id is None and second.published == datetime(2026, 11, 22, 8, 0, tzinfo=UTC)


def test_atom_resolves_relative_links_and_keeps_every_author() -> None:
    (entry,) = parse("atom.xml", "https://retrieval.example/feed.atom")
    assert entry.link == "https://retrieval.example/2026/11/hybrid-search"
    assert entry.authors == ("Grace Hopper", "Alan Turing")
    assert entry.published == datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


def test_an_atom_entry_without_an_author_is_the_feeds_authors() -> None:
    feed = b"""<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom">
      <title>research!rsc</title><author><name>Russ Cox</name></author>
      <entry><id>1</id><title>A Tour of Acme</title><link href="https://rsc.example/acme"/>
        <updated>2026-11-20T08:00:00Z</updated></entry>
      <entry><id>2</id><title>Guest post</title><link href="https://rsc.example/guest"/>
        <author><name>Rob Pike</name></author><updated>2026-11-21T08:00:00Z</updated></entry>
    </feed>"""
    own, guest = parse_feed(feed, "https://rsc.example/feed.atom").entries
    assert own.authors == ("Russ Cox",)  # RFC 4287, 4.2.1
    assert guest.authors == ("Rob Pike",)


def test_rss1_and_rss091_are_read() -> None:
    assert [e.title for e in parse("rss1.rdf")] == ["New lab opens"]
    (old,) = parse("rss091.xml")
    assert old.link == "https://old.example/still-here" and old.id is None


def test_json_feed_is_read_like_the_others() -> None:
    first, second = parse_feed(
        (DATA / "feed.json").read_bytes(), "https://agents.example/feed.json"
    ).entries
    assert first.title == "Tool use without tears" and first.authors == ("Linus Torvalds",)
    assert first.tags == ("agents", "tools")
    assert second.id == "7" and second.link == "https://agents.example/second"
    assert second.published == datetime(2026, 11, 17, 6, 0, tzinfo=UTC)


def test_a_malformed_feed_keeps_the_entries_it_can_salvage() -> None:
    parsed = parse_feed((DATA / "malformed.xml").read_bytes(), "https://broken.example/feed")
    assert [e.title for e in parsed.entries] == [
        "First salvageable entry",
        "Second salvageable entry",
    ]
    assert parsed.warnings and "kept the 2 entries" in parsed.warnings[0]
    # Where, in words: not the parser's "<unknown>:4:19".
    assert "(line 4, column 19: not well-formed (invalid token))" in parsed.warnings[0]


def test_an_html_page_is_refused_and_its_feed_is_pointed_out() -> None:
    with pytest.raises(ParseError) as caught:
        parse_feed(
            (DATA / "page.html").read_bytes(),
            "https://blog.example/",
            {"Content-Type": "text/html"},
        )
    assert "HTML page, not a feed" in str(caught.value)
    assert "https://blog.example/feed.xml" in str(caught.value)


def test_garbage_is_a_parse_error_not_a_crash() -> None:
    with pytest.raises(ParseError, match="not a readable feed"):
        parse_feed(b"\x00\x01 definitely not xml", "https://x.example/feed")
    with pytest.raises(ParseError, match="not a JSON Feed"):
        parse_feed(b'{"hello": "world"}', "https://x.example/feed.json")


def test_teasers_are_told_apart_from_full_posts() -> None:
    first, second = parse("rss2.xml")
    assert not is_teaser(first)  # has content:encoded
    assert not is_teaser(second)  # a long description is the post
    assert is_teaser(Entry(id="t", link="https://x", title="t", summary="Short. Read more…"))
    assert is_teaser(Entry(id="t", link="https://x", title="t", summary="Only a sentence."))


def test_item_ids_are_stable_and_prefer_the_guid() -> None:
    entry = Entry(id="guid-1", link="https://x.example/a", title="A")
    assert item_id(entry) == item_id(Entry(id="guid-1", link="https://x.example/moved", title="B"))
    no_guid = Entry(id=None, link="https://x.example/a?utm_source=feed", title="A")
    assert item_id(no_guid) == item_id(Entry(id=None, link="https://x.example/a", title="A"))


def collect_feed(settings: Settings, url: str, known=None, validators=None, **fields):
    source = FeedSource(name="blog", kind="feed", url=url, **fields)
    with HttpClient(settings) as http:
        ctx = CollectContext(http=http, validators=validators or Validators(), known=known or {})
        return FeedCollector().collect(source, ctx)


def test_collected_items_are_clean_text_with_canonical_urls(
    settings: Settings, server: FeedServer
) -> None:
    fetched = collect_feed(settings, server.add("/rss", (DATA / "rss2.xml").read_bytes()))
    first, second = fetched.items
    assert first.kind is ItemKind.POST and first.source == "blog"
    assert first.url == "https://inference.example/posts/speculative"
    assert "<p>" not in first.text and "alert(1)" not in first.text
    assert "\n\n" in first.text  # paragraphs survive
    assert second.title == "Quantization & you"
    assert fetched.validators.etag


def test_a_teaser_gets_the_linked_articles_main_text(
    settings: Settings, server: FeedServer
) -> None:
    server.add(
        "/articles/long.html", (DATA / "article.html").read_bytes(), content_type="text/html"
    )
    feed = (DATA / "teaser.xml").read_text().replace("http://SERVER", server.base)
    (item,) = collect_feed(settings, server.add("/teaser", feed)).items
    assert "ninety-one percent" in item.text
    assert "Cookie settings" not in item.text and "Subscribe" not in item.text
    assert item.extra["full_text"] is True
    assert item.authors == ("Barbara Liskov",)
    assert "Read more" in item.extra["teaser"]


def test_an_unchanged_teaser_does_not_fetch_its_page_again(
    settings: Settings, server: FeedServer
) -> None:
    server.add(
        "/articles/long.html", (DATA / "article.html").read_bytes(), content_type="text/html"
    )
    feed = (DATA / "teaser.xml").read_text().replace("http://SERVER", server.base)
    url = server.add("/teaser", feed)
    (item,) = collect_feed(settings, url).items
    collect_feed(settings, url, known={item.id: item.fingerprint})
    assert len(server.hits_for("/articles/long.html")) == 1


def test_a_missing_article_page_keeps_the_teaser_and_says_so(
    settings: Settings, server: FeedServer
) -> None:
    feed = (DATA / "teaser.xml").read_text().replace("http://SERVER", server.base)
    fetched = collect_feed(settings, server.add("/teaser", feed))
    (item,) = fetched.items
    assert item.text.startswith("Evaluating LLM agents") and item.extra["full_text"] is False
    assert any("404" in w for w in fetched.warnings)


def test_full_text_never_fetches_no_page(settings: Settings, server: FeedServer) -> None:
    feed = (DATA / "teaser.xml").read_text().replace("http://SERVER", server.base)
    collect_feed(settings, server.add("/teaser", feed), full_text="never")
    assert server.hits_for("/articles/long.html") == []


def test_a_304_returns_no_items_and_keeps_the_validators(
    settings: Settings, server: FeedServer
) -> None:
    url = server.add("/rss", (DATA / "rss2.xml").read_bytes())
    first = collect_feed(settings, url)
    second = collect_feed(settings, url, validators=first.validators)
    assert second.not_modified and second.items == []
    assert second.validators == first.validators


def test_a_guid_reused_for_another_post_keeps_both_posts(
    settings: Settings, server: FeedServer
) -> None:
    feed = """<rss version="2.0"><channel><title>t</title>
      <item><title>One</title><link>https://x.example/1</link><guid isPermaLink="false">same</guid></item>
      <item><title>Two</title><link>https://x.example/2</link><guid isPermaLink="false">same</guid></item>
      <item><title>One</title><link>https://x.example/1</link><guid isPermaLink="false">same</guid></item>
      <item><title>Three</title><link>https://x.example/1</link><guid isPermaLink="false">same</guid></item>
    </channel></rss>"""
    items = collect_feed(settings, server.add("/dup", feed), full_text="never").items
    assert [i.title for i in items] == ["One", "Two", "Three"]
    again = collect_feed(settings, server.add("/dup2", feed), full_text="never").items
    assert [i.id for i in again] == [i.id for i in items]


def test_plain_text_titles_and_json_text_keep_their_angle_brackets() -> None:
    rss = b"""<rss version="2.0"><channel><title>t</title><item><title>Hiding &lt;think&gt; tokens in R1</title>
      <link>https://x.example/1</link><description>Vec&lt;T&gt; and Box&lt;dyn Error&gt;</description></item>
      </channel></rss>"""
    (entry,) = parse_feed(rss, "https://x.example/feed").entries
    assert one_line(entry.title) == "Hiding <think> tokens in R1"
    jf = b'{"version": "https://jsonfeed.org/version/1.1", "title": "t", "items": [{"id": "1", "title": "a<b", "content_text": "Use a<b and c>d"}]}'
    (item,) = parse_feed(jf, "https://x.example/feed.json").entries
    assert one_line(item.title) == "a<b" and html_to_text(item.content) == "Use a<b and c>d"


def test_a_long_post_ending_in_an_ellipsis_is_not_a_teaser() -> None:
    body = "<p>" + "Real content sentence. " * 120 + "More soon...</p>"
    assert not is_teaser(Entry(id="x", link="https://x", title="t", content=body))


def teaser_feed(server: FeedServer) -> FeedSource:
    """Three teaser entries, each linking to an article page."""
    server.add("/page.html", (DATA / "article.html").read_bytes(), content_type="text/html")
    items = "".join(
        f"<item><title>T{i}</title><link>{server.url('/page.html')}?n={i}</link>"
        f"<guid>g{i}</guid><description>Teaser {i}. Read more…</description></item>"
        for i in range(3)
    )
    url = server.add(
        "/teasers", f'<rss version="2.0"><channel><title>t</title>{items}</channel></rss>'
    )
    return FeedSource(name="blog", kind="feed", url=url)


def test_pages_past_the_cap_wait_in_the_queue_and_the_feed_keeps_its_validators(
    settings: Settings, server: FeedServer
) -> None:
    source = teaser_feed(server)
    with HttpClient(settings) as http:
        first = FeedCollector().collect(source, CollectContext(http=http, max_pages=2))
    assert sum(i.extra["full_text"] for i in first.items) == 2
    assert first.validators != Validators()  # the next run may be a 304 all the same
    assert first.page_changes is not None
    (waiting,) = first.page_changes.upsert
    assert waiting.url.endswith("?n=2") and waiting.attempts == 0 and not waiting.gave_up


def test_a_stopping_run_fetches_no_more_pages_and_leaves_them_queued(
    settings: Settings, server: FeedServer
) -> None:
    source = teaser_feed(server)
    asked: list[bool] = []

    def stopping() -> bool:  # shutdown arrives once the first page is asked for
        asked.append(True)
        return len(asked) > 1

    with HttpClient(settings) as http:
        run = FeedCollector().collect(source, CollectContext(http=http, stopping=stopping))
    assert len(run.items) == 3  # every entry is kept, with its teaser
    assert sum(i.extra["full_text"] for i in run.items) == 1
    assert run.page_changes is not None
    assert sorted(t.url.rsplit("=", 1)[1] for t in run.page_changes.upsert) == ["1", "2"]
    assert len([h for h in server.hits if h.path.startswith("/page.html")]) == 1


def test_a_reused_guid_keeps_its_id_when_a_new_post_is_put_in_front(
    settings: Settings, server: FeedServer
) -> None:
    def feed(*titles: str) -> str:
        items = "".join(
            f'<item><title>{t}</title><link>https://x.example/p</link><guid isPermaLink="false">same</guid></item>'
            for t in titles
        )
        return f'<rss version="2.0"><channel><title>t</title>{items}</channel></rss>'

    (a,) = collect_feed(settings, server.add("/one", feed("A")), full_text="never").items
    later = collect_feed(
        settings, server.add("/two", feed("B", "A")), known={a.id: a.fingerprint}, full_text="never"
    ).items
    ids = {i.title: i.id for i in later}
    assert ids["A"] == a.id and ids["B"] != a.id


def test_a_malformed_link_in_one_entry_does_not_fail_the_feed(
    settings: Settings, server: FeedServer
) -> None:
    feed = f"""<rss version="2.0"><channel><title>t</title>
      <item><title>Bad</title><link>http://127.0.0.1:abc/post</link><guid>1</guid><description>Short.</description></item>
      <item><title>Good</title><link>{server.url("/missing")}</link><guid>2</guid><description>Short too.</description></item>
    </channel></rss>"""
    fetched = collect_feed(settings, server.add("/badlink", feed))
    assert [i.title for i in fetched.items] == ["Bad", "Good"]
    assert any("not a usable address" in w for w in fetched.warnings)


def test_a_public_feed_cannot_send_us_to_a_local_address(
    settings: Settings, server: FeedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tracker.collect.sources.article_pages as pages_module

    monkeypatch.setattr(
        pages_module, "is_public_host", lambda host: True
    )  # as if the feed were public
    server.add(
        "/articles/long.html", (DATA / "article.html").read_bytes(), content_type="text/html"
    )
    feed = (DATA / "teaser.xml").read_text().replace("http://SERVER", server.base)
    fetched = collect_feed(settings, server.add("/teaser", feed))
    assert fetched.items[0].extra["full_text"] is False
    assert any("private or local address" in w for w in fetched.warnings)
    assert server.hits_for("/articles/long.html") == []
