"""``/sources list|add|remove``: what the tracker follows, and changing it.

Anyone may look; only members with Manage Server may change the list. Discord's
``default_permissions`` would hide the whole ``/sources`` group (it cannot be
set per subcommand), so ``add`` and ``remove`` check the permission themselves,
on every call; server admins can still narrow who sees the group in Server
Settings > Integrations.

Changes are announced in the channel: a new or dropped source changes everyone's
digest, so everyone can see who changed what. A refusal (an unknown name, a page
without a feed) is for the person who asked only. Discord makes the first follow-up
after a deferral exactly as visible as the deferral, whatever flag it carries, and
later follow-ups as visible as they say: so the deferral is private, the first
follow-up (the outcome, or the refusal) private, and the announcement a second one.
"""

from __future__ import annotations

import logging

import discord
from discord import app_commands
from discord.ext import commands

from bot.replies import escaped, follow_up, pack, reply, safe_url, suggestions, timestamp
from tracker.services import Services, SourceChange, SourceHealth

log = logging.getLogger("tracker.bot.sources")


class SourcesCog(commands.Cog):
    sources = app_commands.Group(
        name="sources", description="The sources the tracker follows", guild_only=True
    )

    def __init__(self, services: Services):
        self.services = services

    @sources.command(name="list", description="Show the followed sources and how they are doing")
    async def list_sources(self, interaction: discord.Interaction) -> None:
        await interaction.response.defer(thinking=True, ephemeral=True)
        followed = await self.services.sources()
        if not followed:
            await reply(interaction, "No sources are followed yet. Add one with `/sources add`.")
            return
        lines = [health_line(s) for s in sorted(followed, key=lambda s: s.name.lower())]
        await follow_up(interaction, pack(lines), ephemeral=True)

    @sources.command(
        name="add", description="Follow a feed or a blog, a GitHub repo's releases, a subreddit"
    )
    @app_commands.describe(
        url="A feed's URL, or a blog's page (its feed is found), a GitHub repo or a subreddit",
        name="A short name for it (made from the title or the URL if left out)",
    )
    @app_commands.checks.has_permissions(manage_guild=True)
    async def add(
        self,
        interaction: discord.Interaction,
        url: app_commands.Range[str, 1, 2000],
        name: app_commands.Range[str, 1, 60] | None = None,
    ) -> None:
        await interaction.response.defer(thinking=True, ephemeral=True)
        change = await self.services.add_source(url, name)
        log.info("source %s added by user %s", change.name, interaction.user.id)
        await announce(interaction, change_text("Now following", change))

    @sources.command(name="remove", description="Stop following a source")
    @app_commands.describe(name="The source's name, as /sources list shows it")
    @app_commands.checks.has_permissions(manage_guild=True)
    async def remove(self, interaction: discord.Interaction, name: str) -> None:
        await interaction.response.defer(thinking=True, ephemeral=True)
        change = await self.services.remove_source(name)
        log.info("source %s removed by user %s", change.name, interaction.user.id)
        await announce(interaction, change_text("Stopped following", change))

    @remove.autocomplete("name")
    async def name_autocomplete(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        followed = await suggestions(self.services.sources(), "source", [])
        wanted = current.strip().lower()
        names = sorted(s.name for s in followed if wanted in s.name.lower())
        return [app_commands.Choice(name=n, value=n) for n in names if len(n) <= 100][:25]


async def announce(interaction: discord.Interaction, text: str) -> None:
    """The change said privately to who made it (the first follow-up of the private
    deferral), then in the channel with their name (a mention that pings no one)."""
    await reply(interaction, f"Done. {text}", ephemeral=True)
    try:
        await reply(interaction, f"{text}\n(by {interaction.user.mention})", ephemeral=False)
    except discord.HTTPException as exc:  # done, and its author was told: no error for them
        log.warning("the change was made but could not be announced in the channel: %s", exc)


def health_line(source: SourceHealth) -> str:
    """One source on one line: its state first, as an emoji a reader can scan down."""
    name = f"**{escaped(source.name, 80)}** ({escaped(source.kind, 20)})"
    if not source.enabled:
        return f"⏸️ {name}: paused"
    parts: list[str] = []
    if source.last_success is not None:
        parts.append(f"last collected {timestamp(source.last_success)}")
    else:
        parts.append("not collected yet")
    if source.last_error and source.consecutive_failures:
        when = f" {timestamp(source.last_error_at)}" if source.last_error_at else ""
        failures = source.consecutive_failures
        times = f"{failures} time{'s' if failures != 1 else ''}"
        parts.append(f"failing ({times}, last{when}): {escaped(source.last_error, 200)}")
    if source.backing_off:
        retry = f", next try {timestamp(source.retry_after)}" if source.retry_after else ""
        parts.append(f"backing off{retry}")
    emoji = "⚠️" if source.consecutive_failures or source.backing_off else "✅"
    return f"{emoji} {name}: " + "; ".join(parts)


def change_text(verb: str, change: SourceChange) -> str:
    text = (
        f"{verb} **{escaped(change.name, 80)}** ({escaped(change.kind, 20)}): "
        f"{target_text(change.target)}"
    )
    if change.note:
        text += f"\n{escaped(change.note, 500)}"
    return text


def target_text(target: str) -> str:
    """A URL as a plain link without a preview card; anything else (a repo, a query) escaped."""
    url = safe_url(target)
    return f"<{url}>" if url and len(url) <= 500 else escaped(target, 300)
