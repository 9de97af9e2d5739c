"""The digest channel: one story per message as embeds, never a ping, votes seeded on the
side, and every refusal from Discord a DeliveryError that says whether waiting helps."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import discord
import pytest

from bot.destination import ChannelDestination, ChannelNotifier, fit_message
from tests.bot_standins import FakeChannel, FakeClient, digest, http_error
from tracker.errors import DeliveryError


def deliver(destination: ChannelDestination, payloads: list[dict[str, Any]]) -> list[str]:
    async def go() -> list[str]:
        ids = [await destination.send(p) for p in payloads]
        await destination.settle()
        return ids

    return asyncio.run(go())


def send_failure(error: Exception, channel_id: int | None = 55) -> DeliveryError:
    destination = ChannelDestination(FakeClient(FakeChannel(fail=error)), channel_id)
    with pytest.raises(DeliveryError) as caught:
        deliver(destination, [{"content": "hi", "embeds": []}])
    return caught.value


def test_render_puts_one_story_in_each_message():
    outgoing = ChannelDestination(FakeClient(), 55).render(digest())
    assert [o.story_ids for o in outgoing] == [("s1",), ("s2",), ("s3",)]
    assert all(len(o.payload["embeds"]) == 1 for o in outgoing)
    assert all(o.payload["allowed_mentions"] == {"parse": []} for o in outgoing)


def test_the_destination_is_named_after_its_channel():
    assert ChannelDestination(FakeClient(), 55).name == "discord:55"


def test_payloads_become_embeds_sent_without_mentions_and_votes_are_seeded():
    channel = FakeChannel()
    destination = ChannelDestination(FakeClient(channel), 55)
    outgoing = destination.render(digest())
    ids = deliver(destination, [o.payload for o in outgoing])

    assert ids == [str(m.id) for m in channel.messages]
    first = channel.sent[0]
    assert first["content"].startswith("**AI engineering digest")
    (embed,) = first["embeds"]
    assert isinstance(embed, discord.Embed) and embed.title == "Story number 1"
    assert embed.url == "https://example.org/1"
    assert all(s["allowed_mentions"].to_dict() == {"parse": []} for s in channel.sent)
    assert all(m.reactions == ["👍", "👎"] for m in channel.messages)


def test_a_message_without_a_story_gets_no_votes():
    channel = FakeChannel()
    deliver(
        ChannelDestination(FakeClient(channel), 55), [{"content": "A quiet day.", "embeds": []}]
    )
    assert channel.messages[0].reactions == []


def test_failing_to_seed_votes_does_not_fail_the_send(caplog):
    channel = FakeChannel()
    channel.fail_reactions = http_error(discord.Forbidden, 403, "Missing Permissions")
    ids = deliver(
        ChannelDestination(FakeClient(channel), 55),
        [ChannelDestination(FakeClient(), 1).render(digest())[0].payload],
    )
    assert ids == [str(channel.messages[0].id)]
    assert "give the bot Add Reactions and Read Message History" in caplog.text


@pytest.mark.parametrize(
    "error",
    [
        http_error(discord.DiscordServerError, 503, "upstream"),
        http_error(discord.HTTPException, 429, "rate limited"),
        TimeoutError(),
        aiohttp.ServerDisconnectedError(),
        ConnectionResetError(104, "reset"),
    ],
    ids=["5xx", "429", "timeout", "disconnected", "reset"],
)
def test_outages_are_worth_retrying(error: Exception):
    assert send_failure(error).retryable


def test_a_rate_limit_passes_on_how_long_to_wait():
    failure = send_failure(discord.RateLimited(12.5))
    assert failure.retryable and failure.retry_after == 12.5


def test_a_missing_permission_names_the_fix_and_is_not_retried():
    failure = send_failure(http_error(discord.Forbidden, 403, "Missing Permissions"))
    assert not failure.retryable
    assert "give the bot View Channel, Send Messages and Embed Links in #ai-digest" in str(failure)


def test_an_unknown_channel_names_the_setting_and_is_not_retried():
    destination = ChannelDestination(
        FakeClient(cached=False, fetch_error=http_error(discord.NotFound, 404, "Unknown Channel")),
        55,
    )
    with pytest.raises(DeliveryError) as caught:
        deliver(destination, [{"content": "hi", "embeds": []}])
    assert not caught.value.retryable
    assert "channel 55 does not exist or the bot cannot see it" in str(caught.value)
    assert "DISCORD_CHANNEL_ID" in str(caught.value)


def test_a_message_discord_will_never_accept_is_refused_so_the_rest_can_go():
    bad_body = send_failure(http_error(discord.HTTPException, 400, "Invalid Form Body", 50035))
    assert not bad_body.retryable and bad_body.refused


def test_a_bad_request_about_the_channel_waits_for_a_person():
    archived = send_failure(http_error(discord.HTTPException, 400, "Thread is archived", 50083))
    assert not archived.retryable and not archived.refused


def test_no_channel_configured_is_a_clear_error():
    failure = send_failure(RuntimeError("unused"), channel_id=None)
    assert not failure.retryable and "DISCORD_CHANNEL_ID" in str(failure)


def test_a_channel_not_in_the_cache_yet_is_fetched_once():
    channel = FakeChannel()
    client = FakeClient(channel, cached=False)
    deliver(
        ChannelDestination(client, 55),
        [{"content": "a", "embeds": []}, {"content": "b", "embeds": []}],
    )
    assert client.fetches == 1 and len(channel.sent) == 2


def test_an_announcement_is_sent_without_pings_and_capped():
    channel = FakeChannel()
    asyncio.run(ChannelNotifier(FakeClient(channel), 55).announce("⚠️ " + "x" * 3000))
    (sent,) = channel.sent
    assert len(sent["content"]) <= 2000
    assert sent["allowed_mentions"].to_dict() == {"parse": []}


def test_a_failed_announcement_is_logged_not_raised(caplog):
    channel = FakeChannel(fail=http_error(discord.Forbidden, 403, "Missing Access"))
    said = asyncio.run(ChannelNotifier(FakeClient(channel), 55).announce("Source blog is failing"))
    assert said is False  # so the caller can say it again later
    assert "announcement not sent" in caplog.text


def test_a_cut_code_block_is_closed_again():
    text = fit_message("⚠️ sources.yaml\n```\n" + "line\n" * 600 + "```")
    assert len(text) <= 2000 and text.endswith("```") and text.count("```") == 2


def test_on_shutdown_seeding_that_hangs_is_dropped_after_the_timeout():
    class Stuck(FakeChannel):
        async def send(self, **kwargs: Any) -> Any:
            message = await super().send(**kwargs)

            async def never(emoji: str) -> None:
                await asyncio.Event().wait()

            message.add_reaction = never  # type: ignore[method-assign]
            return message

    async def go() -> None:
        destination = ChannelDestination(FakeClient(Stuck()), 55)
        await destination.send(destination.render(digest())[0].payload)
        await destination.settle(timeout=0.01)
        await asyncio.sleep(0)
        assert all(t.cancelled() for t in destination._seeding) or not destination._seeding

    asyncio.run(go())


def test_the_wait_discord_asked_for_is_read_from_a_refusals_headers() -> None:
    from types import SimpleNamespace

    from bot.destination import retry_after_of

    def refusal(status: int, **headers: str) -> discord.HTTPException:
        response = SimpleNamespace(status=status, reason="", headers=headers)
        return discord.HTTPException(response, {"message": "no", "code": 0})  # type: ignore[arg-type]

    own = {"Retry-After": "1", "X-RateLimit-Reset-After": "0.250", "X-RateLimit-Scope": "user"}
    assert retry_after_of(refusal(429, **own)) == 0.25  # the bot's own bucket, to the ms
    shared = {**own, "X-RateLimit-Scope": "shared"}
    assert retry_after_of(refusal(429, **shared)) == 1.0  # a shared bucket's reset is not it
    assert retry_after_of(refusal(503, **{"Retry-After": "30"})) == 30.0
    # a 5xx's bucket headers say nothing about the outage: delivery's own backoff
    assert retry_after_of(refusal(502, **{"X-RateLimit-Reset-After": "0.1"})) is None
