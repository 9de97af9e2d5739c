"""Community sources: Hugging Face Daily Papers, Hacker News and Reddit, and their votes.

The parse steps are pure and checked against response shapes written after each
API's public documentation (``tests/data``). The rest runs for real: the
collectors over loopback HTTP, SQLite, the embedding model and story merging.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from storage.state import SQLiteStateStore
from tests.conftest import DATA, RECENT, FeedServer
from tracker.app import open_tracker
from tracker.cli import main
from tracker.collect import collect
from tracker.collect.sources.base import count, implausible
from tracker.collect.sources.hackernews import HackerNewsSource, parse_hits, search_url, story_item
from tracker.collect.sources.hf_papers import parse_daily_papers
from tracker.collect.sources.reddit import RedditSource, listing_url, parse_listing, post_item
from tracker.collect.sources.shared_links import story_title
from tracker.config import load_config, parse_config
from tracker.errors import ConfigError, ParseError
from tracker.models import Engagement, ItemKind, Status, Story
from tracker.settings import Settings

# --- the parse steps (golden) -------------------------------------------------------------


def test_daily_papers_are_arxiv_papers_with_upvotes_and_comments():
    papers, warnings = parse_daily_papers((DATA / "hf_daily_papers.json").read_bytes(), "u")
    first, second = papers
    assert (first.arxiv_id, first.upvotes, first.comments) == ("2411.01234", 87, 4)
    assert first.authors == ("Ada Lovelace", "Alan Turing")  # a hidden author stays hidden
    assert first.published == datetime(2026, 11, 26, 17, 59, 41, tzinfo=UTC)
    assert first.summary.startswith("We present a method for speculative decoding in which")
    assert second.arxiv_id == "2411.09999"  # the paper, not its version
    assert second.title == "Long-Context Retrieval & Reranking at Scale"
    assert warnings == ["2 entries without a usable arXiv id or title skipped"]


def test_hacker_news_hits_become_the_articles_they_link():
    stories, warnings = parse_hits((DATA / "hn_search.json").read_bytes(), "u")
    assert [s.id for s in stories] == ["42424242", "42425555", "42426666"]
    assert warnings == ["1 deleted or unreadable stories skipped"]
    source = HackerNewsSource(name="hn", kind="hackernews", query="LLM", min_points=50)
    linked, ask, paper = (story_item(source, s) for s in stories)

    assert linked.url == "https://blog.example.com/posts/decoding"  # tracking params gone
    assert linked.extra["discussion"] == "https://news.ycombinator.com/item?id=42424242"
    assert linked.engagement == Engagement("hackernews", 412, 132)
    assert linked.published == datetime(2026, 11, 27, 9, 12, 31, tzinfo=UTC)
    assert ask.url == "https://news.ycombinator.com/item?id=42425555"  # an Ask HN is its thread
    assert "We run vLLM & llama.cpp." in ask.text
    assert paper.kind is ItemKind.PAPER and paper.extra["arxiv_id"] == "2411.05678"


def test_a_reddit_listing_skips_pinned_nsfw_and_removed_posts_and_says_so():
    posts, warnings = parse_listing((DATA / "reddit_top.json").read_bytes(), "u")
    assert [p.id for p in posts] == ["1h0b", "1h0c", "1h0f"]
    assert warnings == ["1 NSFW post skipped", "1 removed or deleted post skipped"]
    source = RedditSource(name="r", kind="reddit", subreddit="LocalLLaMA")
    own, link, _ = (post_item(source, p) for p in posts)

    assert own.url == "https://www.reddit.com/r/LocalLLaMA/comments/1h0b/qwen3_72b_at_4bit/"
    assert own.text.startswith("Setup: llama.cpp b4200")
    assert own.engagement == Engagement("reddit", 1210, 241)
    assert link.url == "https://arxiv.org/abs/2411.01234" and link.kind is ItemKind.PAPER
    assert link.extra["discussion"].endswith("/comments/1h0c/faster_decoding/")


@pytest.mark.parametrize(
    "permalink", ["https://evil.example/r/x/comments/1h0b/", "//evil.example/x", "javascript:x"]
)
def test_a_permalink_off_reddit_is_not_the_discussion_link(permalink: str):
    data = json.loads((DATA / "reddit_top.json").read_text(encoding="utf-8"))
    data["data"]["children"][1]["data"]["permalink"] = permalink
    posts, _ = parse_listing(json.dumps(data).encode(), "u")
    assert posts[0].discussion == "https://www.reddit.com/comments/1h0b/"


def test_the_request_urls_follow_the_source():
    hn = HackerNewsSource(name="hn", kind="hackernews", query="local LLM", min_points=100)
    assert search_url(hn) == (
        "https://hn.algolia.com/api/v1/search_by_date?tags=story&hitsPerPage=50"
        "&query=local+LLM&numericFilters=points%3E%3D100"
    )
    top = RedditSource(name="r", kind="reddit", subreddit="r/MachineLearning", period="week")
    assert listing_url(top) == (
        "https://www.reddit.com/r/MachineLearning/top.json?limit=25&raw_json=1&t=week"
    )
    hot = RedditSource(name="r", kind="reddit", subreddit="LocalLLaMA", sort="hot")
    assert listing_url(hot).endswith("/hot.json?limit=25&raw_json=1")


@pytest.mark.parametrize(
    ("body", "said"),
    [
        (b"<!DOCTYPE html><html><body>Blocked</body></html>", "answered with an HTML page"),
        (b'{"hits": [', "did not answer with valid JSON"),
        (b'{"message": "Invalid query"}', r"did not answer with search hits \(Invalid query\)"),
    ],
)
def test_what_is_not_an_answer_is_named(body: bytes, said: str):
    with pytest.raises(ParseError, match=said):
        parse_hits(body, "https://hn.example/search")


def test_a_source_needing_a_query_or_points_says_so():
    with pytest.raises(ConfigError, match="needs a query or min_points"):
        parse_config("sources:\n  - {name: hn, kind: hackernews}\n")
    with pytest.raises(ConfigError, match="is not a subreddit name"):
        parse_config("sources:\n  - {name: r, kind: reddit, subreddit: 'local llama'}\n")


# --- collected for real, merged into stories ------------------------------------------------


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def daily_papers(upvotes: int = 87) -> str:
    data = json.loads((DATA / "hf_daily_papers.json").read_text(encoding="utf-8"))
    data[0]["paper"]["upvotes"] = upvotes
    for entry in data:
        entry["publishedAt"] = iso(RECENT)
        entry.get("paper", {})["publishedAt"] = iso(RECENT)
    return json.dumps(data)


def hn_search(server: FeedServer) -> str:
    data = json.loads((DATA / "hn_search.json").read_text(encoding="utf-8"))
    data["hits"][0]["url"] = server.url("/posts/decoding") + "?utm_source=hn"
    for hit in data["hits"]:
        hit["created_at"] = iso(RECENT)
    return json.dumps(data)


def reddit_top() -> str:
    data = json.loads((DATA / "reddit_top.json").read_text(encoding="utf-8"))
    for child in data["data"]["children"]:
        child["data"]["created_utc"] = RECENT.timestamp()
    return json.dumps(data)


@pytest.fixture
def crowd(world: FeedServer) -> FeedServer:
    """The world's papers, blog and release, and the communities talking about them."""
    world.add("/api/daily_papers", daily_papers(), content_type="application/json")
    world.add("/api/v1/search_by_date", hn_search(world), content_type="application/json")
    world.add("/r/LocalLLaMA/top.json", reddit_top(), content_type="application/json")
    path = Settings.from_env().sources_path
    path.write_text(
        path.read_text(encoding="utf-8")
        + f"""
  - {{name: hf, kind: hf_papers, url: "{world.url("/api/daily_papers")}"}}
  - {{name: hn, kind: hackernews, query: LLM, url: "{world.url("/api/v1/search_by_date")}"}}
  - {{name: localllama, kind: reddit, subreddit: LocalLLaMA, url: "{world.url("/r/LocalLLaMA/top.json")}"}}
""",
        encoding="utf-8",
    )
    return world


def stories() -> list[Story]:
    with open_tracker(Settings.from_env()) as tracker:
        return tracker.stories.stories()


def the_story(title: str) -> Story:
    return next(s for s in stories() if s.title.startswith(title))


def test_the_crowd_joins_the_stories_it_talks_about(crowd: FeedServer, capsys):
    assert main(["collect"]) == 0
    decoding = the_story("Faster Decoding with Draft Models")

    # arXiv, its Daily Papers pick, the blog post, its HN thread and a Reddit thread: one story.
    assert set(decoding.sources) == {"papers", "hf", "blog", "hn", "localllama"}
    assert "https://huggingface.co/papers/2411.01234" in decoding.links
    assert "https://news.ycombinator.com/item?id=42424242" in decoding.links
    assert any(link.endswith("/comments/1h0c/faster_decoding/") for link in decoding.links)
    assert decoding.engagement == {
        "hf_papers": Engagement("hf_papers", 87, 4),
        "hackernews": Engagement("hackernews", 412, 132),
        "reddit": Engagement("reddit", 530, 64),
    }
    folding = the_story("Faster Folding with Graph Models")
    assert set(folding.sources) == {"papers", "hn"}  # HN linked its PDF

    capsys.readouterr()
    assert main(["stories", "--json"]) == 0
    ranked = {s["title"]: s for s in json.loads(capsys.readouterr().out)}
    parts = ranked["Faster Decoding with Draft Models"]["score_parts"]
    assert parts["popularity"] > 0.9  # a hit on HN and on Reddit
    assert ranked["infer v1.0.0"]["score_parts"]["popularity"] == 0.0
    joined = {
        m["source"]: m["joined"] for m in ranked["Faster Decoding with Draft Models"]["members"]
    }
    # Why each is in the story is kept: the key it shares, or how similar it was.
    assert joined["hf"] == "same arxiv:2411.01234"
    assert joined["hn"].startswith("same url:http://127.0.0.1:")
    assert ranked["Faster Decoding with Draft Models"]["engagement"]["hackernews"] == {
        "votes": 412,
        "comments": 132,
    }

    assert main(["digest", "--dry-run", "--format", "json"]) == 0
    entries = {
        e["title"]: e for s in json.loads(capsys.readouterr().out)["sections"] for e in s["entries"]
    }
    assert entries["Faster Decoding with Draft Models"]["engagement"] == (
        "530 upvotes and 64 comments on Reddit; 412 points and 132 comments on Hacker News; "
        "87 upvotes and 4 comments on Hugging Face"
    )


def test_new_votes_are_kept_without_making_the_story_updated(crowd: FeedServer):
    settings = Settings.from_env()
    config = load_config(settings.sources_path)
    with SQLiteStateStore(settings.state_db) as store:
        collect(config, settings, store, names=["papers", "hf"])
        crowd.add("/api/daily_papers", daily_papers(upvotes=140), content_type="application/json")
        (again,) = collect(config, settings, store, names=["hf"], force=True)
    with open_tracker(settings) as tracker:
        tracker.process()
    assert (again.status, again.new, again.updated, again.unchanged) == (Status.OK, 0, 0, 2)
    decoding = the_story("Faster Decoding with Draft Models")
    assert decoding.engagement["hf_papers"].votes == 140
    assert not decoding.updated


@pytest.mark.parametrize(
    ("route", "said"),
    [
        ({"body": "[]", "content_type": "application/json"}, None),
        (
            {"body": "slow down", "status": 429, "headers": {"Retry-After": "120"}},
            "429",
        ),
        ({"body": "[{", "content_type": "application/json"}, "did not answer with valid JSON"),
        ({"body": "<html><body>Sign in</body></html>", "content_type": "text/html"}, "HTML page"),
    ],
)
def test_a_bad_day_at_an_api_is_that_sources_result_never_a_crash(
    crowd: FeedServer, route: dict[str, Any], said: str | None
):
    crowd.add("/api/daily_papers", **route)
    settings = Settings.from_env()
    now = datetime.now(UTC)
    with SQLiteStateStore(settings.state_db) as store:
        results = {
            r.source: r for r in collect(load_config(settings.sources_path), settings, store)
        }
    hf = results["hf"]
    for other in (results["hn"], results["localllama"]):
        # Here every API is the one test server: a 429 with Retry-After holds back the host's
        # other sources that had not asked yet, and says so; any other bad day is hf's alone.
        held = route.get("status") == 429 and "asked us not to come back" in (other.error or "")
        assert other.status is Status.OK or held
    if said is None:  # an empty day is a quiet result, not a failure
        assert hf.status is Status.OK and hf.new == 0
        assert hf.warnings == ("Daily Papers listed no papers (a weekend or an early hour)",)
    else:
        assert hf.status is Status.ERROR and said in (hf.error or "")
    if route.get("status") == 429:  # the server's word on when to come back is kept
        assert hf.retry_after is not None and hf.retry_after >= now + timedelta(seconds=110)


# --- hostile numbers and a store that refuses one source's result ----------------------------


@pytest.mark.parametrize(
    ("value", "counted", "absurd"),
    [
        (412, 412, False),
        ("17", 17, False),
        (None, 0, False),
        (-3, 0, False),
        (10_000_000, 10_000_000, False),
        (10_000_001, 0, True),
        (2**63, 0, True),
        (1e300, 0, True),
        ("9" * 400, 0, True),
        (float("inf"), 0, False),
    ],
)
def test_a_count_past_any_real_one_is_counted_as_none(value, counted, absurd):
    assert count(value) == counted
    assert implausible(value) is absurd


def test_an_absurd_vote_count_is_dropped_with_a_note_and_the_run_goes_on(crowd, capsys):
    hn = json.loads(hn_search(crowd))
    hn["hits"][0]["points"] = 2**64
    crowd.add("/api/v1/search_by_date", json.dumps(hn), content_type="application/json")
    reddit = json.loads(reddit_top())
    reddit["data"]["children"][2]["data"]["score"] = 10**30
    crowd.add("/r/LocalLLaMA/top.json", json.dumps(reddit), content_type="application/json")
    crowd.add("/api/daily_papers", daily_papers(upvotes=2**63), content_type="application/json")

    assert main(["collect"]) == 0

    said = capsys.readouterr().out
    assert said.count("with a vote or comment count past 10,000,000: counted as none") == 3
    decoding = the_story("Faster Decoding with Draft Models")
    assert set(decoding.sources) == {"papers", "hf", "blog", "hn", "localllama"}
    assert decoding.engagement["hackernews"].votes == 0
    assert decoding.engagement["reddit"].votes == 0
    assert decoding.engagement["hf_papers"].votes == 0


@pytest.mark.parametrize("failing", ["papers", "blog", "infer", "hf", "hn", "localllama"])
def test_a_source_whose_result_cannot_be_stored_fails_alone(
    crowd, monkeypatch, capsys, failing: str
):
    save = SQLiteStateStore.save_success

    def refusing(self, source: str, *args, **kwargs):
        if source == failing:
            raise OverflowError("Python int too large to convert to SQLite INTEGER")
        return save(self, source, *args, **kwargs)

    monkeypatch.setattr(SQLiteStateStore, "save_success", refusing)

    assert main(["collect"]) == 1

    said = capsys.readouterr().out
    assert "Traceback" not in said
    assert "what it sent could not be stored (OverflowError" in said
    assert main(["stats", "--json"]) == 0
    rows = {s["name"]: s for s in json.loads(capsys.readouterr().out)["sources"]}
    assert "could not be stored" in rows[failing]["last_error"]
    assert rows[failing]["items"] == 0
    others = [name for name in rows if name != failing]
    assert others and all(
        rows[name]["items"] > 0 and not rows[name]["last_error"] for name in others
    )


@pytest.mark.parametrize(
    ("title", "named"),
    [
        ("Faster Decoding with Draft Models [pdf]", "Faster Decoding with Draft Models"),
        ("Attention Is All You Need (2017) [PDF]", "Attention Is All You Need (2017)"),
        ("A talk on decoding [video] [slides]", "A talk on decoding"),
        ("[pdf]", "[pdf]"),  # nothing left: kept as it is
        ("Why the (pdf) format lasts", "Why the (pdf) format lasts"),
    ],
)
def test_a_communitys_link_marks_are_not_part_of_the_story_title(title: str, named: str):
    assert story_title(title) == named
