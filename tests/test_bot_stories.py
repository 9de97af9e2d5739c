"""/digest, /search, /why and "Why this story?": private answers, built from the tracker's
renderers, within Discord's limits, with scraped text unable to ping or format."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import discord

from tests.bot_standins import FakeInteraction, FakeServices, digest, entry, invoke, started_bot
from tracker.services import SearchHit, Why


def run(
    services: FakeServices, interaction: FakeInteraction, name: str, *args: Any, **options: Any
):
    async def go() -> Any:
        bot = await started_bot(services)
        cog = bot.get_cog("StoriesCog")
        command = cog.why_menu if name == "why_menu" else getattr(cog, name)
        await invoke(command, interaction, bot.tree, *args, **options)
        return cog

    return asyncio.run(go())


def test_digest_preview_is_private_and_sent_as_embeds():
    services, interaction = FakeServices(), FakeInteraction()
    run(services, interaction, "digest", since="2d")

    assert interaction.first == ("defer", {"ephemeral": True, "thinking": True})
    assert services.called("digest_preview") == [(timedelta(days=2), None)]
    assert interaction.sent and all(s.ephemeral for s in interaction.sent)
    embeds = [e for s in interaction.sent for e in s.kwargs["embeds"]]
    assert [e.title for e in embeds] == ["Story number 1", "Story number 2", "Story number 3"]
    assert all(isinstance(e, discord.Embed) for e in embeds)
    assert "AI engineering digest" in interaction.texts[0]
    assert all(s.kwargs["allowed_mentions"].to_dict() == {"parse": []} for s in interaction.sent)


def test_digest_previews_the_route_asked_for_and_offers_the_route_names():
    services = FakeServices(routes=("papers", "releases", "weekly"))
    interaction = FakeInteraction()
    run(services, interaction, "digest", route="releases")

    async def suggest() -> list[Any]:
        bot = await started_bot(services)
        return await bot.get_cog("StoriesCog").route_autocomplete(FakeInteraction(), "LE")

    assert services.called("digest_preview") == [(None, "releases")]
    assert [c.value for c in asyncio.run(suggest())] == ["releases"]


def test_a_long_digest_preview_respects_ten_embeds_per_message():
    services = FakeServices(preview=digest(*(entry(n) for n in range(1, 24))))
    interaction = FakeInteraction()
    run(services, interaction, "digest")
    counts = [len(s.kwargs["embeds"]) for s in interaction.sent]
    assert sum(counts) == 23 and max(counts) <= 10
    for sent in interaction.sent:
        size = sum(
            len(e.title or "") + len(e.description or "") + len(e.footer.text or "")
            for e in sent.kwargs["embeds"]
        )
        assert size <= 6000


def test_search_lists_stories_as_escaped_links_privately():
    services = FakeServices(
        hits=[
            SearchHit(
                "s1",
                "Faster *Decoding* for @everyone",
                "https://arxiv.org/abs/2411.01234",
                "paper",
                "Drafts <@123> checked.",
                ("arxiv",),
            ),
            SearchHit(
                "s2",
                "vLLM v1.0",
                "https://github.com/vllm-project/vllm/releases/tag/v1.0 (x)",
                "release",
            ),
        ]
    )
    interaction = FakeInteraction()
    run(services, interaction, "search", query="decoding")

    assert interaction.first == ("defer", {"ephemeral": True, "thinking": True})
    (sent,) = interaction.sent
    assert sent.ephemeral and sent.kwargs["suppress_embeds"] is True
    text = sent.content
    assert (
        "**1.** [Faster \\*Decoding\\* for @\u200beveryone](https://arxiv.org/abs/2411.01234) · paper · via arxiv"
        in text
    )
    assert "> Drafts <\u200b@123" in text
    assert "(https://github.com/vllm-project/vllm/releases/tag/v1.0%20%28x%29)" in text


def test_search_with_many_long_hits_stays_within_a_message():
    hits = [
        SearchHit(f"s{n}", "T" * 300 + f" {n}", f"https://example.org/{n}", "post", "word " * 400)
        for n in range(5)
    ]
    interaction = FakeInteraction()
    run(FakeServices(hits=hits), interaction, "search", query="t")
    assert all(len(t) <= 2000 for t in interaction.texts)
    assert sum(t.count("https://example.org/") for t in interaction.texts) == 5


def test_search_without_hits_says_so():
    interaction = FakeInteraction()
    run(FakeServices(), interaction, "search", query="quantum <@1>")
    assert interaction.texts == ["No stories match “quantum <\u200b@1\\>”."]
    assert interaction.sent[0].ephemeral


def test_why_shows_each_part_and_the_total_privately():
    services, interaction = FakeServices(), FakeInteraction()
    run(services, interaction, "why", story="s1")

    assert interaction.first == ("defer", {"ephemeral": True, "thinking": True})
    assert services.called("why") == [("s1",)]
    (sent,) = interaction.sent
    assert sent.ephemeral
    assert sent.content.splitlines() == [
        "**[Faster Decoding](https://arxiv.org/abs/2411.01234)**",
        "Ranked **3** of 40 stories now.",
        "• relevance: +0.500",
        "• recency: +0.200",
        "• source weight: +0.120",
        "= score **0.820**",
        "Feedback: 👍 2 · 👎 1",
    ]


def test_why_autocomplete_offers_recent_titles_by_story_id():
    services = FakeServices(choices=[("Faster Decoding " + "x" * 120, "s1"), ("Folding", "s2")])

    async def go() -> list[Any]:
        bot = await started_bot(services)
        cog = bot.get_cog("StoriesCog")
        return await cog.story_autocomplete(FakeInteraction(), "fast")

    choices = asyncio.run(go())
    assert [c.value for c in choices] == ["s1", "s2"]
    assert len(choices[0].name) <= 100 and choices[0].name.endswith("…")
    assert services.called("story_choices") == [("fast", 25)]


def test_why_autocomplete_offers_nothing_when_the_tracker_fails():
    async def go() -> list[Any]:
        bot = await started_bot(FakeServices(fail=RuntimeError("busy")))
        return await bot.get_cog("StoriesCog").story_autocomplete(FakeInteraction(), "x")

    assert asyncio.run(go()) == []


def test_why_this_story_menu_explains_a_digest_message():
    services = FakeServices()
    services.by_message[900] = [services.explained]
    interaction = FakeInteraction()
    run(services, interaction, "why_menu", discord.Object(900))

    assert interaction.first == ("defer", {"ephemeral": True, "thinking": True})
    assert services.called("why_message") == [(900,)]
    assert "= score **0.820**" in interaction.texts[0]
    assert interaction.sent[0].ephemeral


def test_why_this_story_menu_on_another_message_says_what_to_do():
    interaction = FakeInteraction()
    run(FakeServices(), interaction, "why_menu", discord.Object(901))
    assert "isn't a story of a digest" in interaction.texts[0]
    assert interaction.sent[0].ephemeral


def test_a_story_no_longer_ranked_says_so():
    why = Why("s9", "Old", "https://example.org/old", 0.1, {"recency": 0.1}, None, 0)
    interaction = FakeInteraction()
    run(FakeServices(explained=why), interaction, "why", story="old")
    assert "Not among the stories ranked now." in interaction.texts[0]


def test_why_shows_what_the_crowd_made_of_the_story():
    why = Why(
        "s1",
        "Faster Decoding",
        "https://example.org/d",
        1.9,
        {"interest": 0.8, "popularity": 0.95, "recency": 0.15},
        1,
        12,
        engagement="412 points and 132 comments on Hacker News; 87 upvotes on Hugging Face",
    )
    interaction = FakeInteraction()
    run(FakeServices(explained=why), interaction, "why", story="decoding")
    text = interaction.texts[0]
    assert "• popularity: +0.950" in text
    assert "Votes: 412 points and 132 comments on Hacker News; 87 upvotes on Hugging Face" in text
