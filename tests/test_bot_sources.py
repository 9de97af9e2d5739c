"""/sources: anyone sees the list with each source's health; only Manage Server changes it,
and the tracker's refusals are shown as they are."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import discord

from bot.cogs.sources import health_line
from bot.replies import NEEDS_MANAGE_SERVER
from tests.bot_standins import FakeInteraction, FakeServices, admin, invoke, started_bot
from tests.conftest import FeedServer, blog_feed
from tests.test_serve import MONDAY, Clock, runtime_for
from tracker.collect.sources.feed import FeedSource
from tracker.config import load_config
from tracker.runtime.local_services import LocalServices
from tracker.services import SourceChange, SourceHealth
from tracker.settings import Settings

T = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
UNIX = int(T.timestamp())


def run(services: FakeServices, interaction: FakeInteraction, command: str, **options: Any) -> None:
    async def go() -> None:
        bot = await started_bot(services)
        cog = bot.get_cog("SourcesCog")
        await invoke(getattr(cog, command), interaction, bot.tree, **options)

    asyncio.run(go())


def followed() -> list[SourceHealth]:
    return [
        SourceHealth("papers", "arxiv", True, "cat:cs.CL", last_success=T),
        SourceHealth(
            "blog_*x*",
            "feed",
            True,
            "https://example.org/feed.xml",
            last_success=T,
            last_error="503 Service Unavailable from @everyone",
            last_error_at=T,
            consecutive_failures=3,
            backing_off=True,
            retry_after=T,
        ),
        SourceHealth("old", "feed", False, "https://example.org/old.xml"),
    ]


def test_list_shows_each_source_with_its_health_privately():
    services, interaction = FakeServices(followed=followed()), FakeInteraction()
    run(services, interaction, "list_sources")

    assert interaction.first == ("defer", {"ephemeral": True, "thinking": True})
    (sent,) = interaction.sent
    assert sent.ephemeral
    assert sent.content.splitlines() == [
        f"⚠️ **blog\\_\\*x\\*** (feed): last collected <t:{UNIX}:R>; failing (3 times, last "
        f"<t:{UNIX}:R>): 503 Service Unavailable from @\u200beveryone; backing off, next try <t:{UNIX}:R>",
        "⏸️ **old** (feed): paused",
        f"✅ **papers** (arxiv): last collected <t:{UNIX}:R>",
    ]


def test_a_source_never_collected_says_so():
    line = health_line(SourceHealth("new", "feed", True, "https://example.org/f"))
    assert line == "✅ **new** (feed): not collected yet"


def test_many_sources_are_packed_into_messages_that_fit():
    many = [
        SourceHealth(f"source-{n}", "feed", True, "u", last_error="x" * 300, consecutive_failures=1)
        for n in range(40)
    ]
    interaction = FakeInteraction()
    run(FakeServices(followed=many), interaction, "list_sources")
    assert len(interaction.sent) > 1
    assert all(len(t) <= 2000 for t in interaction.texts)
    assert sum(t.count("source-") for t in interaction.texts) == 40


def test_add_is_refused_without_manage_server():
    services = FakeServices()
    interaction = FakeInteraction(permissions=discord.Permissions(send_messages=True))
    run(services, interaction, "add", url="https://example.org/feed.xml", name=None)

    kind, sent = interaction.first
    assert (kind, sent["content"], sent["ephemeral"]) == ("send_message", NEEDS_MANAGE_SERVER, True)
    assert sent["allowed_mentions"].to_dict() == {"parse": []}
    assert services.called("add_source") == []


def test_remove_is_refused_without_manage_server_too():
    services = FakeServices(followed=followed())
    interaction = FakeInteraction()
    run(services, interaction, "remove", name="papers")
    assert interaction.texts == [NEEDS_MANAGE_SERVER]
    assert services.called("remove_source") == []


def test_add_with_manage_server_defers_privately_then_announces_the_change_in_the_channel():
    services, interaction = FakeServices(), FakeInteraction(permissions=admin())
    run(services, interaction, "add", url="https://example.org/feed.xml", name="blog")

    # Private: Discord shows the first follow-up as the deferral was, so a refusal would
    # be private too; the announcement is the second follow-up, in the open.
    assert interaction.first == ("defer", {"ephemeral": True, "thinking": True})
    assert services.called("add_source") == [("https://example.org/feed.xml", "blog")]
    change = (
        "Now following **blog** (feed): <https://example.org/feed.xml>\n“A Blog”, 12 entries now"
    )
    assert interaction.texts == [f"Done. {change}", f"{change}\n(by <@42>)"]
    assert [m.ephemeral for m in interaction.sent] == [True, False]


def test_remove_shows_the_trackers_refusal_as_it_is():
    services, interaction = FakeServices(followed=followed()), FakeInteraction(permissions=admin())
    run(services, interaction, "remove", name="nope")
    assert interaction.texts == ["No source is called “nope”; /sources list shows their names."]


def test_remove_autocompletes_the_followed_names():
    services = FakeServices(followed=followed())

    async def go() -> list[Any]:
        bot = await started_bot(services)
        return await bot.get_cog("SourcesCog").name_autocomplete(FakeInteraction(), "O")

    assert [c.value for c in asyncio.run(go())] == ["blog_*x*", "old"]


# --- the real services behind /sources add: the same path as `tracker sources add` ------------


def add_with_local_services(settings: Settings, url: str) -> SourceChange:
    runtime, _ = runtime_for(settings, Clock(MONDAY))
    services = LocalServices(runtime, is_public=lambda host: True)  # the test server is loopback

    async def go() -> SourceChange:
        try:
            return await services.add_source(url, None)
        finally:
            await runtime.stop()

    return asyncio.run(go())


def test_add_of_a_blogs_page_follows_its_feed_and_keeps_it_off_the_local_network(
    world: FeedServer, tracker_home: Path
) -> None:
    settings = Settings.from_env()
    feed = world.add("/more.xml", blog_feed(world).replace("Inference Notes", "More Notes"))
    page = world.add(
        "/more/",
        "<html><head><title>More Notes, a blog</title>"
        '<link rel="alternate" type="application/atom+xml" href="../more.xml"></head></html>',
        content_type="text/html",
    )

    change = add_with_local_services(settings, page)

    assert change == SourceChange(
        "more-notes-a-blog",
        "feed",
        feed,
        f"“More Notes”, 1 entry now; the feed that {page} links to; collecting it now",
    )
    added = load_config(settings.sources_path).source("more-notes-a-blog")
    assert isinstance(added, FeedSource) and added.public_only


def test_add_of_a_github_repository_follows_its_releases(
    world: FeedServer, tracker_home: Path
) -> None:
    settings = Settings.from_env()
    change = add_with_local_services(settings, "https://github.com/ollama/ollama")
    assert change == SourceChange("ollama", "github_releases", "ollama/ollama", "collecting it now")
    assert load_config(settings.sources_path).source("ollama").kind == "github_releases"
