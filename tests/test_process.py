"""End to end: collected items become stories with summaries, merged links and score parts.

The real local embedder runs here (no fake), with real Chroma on disk and real SQLite.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from storage.vectors import ModelMismatchError
from tests.conftest import ABSTRACT
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
        tracker.stories.forget_processing()
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


def test_switching_embedders_is_refused_with_the_fix(world, capsys, monkeypatch) -> None:
    main(["collect"])
    capsys.readouterr()
    settings = Settings.from_env()
    with open_tracker(settings) as tracker:
        from storage.vectors import ChromaVectorStore
        from tracker.embed import TrackerEmbeddingFunction

        with pytest.raises(ModelMismatchError, match="tracker process --reembed"):
            ChromaVectorStore(
                "openai:other-model",
                1536,
                TrackerEmbeddingFunction(tracker.embedder),
                path=settings.chroma_path,
            )


def test_summary_sentences_are_pooled_from_the_chunks_run_not_embedded_again(world, capsys) -> None:
    from tracker.embed import LocalMiniLM

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
        assert len(tracker.stories.pending_items()) == 4  # nothing marked done
        report = tracker.process()
        assert report.items == 4 and report.new_stories == 0 and report.updates == 0
        assert len(tracker.stories.stories()) == 3
        assert tracker.vectors.count() >= 4
        assert tracker.stories.pending_items() == []
