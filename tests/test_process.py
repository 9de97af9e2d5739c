"""End to end: collected items become stories with summaries, merged links and score parts.

The real local embedder runs here (no fake), with real Chroma on disk and real SQLite.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from storage.vectors import ModelMismatchError
from tests.conftest import ABSTRACT
from tests.openai_server import OpenAIServer, Reply
from tests.test_arxiv import page
from tracker.app import open_tracker
from tracker.cli import main
from tracker.settings import Settings


def test_collect_then_stories_gives_ranked_stories_with_summaries_and_merged_links(
    world, capsys
) -> None:
    assert main(["collect"]) == 0
    capsys.readouterr()
    assert main(["stories", "--json"]) == 0
    stories = json.loads(capsys.readouterr().out)
    by_title = {s["title"]: s for s in stories}
    decoding = by_title["Faster Decoding with Draft Models"]
    # The blog post links the paper's versioned pdf: one story, two sources, both links.
    assert sorted(decoding["sources"]) == ["blog", "papers"]
    assert decoding["kind"] == "paper"  # the paper's title and link, though the post came first
    assert "https://arxiv.org/abs/2411.01234" in decoding["links"]
    assert any("/posts/decoding" in link for link in decoding["links"])
    assert "Faster Folding with Graph Models" in by_title  # a similar title is another story
    release = next(s for s in stories if s["kind"] == "release")
    assert release["summary"].startswith("Breaking:") and "--legacy-cache" in release["summary"]
    for story in stories:
        assert story["summary"] and story["id"] and story["first_seen"]
        assert story["score"] == pytest.approx(sum(story["score_parts"].values()), abs=1e-3)
    assert stories[0]["title"] == "Faster Decoding with Draft Models"  # on interest, two sources
    assert len(stories) == 3


def test_processing_again_embeds_nothing_and_changes_nothing(world, capsys) -> None:
    main(["collect"])
    capsys.readouterr()
    assert main(["process", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["items"] == 0
    # Forcing everything through again reuses every cached embedding.
    settings = Settings.from_env()
    with open_tracker(settings) as tracker:
        tracker.queue.forget_processing()
        report = tracker.process()
        assert report.items == 4 and report.chunks_embedded == 0 and report.chunks >= 4
        assert report.new_stories == 0 and report.updates == 0
        assert not any(s.updated for s in tracker.stories.stories())
        assert len(tracker.stories.stories()) == 3


def test_a_new_paper_version_from_another_source_marks_the_story_updated(
    world, capsys, write_sources, monkeypatch
) -> None:
    main(["collect"])
    v2 = page(
        [
            {
                "id": "2411.01234",
                "version": 2,
                "day": 20,
                "title": "Faster Decoding with Draft Models",
                "abstract": ABSTRACT + " Version two adds results on 70B models.",
            }
        ]
    )
    world.add("/api/query2", v2, content_type="application/atom+xml")
    config = Settings.from_env().sources_path.read_text()
    config += f'  - {{name: more-papers, kind: arxiv, query: "cat:cs.LG", url: "{world.url("/api/query2")}", sort_by: relevance}}\n'
    monkeypatch.setenv("TRACKER_SOURCES", str(write_sources(config)))
    assert main(["collect", "--source", "more-papers"]) == 0
    capsys.readouterr()
    main(["stories", "--json"])
    decoding = next(
        s for s in json.loads(capsys.readouterr().out) if s["title"].startswith("Faster Decoding")
    )
    assert decoding["updated"] is True and decoding["update_note"] == "new version v2 of the paper"
    assert sorted(decoding["sources"]) == ["blog", "more-papers", "papers"]


def test_stories_since_filters_by_age(world, capsys) -> None:
    main(["collect"])
    capsys.readouterr()
    settings = Settings.from_env()
    from tracker.config import load_config

    with open_tracker(settings) as tracker:
        config = load_config(settings.sources_path)
        later = datetime.now(UTC) + timedelta(days=3)
        assert tracker.ranked(config, since=timedelta(days=1), now=later) == []
        assert len(tracker.ranked(config, since=timedelta(days=7), now=later)) == 3


def test_stories_since_counts_from_when_the_news_happened_not_when_it_was_collected(
    server, write_sources, monkeypatch, capsys
) -> None:
    import email.utils

    def item(title: str, age: timedelta) -> str:
        when = email.utils.format_datetime(datetime.now(UTC) - age, usegmt=True)
        return (
            f"<item><title>{title}</title><link>https://blog.example/{title[:3]}</link>"
            f"<pubDate>{when}</pubDate><description>{title}, in a few words for its "
            "readers.</description></item>"
        )

    feed = "".join((item("Old news from two weeks ago", timedelta(days=14)),
                    item("Fresh news from this morning", timedelta(hours=2))))  # fmt: skip
    url = server.add(
        "/blog.xml", f"<rss version='2.0'><channel><title>b</title>{feed}</channel></rss>"
    )
    line = f'  - {{name: blog, kind: feed, url: "{url}", full_text: never}}'
    monkeypatch.setenv("TRACKER_SOURCES", str(write_sources(f"sources:\n{line}\n")))
    assert main(["collect"]) == 0
    capsys.readouterr()

    assert main(["stories", "--since", "1d", "--json"]) == 0
    titles = [s["title"] for s in json.loads(capsys.readouterr().out)]
    assert titles == ["Fresh news from this morning"]
    assert main(["stories", "--since", "30d", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 2


def test_switching_embedders_is_refused_with_the_fix(world, capsys, monkeypatch) -> None:
    main(["collect"])
    capsys.readouterr()
    settings = Settings.from_env()
    with open_tracker(settings) as tracker:
        from storage.vectors import ChromaVectorStore
        from tracker.understand.embedding_function import TrackerEmbeddingFunction

        with pytest.raises(ModelMismatchError, match="tracker process --reembed"):
            ChromaVectorStore(
                "openai:other-model",
                1536,
                TrackerEmbeddingFunction(tracker.embedder),
                path=settings.chroma_path,
            )


def test_summary_sentences_are_pooled_from_the_chunks_run_not_embedded_again(world, capsys) -> None:
    from tracker.understand.embed import LocalMiniLM

    class Counting(LocalMiniLM):
        def __init__(self) -> None:
            super().__init__()
            self.separately: list[str] = []

        def embed(self, texts):
            self.separately.extend(texts)
            return super().embed(texts)

    main(["collect", "--no-process"])
    with open_tracker(Settings.from_env()) as tracker:
        counting = Counting()
        tracker.__dict__["embedder"] = counting
        report = tracker.process()
    assert report.summaries >= 3 and report.chunks_embedded >= 4
    # Only the release notes' lines (weighed apart from prose) may be embedded on their own.
    assert all(
        "Removed" in t or "prefix caching" in t.lower() or "v1.0.0" in t
        for t in counting.separately
    )


def test_a_crash_before_the_chunks_are_stored_loses_nothing_and_doubles_nothing(
    world, capsys
) -> None:
    main(["collect", "--no-process"])
    settings = Settings.from_env()
    with open_tracker(settings) as tracker:
        store = tracker.vectors

        def power_cut(records):
            raise KeyboardInterrupt

        original = store.replace_items
        store.replace_items = power_cut  # type: ignore[method-assign]
        with pytest.raises(KeyboardInterrupt):
            tracker.process()
        store.replace_items = original  # type: ignore[method-assign]
        assert len(tracker.queue.pending_items()) == 4  # nothing marked done
        report = tracker.process()
        assert report.items == 4 and report.new_stories == 0 and report.updates == 0
        assert len(tracker.stories.stories()) == 3
        assert tracker.vectors.count() >= 4
        assert tracker.queue.pending_items() == []


def test_a_failing_llm_is_tried_once_per_story_and_then_backs_off(
    world, monkeypatch, capsys, openai_server: OpenAIServer
) -> None:
    openai_server.fail = Reply(400, {"error": {"message": "model not loaded"}})
    monkeypatch.setenv("OPENAI_BASE_URL", openai_server.base_url)
    monkeypatch.setenv("TRACKER_SUMMARY_MODEL", "tiny")
    calls = openai_server.requests
    main(["collect", "--no-process"])
    with open_tracker(Settings.from_env()) as tracker:
        report = tracker.process()
        stories = tracker.stories.stories()
        assert all(s.summary and s.summary_method == "extractive" for s in stories)
        assert len(calls) <= len(stories) + 1  # once per story (a promoted one twice)
        assert report.summary_fallbacks
        before = len(calls)
        tracker.process()  # straight away: the retries are not due yet
        assert len(calls) == before
        assert not tracker.queue.has_work()


def releases(*tags_and_days: tuple[str, int], notes: str = "Faster prefix caching.") -> str:
    entries = "".join(
        f"""<entry><id>tag:github.com,2008:Repository/1/{tag}</id>
        <updated>2026-11-{day:02d}T10:00:00Z</updated>
        <link rel="alternate" type="text/html" href="https://github.com/acme/tool/releases/tag/{
            tag
        }"/>
        <title>{tag}</title><content type="html">{
            notes
            if tag != "v2.0.0"
            else "&lt;h2&gt;Breaking changes&lt;/h2&gt;&lt;ul&gt;&lt;li&gt;Removed the --legacy flag.&lt;/li&gt;&lt;/ul&gt;"
        }</content></entry>"""
        for tag, day in tags_and_days
    )
    return f'<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><title>r</title>{entries}</feed>'


def process_at(tracker, when):
    return tracker.process(now=lambda: when)


def follow_tool_releases(server, write_sources, monkeypatch) -> Settings:
    """sources.yaml following acme/tool's releases at /r.atom on the test server."""
    line = f'  - {{name: tool, kind: github_releases, repo: acme/tool, url: "{server.url("/r.atom")}"}}'
    monkeypatch.setenv("TRACKER_SOURCES", str(write_sources(f"sources:\n{line}\n")))
    return Settings.from_env()


def test_a_new_release_updates_the_story_which_then_names_and_summarises_it(
    server, write_sources, monkeypatch
) -> None:
    settings = follow_tool_releases(server, write_sources, monkeypatch)
    server.add("/r.atom", releases(("v1.0.0", 1)))
    main(["collect", "--no-process"])
    with open_tracker(settings) as tracker:
        process_at(tracker, datetime(2026, 11, 1, tzinfo=UTC))
    server.add("/r.atom", releases(("v2.0.0", 5), ("v1.0.0", 1)))
    main(["collect", "--no-process"])
    with open_tracker(settings) as tracker:
        process_at(tracker, datetime(2026, 11, 5, tzinfo=UTC))
        (story,) = tracker.stories.stories()
    assert story.updated and story.update_note == "new release v2.0.0"
    assert story.url.endswith("/tag/v2.0.0") and "v2.0.0" in story.title
    assert story.summary is not None and "--legacy" in story.summary


def test_two_releases_arriving_in_one_run_are_one_story_and_no_update(
    server, write_sources, monkeypatch
) -> None:
    settings = follow_tool_releases(server, write_sources, monkeypatch)
    server.add("/r.atom", releases(("v2.0.0", 5), ("v1.0.0", 1)))
    main(["collect", "--no-process"])
    with open_tracker(settings) as tracker:
        report = process_at(tracker, datetime(2026, 11, 5, tzinfo=UTC))
        (story,) = tracker.stories.stories()
    assert report.updates == 0 and report.new_stories == 1
    assert not story.updated and story.update_note is None
    assert "v2.0.0" in story.title


def test_releases_after_a_long_gap_start_a_new_line_that_later_releases_join(
    server, write_sources, monkeypatch
) -> None:
    settings = follow_tool_releases(server, write_sources, monkeypatch)
    shown = []
    for tag, day in (("v1.0.0", 1), ("v1.1.0", 31), ("v1.2.0", 36)):
        shown.insert(0, (tag, day % 28 + 1))
        server.add("/r.atom", releases(*shown))
        main(["collect", "--no-process"])
        with open_tracker(settings) as tracker:
            process_at(tracker, datetime(2026, 10, 1, tzinfo=UTC) + timedelta(days=day))
    with open_tracker(settings) as tracker:
        stories = tracker.stories.stories()
    assert len(stories) == 2
    assert sorted(len(s.members) for s in stories) == [1, 2]


def test_reembedding_with_another_model_replaces_the_story_vectors_too(world, capsys) -> None:
    import numpy as np

    class Tiny:
        name = "test:tiny-64"
        dimensions = 64

        def embed(self, texts):
            rows = np.zeros((len(texts), 64), dtype=np.float32)
            for i, text in enumerate(texts):
                for word in text.lower().split():
                    rows[i, hash(word) % 64] += 1.0
            return rows / np.clip(np.linalg.norm(rows, axis=1, keepdims=True), 1e-9, None)

    main(["collect"])
    capsys.readouterr()
    settings = Settings.from_env()
    from tracker.config import load_config

    with open_tracker(settings) as tracker:
        tracker.__dict__["embedder"] = Tiny()
        report = tracker.process(reembed=True)
        assert report.items == 4 and report.updates == 0
        vectors = tracker.stories.vectors([s.id for s in tracker.stories.stories()], Tiny.name)
        assert len(vectors) == 3 and all(v.shape == (64,) for v in vectors.values())
        ranked = tracker.ranked(load_config(settings.sources_path))
        assert len(ranked) == 3 and ranked[0].parts["interest"] > 0


def test_an_article_page_that_arrives_a_run_late_is_not_news_of_an_update(
    server, write_sources, monkeypatch
) -> None:
    from tests.conftest import DATA
    from tracker.collect import collect
    from tracker.config import load_config

    server.add("/p/post", "oops", status=500, content_type="text/html")
    server.add(
        "/teaser.xml",
        f"""<rss version="2.0"><channel><title>t</title><item><title>Agents, evaluated</title>
        <link>{server.url("/p/post")}</link><guid>a1</guid>
        <description>Evaluating LLM agents is harder than it looks. Read more…</description>
        </item></channel></rss>""",
    )
    path = write_sources(
        f'sources:\n  - {{name: blog, kind: feed, url: "{server.url("/teaser.xml")}"}}\n'
    )
    monkeypatch.setenv("TRACKER_SOURCES", str(path))
    settings = Settings.from_env()
    config = load_config(path)
    first = datetime(2026, 11, 24, 8, tzinfo=UTC)
    later = first + timedelta(hours=2)  # the page's backoff (1 h) has run out
    with open_tracker(settings) as tracker:
        collect(config, settings, tracker.state, now=lambda: first)
        process_at(tracker, first)
    server.add("/p/post", (DATA / "article.html").read_bytes(), content_type="text/html")
    with open_tracker(settings) as tracker:
        (result,) = collect(config, settings, tracker.state, now=lambda: later)
        report = process_at(tracker, later)
        (story,) = tracker.stories.stories()
    assert result.pages_fetched == 1 and result.updated == 0  # its page came: not an edit
    assert report.updates == 0 and not story.updated and story.update_note is None
