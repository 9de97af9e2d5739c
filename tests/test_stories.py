"""Which story an item joins: exact keys first, recent near duplicates next."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np

from tracker.models import Candidate, Item, ItemKind
from tracker.understand.stories import Keys, assign, item_keys, update_note

NOW = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
WINDOW = timedelta(days=14)


def paper(arxiv_id: str, version: int = 1, source: str = "arxiv") -> Item:
    return Item(
        id=f"arxiv:{arxiv_id}",
        source=source,
        source_kind="arxiv",
        kind=ItemKind.PAPER,
        url=f"https://arxiv.org/abs/{arxiv_id}",
        title="A paper",
        extra={"arxiv_id": arxiv_id, "version": version},
    )


def post(url: str, text: str = "", links: list[str] | None = None) -> Item:
    return Item(
        id="post:1",
        source="blog",
        source_kind="feed",
        kind=ItemKind.POST,
        url=url,
        title="A post",
        text=text,
        extra={"links": links or []},
    )


def release(repo: str, tag: str) -> Item:
    return Item(
        id=f"release:{repo}@{tag}",
        source="gh",
        source_kind="github_releases",
        kind=ItemKind.RELEASE,
        url=f"https://github.com/{repo}/releases/tag/{tag}",
        title=f"{repo} {tag}",
        extra={"repo": repo, "tag": tag},
    )


def test_a_paper_is_known_by_its_version_less_arxiv_id() -> None:
    assert "arxiv:2104.12255" in item_keys(paper("2104.12255", version=2)).strong


def test_abs_pdf_html_and_versioned_links_all_name_the_same_paper() -> None:
    for link in (
        "https://arxiv.org/pdf/2104.12255v2",
        "http://arxiv.org/abs/2104.12255",
        "https://arxiv.org/html/2104.12255v1",
        "arXiv:2104.12255",
    ):
        assert (
            "arxiv:2104.12255"
            in item_keys(post("https://blog.example/p", text=f"See {link}.")).strong
        )
    linked = post("https://blog.example/p", links=["https://arxiv.org/pdf/2104.12255v3"])
    assert "arxiv:2104.12255" in item_keys(linked).strong


def test_a_round_up_linking_many_papers_is_not_any_one_of_them() -> None:
    links = [f"https://arxiv.org/abs/2401.0000{i}" for i in range(5)]
    keys = item_keys(post("https://blog.example/weekly", links=links)).strong
    assert not any(k.startswith("arxiv:") for k in keys)


def test_a_release_is_known_by_repo_and_tag_and_its_repo_is_a_weak_key() -> None:
    keys = item_keys(release("vllm-project/vllm", "v0.6.0"))
    assert "release:vllm-project/vllm@v0.6.0" in keys.strong
    assert keys.weak == {"repo:vllm-project/vllm"}
    announcement = post(
        "https://blog.example/vllm",
        links=["https://github.com/vllm-project/vllm/releases/tag/v0.6.0"],
    )
    assert "release:vllm-project/vllm@v0.6.0" in item_keys(announcement).strong


def test_strong_keys_join_whatever_the_age() -> None:
    index = {"arxiv:2104.12255": ("s1", NOW - timedelta(days=400))}
    match = assign(item_keys(paper("2104.12255", 2, source="other")), None, index, [], NOW, WINDOW)
    assert (match.story_id, match.reason) == ("s1", "key")


def test_a_new_release_of_the_same_tool_updates_a_recent_story_only() -> None:
    keys = item_keys(release("ollama/ollama", "v0.5.1"))
    recent = {"repo:ollama/ollama": ("s1", NOW - timedelta(days=3))}
    old = {"repo:ollama/ollama": ("s1", NOW - timedelta(days=30))}
    assert assign(keys, None, recent, [], NOW, WINDOW).reason == "update"
    assert assign(keys, None, old, [], NOW, WINDOW).reason == "new"


def test_near_duplicates_join_above_the_threshold_within_the_window() -> None:
    v = np.array([1.0, 0.0], dtype=np.float32)
    close = np.array([0.95, np.sqrt(1 - 0.95**2)], dtype=np.float32)
    far = np.array([0.5, np.sqrt(0.75)], dtype=np.float32)
    recent = [Candidate("near", close, NOW - timedelta(days=1)), Candidate("far", far, NOW)]
    match = assign(Keys(frozenset()), v, {}, recent, NOW, WINDOW, threshold=0.9)
    assert match.story_id == "near" and abs((match.similarity or 0) - 0.95) < 1e-5
    stale = [Candidate("near", close, NOW - timedelta(days=20))]
    assert assign(Keys(frozenset()), v, {}, stale, NOW, WINDOW, threshold=0.9).reason == "new"


def test_update_notes_say_what_changed() -> None:
    assert (
        update_note(paper("2104.12255", version=2), "key", previous_version=1)
        == "new version v2 of the paper"
    )
    assert update_note(paper("2104.12255", version=1), "key", previous_version=1) is None
    assert update_note(release("a/b", "v2"), "update", None) == "new release v2"


def test_two_different_papers_never_merge_on_similar_words() -> None:
    v = np.array([1.0, 0.0], dtype=np.float32)
    story = [Candidate("other-paper", v, NOW, frozenset({"arxiv:2401.00001"}))]
    match = assign(item_keys(paper("2401.99999")), v, {}, story, NOW, WINDOW, threshold=0.5)
    assert match.reason == "new"
    post_story = [Candidate("a-post", v, NOW, frozenset())]
    assert (
        assign(item_keys(paper("2401.99999")), v, {}, post_story, NOW, WINDOW, 0.5).story_id
        == "a-post"
    )


def namesake(author: str, year: int, url: str) -> Item:
    return Item(
        id=url,
        source="dblp",
        source_kind="feed",
        kind=ItemKind.PAPER,
        url=url,
        title="Learning to Rank: From Pairwise Approach to Listwise Approach",
        authors=(author,),
        published=datetime(year, 6, 1, tzinfo=UTC),
    )


def test_two_same_titled_papers_by_different_authors_stay_two_stories() -> None:
    first = namesake("Zhe Cao", 2007, "https://dblp.example/cao07")
    other = namesake("Maria Rossi", 2007, "https://dblp.example/rossi07")
    vector = np.ones(4) / 2  # identical embeddings: only their identity tells them apart
    story = Candidate("s1", vector, NOW, frozenset(item_keys(first).strong))
    match = assign(item_keys(other), vector, {}, [story], NOW, WINDOW)
    assert match.reason == "new"


def test_the_same_title_in_another_year_is_another_paper() -> None:
    first = namesake("Zhe Cao", 2007, "https://dblp.example/cao07")
    later = namesake("Cao, Zhe", 2012, "https://dblp.example/cao12")
    story = Candidate("s1", np.ones(4) / 2, NOW, frozenset(item_keys(first).strong))
    assert assign(item_keys(later), np.ones(4) / 2, {}, [story], NOW, WINDOW).reason == "new"


def test_one_paper_listed_twice_by_its_authors_name_is_one_story() -> None:
    first = namesake("Zhe Cao", 2007, "https://dblp.example/cao07")
    again = namesake("Cao, Z.", 2007, "https://acm.example/10.1145/1273496")
    key = next(k for k in item_keys(first).strong if k.startswith("paper:"))
    assert key in item_keys(again).strong


def test_the_merge_plan_says_what_joining_changes_and_why() -> None:
    from tracker.models import Match
    from tracker.understand.stories import edit_plan, plan

    by_key = Match("s1", "key", key="arxiv:2104.12255")
    onto_a_post = plan(paper("2104.12255", version=1), by_key, ItemKind.POST, None)
    assert onto_a_post.take_over and onto_a_post.update_note is None
    assert onto_a_post.why == "same arxiv:2104.12255"
    assert not plan(paper("2104.12255", version=1), by_key, ItemKind.PAPER, 1).take_over
    newer = plan(paper("2104.12255", version=2), by_key, ItemKind.PAPER, 1)
    assert not newer.take_over and newer.update_note == "new version v2 of the paper"
    next_release = plan(release("a/b", "v2"), Match("s2", "update", key="repo:a/b"), None, None)
    assert next_release.take_over and next_release.update_note == "new release v2"
    assert plan(paper("2104.12255"), Match(None, "new")).why == "new story"
    alike = Match("s3", "similar", similarity=0.9861)
    assert plan(paper("2104.12255"), alike, ItemKind.PAPER).why == "similar (0.986)"
    assert edit_plan(release("a/b", "v2"), "s2", changed=True).update_note == (
        "release notes edited"
    )
    assert edit_plan(release("a/b", "v2"), "s2", changed=False).update_note is None
