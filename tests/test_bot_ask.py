"""/ask: defer at once, answer in follow-ups of at most 2,000 characters with the sources as
links, never ping, and keep one person to a few questions per ten minutes."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from bot.cogs.ask import AskCog
from bot.ratelimit import SlidingWindow
from bot.replies import SOMETHING_WENT_WRONG
from tests.bot_standins import FakeInteraction, FakeServices, invoke, started_bot
from tracker.answer.ask import Answer, Citation
from tracker.errors import UserError


def ask(services: FakeServices, interaction: FakeInteraction, cog: AskCog | None = None, **options):
    async def run() -> None:
        bot = await started_bot(services)
        used = cog or bot.get_cog("AskCog")
        await invoke(used.ask, interaction, bot.tree, **{"since": None, "kind": None, **options})

    asyncio.run(run())


def test_ask_defers_first_then_answers_with_cited_links():
    services, interaction = FakeServices(), FakeInteraction()
    ask(services, interaction, question="How does speculative decoding work?")

    assert interaction.first == ("defer", {"ephemeral": False, "thinking": True})
    assert services.called("ask") == [("How does speculative decoding work?", None, None)]
    (answer,) = interaction.sent
    assert answer.via == "followup" and not answer.ephemeral
    assert answer.content.startswith("> How does speculative decoding work?\n")
    assert "Draft models propose tokens" in answer.content
    assert "[1] Faster Decoding [arxiv.org](https://arxiv.org/abs/2411.01234)" in answer.content


def test_since_and_kind_reach_the_services():
    services, interaction = FakeServices(), FakeInteraction()
    ask(services, interaction, question="What changed in vLLM?", since="7d", kind="release")
    assert services.called("ask") == [("What changed in vLLM?", timedelta(days=7), "release")]


def test_a_long_answer_is_split_into_follow_ups_that_each_fit():
    sentence = "Speculative decoding lets a small model draft tokens for a large one to check. "
    services = FakeServices(
        answer=Answer(
            text=sentence * 80,
            mode="llm",
            citations=tuple(
                Citation(n, f"Paper {n}", f"https://arxiv.org/abs/2411.0{n}", f"s{n}")
                for n in range(1, 6)
            ),
        )
    )
    interaction = FakeInteraction()
    ask(services, interaction, question="Explain speculative decoding at length")

    assert len(interaction.sent) >= 3
    assert all(len(t) <= 2000 for t in interaction.texts)
    assert all(s.via == "followup" for s in interaction.sent)
    assert "[5] Paper 5" in interaction.texts[-1]
    assert len(interaction.response.calls) == 1


def test_every_message_is_sent_with_mentions_off():
    services, interaction = FakeServices(), FakeInteraction()
    ask(services, interaction, question="Anything new?")
    for sent in interaction.sent:
        mentions = sent.kwargs["allowed_mentions"]
        assert mentions.to_dict() == {"parse": []}


def test_scraped_titles_that_look_like_pings_cannot_ping():
    services = FakeServices(
        answer=Answer(
            text="@everyone look: <@123> wrote it.",
            mode="extractive",
            citations=(Citation(1, "Hey @everyone and <@123>", "https://example.org/x", "s1"),),
        )
    )
    interaction = FakeInteraction()
    ask(services, interaction, question="Who pinged <@&99>?")
    text = interaction.texts[0]
    assert "@everyone" not in text and "<@123>" not in text and "<@&99>" not in text
    assert "@\u200beveryone" in text and "<\u200b@123" in text
    assert interaction.sent[0].kwargs["allowed_mentions"].to_dict() == {"parse": []}


def test_the_sixth_question_in_ten_minutes_is_refused_privately_without_deferring():
    now = [1_800_000_000.0]
    services = FakeServices()
    cog = AskCog(services, SlidingWindow(5, 600, clock=lambda: now[0]))
    for _ in range(5):
        ask(services, FakeInteraction(user_id=1), cog, question="Again?")
        now[0] += 30
    refused = FakeInteraction(user_id=1)
    ask(services, refused, cog, question="Again?")

    kind, sent = refused.first
    assert kind == "send_message" and sent["ephemeral"] is True
    assert "you can ask again <t:1800000600:R>" in sent["content"]
    assert len(services.called("ask")) == 5

    someone_else = FakeInteraction(user_id=2)
    ask(services, someone_else, cog, question="My first")
    assert someone_else.first[0] == "defer"

    now[0] = 1_800_000_600.0  # the first question has left the window
    later = FakeInteraction(user_id=1)
    ask(services, later, cog, question="Now?")
    assert later.first[0] == "defer"


def test_a_bad_since_is_explained_privately_and_nothing_is_asked():
    services, interaction = FakeServices(), FakeInteraction()
    ask(services, interaction, question="Recent papers?", since="yesterday")
    kind, sent = interaction.first
    assert kind == "send_message" and sent["ephemeral"] is True
    assert "such as 12h, 1d or 7d" in sent["content"]
    assert services.called("ask") == []


def test_a_user_error_is_shown_as_its_message():
    services = FakeServices(fail=UserError("The corpus is empty: run tracker collect first."))
    interaction = FakeInteraction()
    ask(services, interaction, question="Anything?")
    assert interaction.first[0] == "defer"
    assert interaction.texts == ["The corpus is empty: run tracker collect first."]


def test_any_other_failure_is_a_short_apology_and_a_log_line(caplog):
    services, interaction = FakeServices(fail=RuntimeError("chroma is down")), FakeInteraction()
    ask(services, interaction, question="Anything?")
    assert interaction.texts == [SOMETHING_WENT_WRONG]
    assert interaction.sent[0].ephemeral
    assert "chroma is down" in caplog.text
    assert "chroma is down" not in interaction.texts[0]
