"""The digest: what goes in, once, in sections; quiet days say so. Pure, with an injected clock."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from tracker.cli import main
from tracker.digest import PINNED, Sent, select
from tracker.models import ItemKind, Story, StoryMember
from tracker.rank import Ranked
from tracker.render import to_json, to_markdown

DAY1 = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)


def story(
    sid: str,
    kind: ItemKind = ItemKind.POST,
    seen: datetime = DAY1 - timedelta(hours=2),
    summary: str = "A summary.",
    url: str | None = None,
) -> Story:
    link = url or f"https://blog.example/{sid}"
    member = StoryMember("src", sid, link, sid, kind, seen)
    return Story(sid, kind, f"Story {sid}", link, seen, seen, seen, (member,), summary=summary)


def ranked(*stories: Story) -> list[Ranked]:
    return [Ranked(s, float(len(stories) - i), {}) for i, s in enumerate(stories)]


def test_stories_are_grouped_in_sections_best_first() -> None:
    digest = select(
        ranked(story("a"), story("p", ItemKind.PAPER), story("r", ItemKind.RELEASE)),
        Sent(),
        DAY1,
        size=10,
    )
    assert [s.name for s in digest.sections] == ["Papers", "Posts", "Releases"]
    assert [e.story_id for e in digest.entries] == ["p", "a", "r"]


def test_no_story_is_sent_twice_on_consecutive_days() -> None:
    first = select(ranked(story("a"), story("b")), Sent(), DAY1, size=10)
    sent = Sent({e.story_id: DAY1 for e in first.entries}, DAY1)
    later = story("c", seen=DAY1 + timedelta(hours=5))
    second = select(ranked(story("a"), story("b"), later), sent, DAY1 + timedelta(days=1), size=10)
    assert [e.story_id for e in second.entries] == ["c"]


def test_an_updated_story_comes_back_marked_as_an_update() -> None:
    sent = Sent({"a": DAY1}, DAY1)
    updated = replace(
        story("a"),
        updated=True,
        update_note="new version v2 of the paper",
        last_changed=DAY1 + timedelta(hours=3),
    )
    (entry,) = select(ranked(updated), sent, DAY1 + timedelta(days=1), size=10).entries
    assert entry.update == "new version v2 of the paper"


def test_a_quiet_day_says_so_instead_of_padding() -> None:
    sent = Sent({"a": DAY1}, DAY1)
    digest = select(ranked(story("a")), sent, DAY1 + timedelta(days=1), size=10)
    assert digest.quiet and digest.entries == []
    assert "quiet day" in to_markdown(digest)


def test_the_size_limit_keeps_the_best_and_counts_the_rest() -> None:
    digest = select(ranked(*[story(f"s{i}") for i in range(15)]), Sent(), DAY1, size=10)
    assert len(digest.entries) == 10 and digest.left_out == 5
    assert digest.entries[0].story_id == "s0"


def test_a_breaking_release_of_a_tool_in_the_stack_is_pinned_on_top() -> None:
    release = story(
        "vllm",
        ItemKind.RELEASE,
        summary="Breaking: removed the --foo flag.",
        url="https://github.com/vllm-project/vllm/releases/tag/v1",
    )
    other = story(
        "other",
        ItemKind.RELEASE,
        summary="Breaking: removed x.",
        url="https://github.com/acme/other/releases/tag/v1",
    )
    digest = select(
        ranked(story("a"), other, release), Sent(), DAY1, size=10, stack=["vllm-project/vllm"]
    )
    assert digest.sections[0].name == PINNED
    assert [e.story_id for e in digest.sections[0].entries] == ["vllm"]


def test_markdown_renders_scraped_text_harmless() -> None:
    nasty = replace(story("x"), title="**bold** [link](http://evil) # heading")
    text = to_markdown(select(ranked(nasty), Sent(), DAY1, size=10))
    assert "\\*\\*bold\\*\\* \\[link\\](http://evil) \\# heading" in text


def test_json_has_sections_with_entries() -> None:
    data = to_json(select(ranked(story("a")), Sent(), DAY1, size=10))
    (section,) = data["sections"]
    assert section["name"] == "Posts"
    entry = section["entries"][0]
    assert {"story_id", "title", "summary", "links", "update"} <= set(entry)


def test_tracker_digest_records_what_it_sent_and_a_rerun_is_quiet(world, capsys) -> None:
    assert main(["collect"]) == 0
    capsys.readouterr()
    assert main(["digest", "--dry-run", "--format", "json"]) == 0
    dry = json.loads(capsys.readouterr().out)
    assert sum(len(s["entries"]) for s in dry["sections"]) == 3
    assert main(["digest", "--format", "json"]) == 0
    sent = json.loads(capsys.readouterr().out)
    assert sent["sections"] == dry["sections"]
    assert main(["digest", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["quiet"] is True
    assert main(["digest", "--since", "7d", "--dry-run"]) == 0
    assert "quiet day" in capsys.readouterr().out  # all of it was sent already
