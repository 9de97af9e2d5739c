"""The digest: what goes in, once, in sections; quiet days say so. Pure, with an injected clock."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from tracker.cli import main
from tracker.deliver.digest import PINNED, select
from tracker.deliver.render import to_json, to_markdown
from tracker.models import ItemKind, Sent, Story, StoryMember
from tracker.understand.rank import Ranked

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


def test_markdown_renders_a_source_name_harmless() -> None:
    x = story("x")
    member = replace(x.members[0], source="[click](http://evil) **now**")
    text = to_markdown(select(ranked(replace(x, members=(member,))), Sent(), DAY1, size=10))
    assert "\\[click\\](http://evil) \\*\\*now\\*\\*: [blog.example]" in text


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
    assert stories_of(sent) == stories_of(dry)
    assert main(["digest", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["quiet"] is True
    assert main(["digest", "--since", "7d", "--dry-run", "--format", "json"]) == 0
    again = json.loads(capsys.readouterr().out)  # a window is everything in it, sent or not
    assert stories_of(again) == stories_of(dry)


def test_a_digest_after_every_source_failed_says_so_not_a_quiet_day(
    world, capsys, monkeypatch, tmp_path
) -> None:
    assert main(["collect"]) == 0
    assert main(["digest", "--format", "json"]) == 0
    assert main(["digest", "--format", "json"]) == 0  # nothing new, sources fine: quiet
    capsys.readouterr()
    assert main(["digest"]) == 0
    assert "A quiet day" in capsys.readouterr().out

    offline = tmp_path / "offline.yaml"
    offline.write_text("sources:\n  - {name: gone, kind: feed, url: 'http://127.0.0.1:9/f'}\n")
    monkeypatch.setenv("TRACKER_SOURCES", str(offline))
    assert main(["collect"]) == 1
    capsys.readouterr()
    assert main(["digest"]) == 0
    said = capsys.readouterr().out
    assert "A quiet day" not in said
    assert "Could not reach any source since " in said and "tracker stats" in said


def stories_of(digest: dict) -> list[tuple[str, list[str]]]:
    """A digest's sections and their stories, in order, without the scores: a score's
    recency part decays with the real clock between two commands, which can move its
    fourth decimal (3.8831 and then 3.883) though nothing else changed."""
    return [(s["name"], [e["story_id"] for e in s["entries"]]) for s in digest["sections"]]


# --- the backlog stays out (real collect, SQLite, the local embedder; injected clock) ----


def test_a_story_is_in_a_digest_only_while_its_newest_item_is_recent() -> None:
    old = replace(
        story("old"), members=(replace(story("old").members[0], dated=DAY1 - timedelta(days=9)),)
    )
    new = replace(
        story("new"), members=(replace(story("new").members[0], dated=DAY1 - timedelta(hours=5)),)
    )
    undated = story("undated")  # backlog: no date of its own, from a source's first collect
    digest = select(ranked(old, new, undated), Sent(), DAY1, 10, max_age=timedelta(days=3))
    assert [e.story_id for e in digest.entries] == ["new"] and digest.left_out == 0


def posts_feed(posts: list[tuple[str, datetime | None, datetime | None]]) -> str:
    """An Atom feed of full posts: (title, published, updated)."""

    def date(tag: str, when: datetime | None) -> str:
        return f"<{tag}>{when.isoformat()}</{tag}>" if when else ""

    entries = "".join(
        f"<entry><id>urn:{title}</id><title>{title}</title>"
        f'<link href="https://blog.example/{title.replace(" ", "-")}"/>'
        f"{date('published', published)}{date('updated', updated)}"
        f"<content type='html'>&lt;p&gt;{title}: "
        + "a long, complete post about serving language models in production. " * 12
        + "&lt;/p&gt;</content></entry>"
        for title, published, updated in posts
    )
    return f'<feed xmlns="http://www.w3.org/2005/Atom"><title>b</title>{entries}</feed>'


def test_a_new_feed_with_two_years_of_posts_gives_a_first_digest_of_only_the_recent_ones(
    server, write_sources, monkeypatch
) -> None:
    from storage.outbox import DigestOutbox
    from tracker.app import open_tracker
    from tracker.collect import collect
    from tracker.config import load_config
    from tracker.settings import Settings

    backlog = [(f"Old post {m}", DAY1 - timedelta(days=30 * m), None) for m in range(1, 25)]
    recent = [("Fresh post", DAY1 - timedelta(hours=3), None)]
    undated = [("Undated post", None, None)]  # its date is unknown: on a first collect, backlog
    server.add("/b.atom", posts_feed(recent + backlog + undated))
    path = write_sources(f'sources:\n  - {{name: b, kind: feed, url: "{server.url("/b.atom")}"}}\n')
    monkeypatch.setenv("TRACKER_SOURCES", str(path))
    settings, config = Settings.from_env(), load_config(path)

    def day(when: datetime) -> list[str]:
        """Collect, process and send the digest at ``when``; the titles it held."""
        with open_tracker(settings) as t:
            collect(config, settings, t.state, now=lambda: when)
            t.process(now=lambda: when)
            digest = t.digest(config, when)
            outbox = DigestOutbox(t.state)
            ids = [e.story_id for e in digest.entries]
            for message in outbox.remaining(outbox.create(when, "test", [({}, ids)])):
                outbox.mark_sent(message, "sent", when)
            return [(e.title, e.update) for e in digest.entries]

    assert day(DAY1) == [("Fresh post", None)]
    with open_tracker(settings) as t:  # /why ranks among what the digest chooses from
        assert [r.story.title for r in t.digest_context(config, DAY1)] == ["Fresh post"]
    assert day(DAY1 + timedelta(days=1)) == []  # a quiet next day
    edited = [("Old post 12", DAY1 - timedelta(days=360), DAY1 + timedelta(days=2))]
    server.add(
        "/b.atom",
        posts_feed(recent + edited + backlog[:11] + backlog[12:] + undated).replace(
            "Old post 12: a long", "Old post 12, revised: a long"
        ),
    )
    assert day(DAY1 + timedelta(days=2, hours=1)) == [("Old post 12", None)]
    with open_tracker(settings) as t:
        assert t.state.count_items() == 26  # the backlog is stored (and searchable) all the same


def test_a_story_edited_without_a_new_date_is_news_again() -> None:
    sent_at = DAY1 - timedelta(days=5)
    edited = replace(
        story("e", seen=DAY1 - timedelta(hours=1)),
        members=(replace(story("e").members[0], dated=DAY1 - timedelta(days=6)),),
        updated=True,
        update_note="updated by its author",
    )
    digest = select(
        ranked(edited), Sent({"e": sent_at}, sent_at), DAY1, 10, max_age=timedelta(days=3)
    )
    assert [(e.story_id, e.update) for e in digest.entries] == [("e", "updated by its author")]


def test_a_headline_reply_of_bare_citations_falls_back_instead_of_failing() -> None:
    from tracker.deliver.headline import LLMHeadline, extractive_headline

    class Bare:
        def complete(self, system: str, user: str) -> str:
            return "Decoding got faster [1]. [1][2]"

    digest = select(ranked(story("a"), story("b")), Sent(), DAY1, 10)
    assert LLMHeadline(Bare())(digest) == extractive_headline(digest)


def test_a_future_date_is_no_fresher_than_when_the_item_last_changed() -> None:
    from storage.stories import _member_date

    row = {
        "published": (DAY1 + timedelta(days=300)).isoformat(),  # an event's date, say
        "updated": None,
        "first_seen": (DAY1 - timedelta(days=30)).isoformat(),
        "last_changed": (DAY1 - timedelta(days=30)).isoformat(),
        "backlog": 1,
    }
    assert _member_date(row) == DAY1 - timedelta(days=30)


def test_a_digest_printed_on_a_terminal_does_not_use_up_the_first_digest(settings) -> None:
    from storage.outbox import DigestOutbox
    from storage.state import SQLiteStateStore

    with SQLiteStateStore(settings.state_db) as state:
        outbox = DigestOutbox(state)
        assert outbox.none_made()
        outbox.create(DAY1, "terminal:markdown", [({}, ["a"])])
        assert outbox.none_made()
        outbox.create(DAY1, "files", [({}, ["a"])])
        assert not outbox.none_made()
