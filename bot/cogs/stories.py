"""Reading stories on demand: ``/digest``, ``/search``, ``/why`` and the "Why this story?"
message menu. All answers are private (ephemeral): they are for the one who asked.

Each command defers first (the tracker may be busy collecting) and then answers
with follow-ups built from the tracker's own renderers.
"""

from __future__ import annotations

import logging

import discord
from discord import app_commands
from discord.ext import commands

from bot.cogs.ask import parse_since
from bot.replies import NO_PINGS, escaped, follow_up, link, pack, reply, suggestions
from tracker.deliver.discord import render_discord, shorten
from tracker.services import SearchHit, Services, Why

log = logging.getLogger("tracker.bot.stories")

SEARCH_RESULTS = 5
_SUMMARY_BUDGET = 280


class StoriesCog(commands.Cog):
    def __init__(self, bot: commands.Bot, services: Services):
        self.bot = bot
        self.services = services
        self.why_menu = app_commands.ContextMenu(name="Why this story?", callback=self.why_message)

    async def cog_load(self) -> None:
        # Context menus cannot be declared in a class body; they join the tree by hand.
        self.bot.tree.add_command(self.why_menu)

    async def cog_unload(self) -> None:
        self.bot.tree.remove_command(self.why_menu.name, type=self.why_menu.type)

    @app_commands.command(name="digest", description="Preview the digest as it would be now")
    @app_commands.describe(
        since="Stories from this recent past, such as 12h, 1d or 7d",
        route="Which digest, when sources.yaml names several (default: the first)",
    )
    async def digest(
        self, interaction: discord.Interaction, since: str | None = None, route: str | None = None
    ) -> None:
        try:
            window = parse_since(since)
        except ValueError as exc:
            await reply(interaction, str(exc), ephemeral=True)
            return
        await interaction.response.defer(thinking=True, ephemeral=True)
        digest = await self.services.digest_preview(window, route)
        for message in render_discord(digest):
            payload = message.to_payload()
            await interaction.followup.send(
                payload["content"] or discord.utils.MISSING,
                embeds=[discord.Embed.from_dict(e) for e in payload["embeds"]],
                ephemeral=True,
                allowed_mentions=NO_PINGS,
            )

    @app_commands.command(name="search", description="Find stories the tracker has read")
    @app_commands.describe(query="Words to look for")
    async def search(
        self, interaction: discord.Interaction, query: app_commands.Range[str, 1, 200]
    ) -> None:
        await interaction.response.defer(thinking=True, ephemeral=True)
        hits = await self.services.search(query, SEARCH_RESULTS)
        if not hits:
            await reply(interaction, f"No stories match “{escaped(query, 200)}”.")
            return
        lines = [_hit_text(n, hit) for n, hit in enumerate(hits, 1)]
        await follow_up(interaction, pack(lines, separator="\n\n"), ephemeral=True)

    @app_commands.command(name="why", description="Why a story was ranked where it was")
    @app_commands.describe(story="A story's title words, its id, or a digest message link")
    async def why(self, interaction: discord.Interaction, story: str) -> None:
        await interaction.response.defer(thinking=True, ephemeral=True)
        explained = await self.services.why(story)
        await follow_up(interaction, pack(why_lines(explained)), ephemeral=True)

    @digest.autocomplete("route")
    async def route_autocomplete(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        names = await suggestions(self.services.digest_routes(), "route", [])
        wanted = current.casefold()
        return [app_commands.Choice(name=n, value=n) for n in names if wanted in n.casefold()][:25]

    @why.autocomplete("story")
    async def story_autocomplete(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        choices = await suggestions(self.services.story_choices(current, 25), "story", [])
        return [
            app_commands.Choice(name=_choice_name(title), value=story_id)
            for title, story_id in choices[:25]
            if len(story_id) <= 100
        ]

    async def why_message(self, interaction: discord.Interaction, message: discord.Message) -> None:
        await interaction.response.defer(thinking=True, ephemeral=True)
        explained = await self.services.why_message(message.id)
        if not explained:
            await reply(
                interaction,
                "That message isn't a story of a digest. Try `/why` with words of a title.",
            )
            return
        lines: list[str] = []
        for n, why in enumerate(explained):
            lines += ([""] if n else []) + why_lines(why)
        await follow_up(interaction, pack(lines), ephemeral=True)


def _hit_text(n: int, hit: SearchHit) -> str:
    head = f"**{n}.** {link(hit.title, hit.url)} · {escaped(hit.kind, 20)}"
    if hit.sources:
        head += f" · via {escaped(', '.join(hit.sources), 120)}"
    if hit.summary:
        head += f"\n> {escaped(hit.summary, _SUMMARY_BUDGET)}"
    return head


def why_lines(why: Why) -> list[str]:
    """A story's score as a sum people can check: each part, then the total."""
    lines = [f"**{link(why.title, why.url)}**"]
    if why.position is not None:
        lines.append(f"Ranked **{why.position}** of {why.total} stories now.")
    else:
        lines.append("Not among the stories ranked now.")
    for name, value in sorted(why.parts.items(), key=lambda kv: -abs(kv[1])):
        lines.append(f"• {escaped(name.replace('_', ' '), 60)}: {value:+.3f}")
    lines.append(f"= score **{why.score:.3f}**")
    if why.engagement:
        lines.append(f"Votes: {escaped(why.engagement, 300)}")
    if len(why.members) > 1:
        lines.append("One story of: " + escaped("; ".join(why.members[:6]), 600))
    up, down = why.feedback.get("up", 0), why.feedback.get("down", 0)
    lines.append(f"Feedback: 👍 {up} · 👎 {down}")
    return lines


def _choice_name(title: str) -> str:
    # Choice names are plain text (no Markdown), 1-100 characters.
    return shorten(" ".join(title.split()) or "(untitled)", 100, lambda s: s)
