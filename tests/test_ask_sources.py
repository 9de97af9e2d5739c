"""What an answer cites and says beyond its excerpts: the member that says it, each sentence
once, and what was searched when nothing was found."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pytest

from tests.conftest import DATA, RECENT, FeedServer, blog_feed
from tracker.answer.ask import NOT_COVERED, Filters, nothing_found
from tracker.app import open_tracker
from tracker.cli import main
from tracker.models import byline
from tracker.settings import Settings


def collect_feeds(write_sources, monkeypatch, **urls: str) -> None:
    """Follow these feeds (name=url, their teasers as they are) and collect them once."""
    lines = "".join(
        f'  - {{name: {name}, kind: feed, url: "{url}", full_text: never}}\n'
        for name, url in urls.items()
    )
    monkeypatch.setenv("TRACKER_SOURCES", str(write_sources(f"sources:\n{lines}")))
    assert main(["collect"]) == 0


def ask(*argv: str) -> dict:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["ask", *argv, "--json"]) == 0
    return json.loads(out.getvalue())


@pytest.fixture
def releases(server: FeedServer, write_sources, monkeypatch) -> FeedServer:
    server.add("/releases.atom", (DATA / "releases.atom").read_bytes())
    path = write_sources(f"""
sources:
  - {{name: infer, kind: github_releases, repo: acme/infer, url: "{server.url("/releases.atom")}"}}
""")
    monkeypatch.setenv("TRACKER_SOURCES", str(path))
    assert main(["collect"]) == 0
    return server


def test_a_line_of_a_release_cites_that_release_not_the_newest(releases, capsys):
    answer = ask("Which flag was removed in infer 0.6.0?")

    assert answer["found"], answer["answer"]
    assert "Removed the legacy --max-tokens flag" in answer["answer"]
    first = answer["citations"][0]
    assert first["url"] == "https://github.com/acme/infer/releases/tag/v0.6.0"
    assert "0.6.0" in first["title"]
    # One story holds both releases, titled after the newest: said after the member.
    assert first["story_title"] is not None and "0.7.0rc1" in first["story_title"]

    capsys.readouterr()
    assert main(["ask", "Which flag was removed in infer 0.6.0?"]) == 0
    assert "/releases/tag/v0.6.0>" in capsys.readouterr().out


def test_a_post_carried_by_two_feeds_is_quoted_once(server: FeedServer, write_sources, monkeypatch):
    feed = blog_feed(server)
    blog = server.add("/blog.xml", feed)
    mirror = server.add("/mirror.xml", feed.replace("Inference Notes", "Inference Notes (mirror)"))
    collect_feeds(write_sources, monkeypatch, blog=blog, mirror=mirror)

    answer = ask("How much does speculative decoding with a small draft model speed up serving?")

    quoted = [line for line in answer["answer"].splitlines() if line.startswith("> ")]
    assert quoted, answer["answer"]
    assert len(quoted) == len(set(quoted)), quoted


def test_a_source_that_does_not_exist_is_named_not_called_not_covered(releases):
    answer = ask("Which flag was removed in infer 0.6.0?", "--source", "nosuch")
    assert not answer["found"]
    assert answer["answer"] == "No source is called 'nosuch'; the sources are: infer."


def test_a_filter_that_matches_nothing_says_so(releases):
    answer = ask("Which flag was removed in infer 0.6.0?", "--kind", "paper")
    assert not answer["found"]
    assert "Nothing collected is of kind paper" in answer["answer"]


def test_an_empty_home_says_nothing_is_collected_yet(
    tracker_home: Path, write_sources, monkeypatch
):
    monkeypatch.setenv("TRACKER_SOURCES", str(write_sources("sources: []\n")))
    answer = ask("What is new in LLM serving?")
    assert not answer["found"] and "Nothing is collected yet" in answer["answer"]


@pytest.mark.parametrize(
    ("filters", "known", "empty", "said"),
    [
        pytest.param(Filters(), ["blog"], True, "Nothing is collected yet", id="empty corpus"),
        pytest.param(Filters(), ["blog"], False, "not processed yet", id="nothing processed"),
        pytest.param(Filters(source="x"), ["blog"], False, "No source is called 'x'", id="source"),
        pytest.param(Filters(kind="release"), ["blog"], False, "of kind release", id="kind"),
        pytest.param(Filters(), ["blog"], False, NOT_COVERED, id="no filter: not covered"),
    ],
)
def test_why_nothing_was_found(filters, known, empty, said):
    unprocessed = said == "not processed yet"
    assert said in nothing_found(filters, known, empty, unprocessed).text


@pytest.mark.parametrize(
    ("text", "title", "kind", "sentences"),
    [
        pytest.param(
            "Breaking changes\nRemoved the legacy --max-tokens flag; use --max-new-tokens\nFixes",
            "infer 0.6.0",
            "release",
            ["Removed the legacy --max-tokens flag; use --max-new-tokens"],
            id="a release note's line is a statement without a full stop",
        ),
        pytest.param(
            "Breaking changes\nRemoved the legacy --max-tokens flag; use --max-new-tokens\nFixes",
            "infer 0.6.0",
            "post",
            [],
            id="the same lines in a post are headings and fragments",
        ),
        pytest.param(
            "Qwen3 72B at 4-bit on two 3090s: 38 tok/s",
            "Qwen3 72B at 4-bit on two 3090s: 38 tok/s",
            "post",
            ["Qwen3 72B at 4-bit on two 3090s: 38 tok/s"],
            id="a link shared with only its title says it in the title",
        ),
        pytest.param(
            "Qwen3 72B at 4-bit on two 3090s: 38 tok/s\n\nSetup: llama.cpp b4200.\nNumbers below.",
            "Qwen3 72B at 4-bit on two 3090s: 38 tok/s",
            "post",
            ["Qwen3 72B at 4-bit on two 3090s: 38 tok/s"],
            id="a thread whose text has nothing to quote says it in the title",
        ),
        pytest.param(
            "Setup: llama.cpp b4200.\nNumbers below.",
            "Qwen3 72B at 4-bit on two 3090s: 38 tok/s",
            "post",
            [],
            id="but not in a later chunk of it, which the title does not lead",
        ),
        pytest.param("", "Show HN: Tern", "post", [], id="a title of three words is not"),
    ],
)
def test_what_can_be_quoted_depends_on_the_kind_of_story(text, title, kind, sentences):
    from tracker.answer.quotable import sentences_of

    assert sentences_of(text, title, kind) == sentences


@pytest.fixture
def community(server: FeedServer, write_sources, monkeypatch) -> FeedServer:
    server.add("/r/LocalLLaMA/top.json", (DATA / "reddit_top.json").read_bytes())
    server.add("/feed.json", (DATA / "feed.json").read_bytes(), content_type="application/json")
    server.add("/releases.atom", (DATA / "releases.atom").read_bytes())
    path = write_sources(f"""
sources:
  - {{name: localllama, kind: reddit, subreddit: LocalLLaMA, url: "{server.url("/r/LocalLLaMA/top.json")}"}}
  - {{name: tools, kind: feed, url: "{server.url("/feed.json")}", full_text: never}}
  - {{name: infer, kind: github_releases, repo: acme/infer, url: "{server.url("/releases.atom")}"}}
""")
    monkeypatch.setenv("TRACKER_SOURCES", str(path))
    assert main(["collect"]) == 0
    return server


def test_a_plain_question_a_post_answers_is_answered_and_cites_the_post(community):
    answer = ask("What causes most agent failures in production?")
    assert answer["found"], answer["answer"]
    assert "schema failures" in answer["answer"]
    assert answer["citations"][0]["title"] == "Tool use without tears"


def test_a_question_a_threads_title_answers_is_answered_and_cites_the_thread(community):
    # The thread's text ("Setup: llama.cpp b4200, draft model 0.5B. Numbers below.") has no
    # sentence to quote: its title says it. ("How many tokens per second ...?" is still
    # refused: nothing tells "tokens per second" and "tok/s" are the same words.)
    answer = ask("How fast does Qwen3 72B run on two 3090s?")
    assert answer["found"], answer["answer"]
    assert "38 tok/s" in answer["answer"]
    assert answer["citations"][0]["title"].startswith("Qwen3 72B at 4-bit on two 3090s")


def test_a_question_about_a_news_post_is_answered(server: FeedServer, write_sources, monkeypatch):
    lab = server.add("/lab.rdf", (DATA / "rss1.rdf").read_bytes())
    tools = server.add(
        "/feed.json", (DATA / "feed.json").read_bytes(), content_type="application/json"
    )
    collect_feeds(write_sources, monkeypatch, lab=lab, tools=tools)

    answer = ask("What does the new lab measure?")

    assert answer["found"], answer["answer"]
    assert "measures how often models cite the sources" in answer["answer"]
    assert answer["citations"][0]["title"] == "New lab opens"


def _atom(title: str, author: str, posts: list[tuple[str, str, str]]) -> str:
    """An Atom feed whose author is named once, for the feed: its entries name nobody."""
    entries = "".join(
        f"<entry><id>{link}</id><title>{name}</title><link href='{link}'/>"
        f"<updated>{RECENT.isoformat()}</updated><content type='html'>{text}</content></entry>"
        for name, link, text in posts
    )
    return (
        "<?xml version='1.0'?><feed xmlns='http://www.w3.org/2005/Atom'>"
        f"<title>{title}</title><author><name>{author}</name></author>"
        f"<updated>{RECENT.isoformat()}</updated>{entries}</feed>"
    )


@pytest.fixture
def two_blogs(server: FeedServer, write_sources, monkeypatch) -> FeedServer:
    """Two blogs that both fine-tuned a reranker, each saying what batch size it used."""
    okafor = server.add(
        "/okafor.atom",
        _atom(
            "Notes from the Bench",
            "Mira Okafor",
            [
                (
                    "Small rerankers, small budgets",
                    "https://okafor.example/rerankers",
                    "We fine-tuned the reranker on a single laptop GPU with a batch size of 32 "
                    "and a learning rate of 2e-5 for three epochs. The whole run took an "
                    "afternoon and cost nothing beyond the electricity.",
                ),
            ],
        ),
    )
    scale = server.add(
        "/scale.atom",
        _atom(
            "Scale Engineering",
            "Tomas Lindqvist",
            [
                (
                    "Reranker fine-tuning at scale",
                    "https://scale.example/rerankers",
                    "We fine-tuned our reranker on sixty-four GPUs with a batch size of 4096 "
                    "and a warm-up of a thousand steps. Large batches needed a higher learning "
                    "rate than the papers suggest.",
                ),
            ],
        ),
    )
    collect_feeds(write_sources, monkeypatch, okafor=okafor, scale=scale)
    return server


def test_a_question_naming_the_author_cites_that_authors_post(two_blogs):
    # Neither post names its author; the feed does, once, for all its entries.
    for question, link in (
        ("What batch size did Mira Okafor use to fine-tune the reranker?", "okafor.example"),
        ("What batch size did Tomas Lindqvist use to fine-tune the reranker?", "scale.example"),
    ):
        answer = ask(question)
        assert answer["found"], answer["answer"]
        assert link in answer["citations"][0]["url"], (question, answer["citations"])


def test_a_question_naming_the_blog_cites_that_blogs_post(two_blogs):
    answer = ask("Which batch size did the Notes from the Bench blog fine-tune its reranker with?")
    assert answer["found"], answer["answer"]
    assert "okafor.example" in answer["citations"][0]["url"], answer["citations"]


def test_every_chunk_says_who_publishes_it(two_blogs):
    with open_tracker(Settings.from_env()) as tracker:
        bylines = {str(r["url"]): r["byline"] for r in tracker.lexical().rows}
    assert bylines == {
        "https://okafor.example/rerankers": "Notes from the Bench; Mira Okafor",
        "https://scale.example/rerankers": "Scale Engineering; Tomas Lindqvist",
    }


@pytest.mark.parametrize(
    ("publishers", "authors", "said"),
    [
        (["Logits and Coffee"], ["logits"], "Logits and Coffee; logits"),
        (["acme/infer"], [], "acme/infer"),
        ([None, "Kagi Blog"], ["  Kagi  Blog "], "Kagi Blog"),
        ([], [], ""),
    ],
)
def test_a_byline_names_each_publisher_once(publishers, authors, said):
    assert byline(publishers, authors) == said
