"""The Discord bot: the tracker's services behind slash commands, and the digest channel.

``TrackerBot`` gets everything it uses through its constructor (the services,
the channel, what to start once logged in), adds its cogs and registers its
commands in ``setup_hook``, and turns any error a command lets through into a
short private sentence for the person who used it. It asks Discord for as
little as it can: no privileged intents, no message content, no pings.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import discord
from discord import app_commands
from discord.ext import commands

from bot.cogs import AskCog, FeedbackCog, SourcesCog, StoriesCog
from bot.cogs.feedback import vote_of
from bot.destination import ChannelDestination, ChannelNotifier
from bot.replies import NEEDS_MANAGE_SERVER, SOMETHING_WENT_WRONG, reply
from tracker.errors import UserError
from tracker.services import Services

log = logging.getLogger("tracker.bot")

# tracker never joins voice channels: no warnings at every start about voice libraries.
discord.VoiceClient.warn_nacl = False
discord.VoiceClient.warn_dave = False

#: What the invite link asks for: read and post in the digest channel, seed votes.
REQUIRED_PERMISSIONS = discord.Permissions(
    view_channel=True,
    send_messages=True,
    embed_links=True,
    add_reactions=True,
    read_message_history=True,  # Discord requires it to add a reaction to a message
)
SCOPES = ("bot", "applications.commands")


def intents() -> discord.Intents:
    """Guilds (channels, and the guild an interaction comes from) and guild reactions
    (``on_raw_reaction_add``/``remove`` for votes). Slash commands need no intent at all."""
    wanted = discord.Intents.none()
    wanted.guilds = True
    wanted.guild_reactions = True
    return wanted


def invite_url(application_id: int) -> str:
    """The link that adds the bot to a server with exactly the permissions it uses."""
    return discord.utils.oauth_url(application_id, permissions=REQUIRED_PERMISSIONS, scopes=SCOPES)


class TrackerTree(app_commands.CommandTree):
    """The command tree, with one error handler for every command: people get a sentence,
    the log gets the traceback."""

    async def on_error(
        self, interaction: discord.Interaction, error: app_commands.AppCommandError
    ) -> None:
        cause = error.original if isinstance(error, app_commands.CommandInvokeError) else error
        command = interaction.command.qualified_name if interaction.command else "?"
        if isinstance(cause, UserError):
            text = str(cause)
            log.info("/%s refused: %s", command, text)
        elif isinstance(cause, app_commands.MissingPermissions):
            text = NEEDS_MANAGE_SERVER
            log.info("/%s refused to user %s: missing permissions", command, interaction.user.id)
        elif isinstance(cause, app_commands.CheckFailure):
            text = "You can't use this command here."
        else:
            text = SOMETHING_WENT_WRONG
            log.error("/%s failed", command, exc_info=cause)
        try:
            await reply(interaction, text, ephemeral=True)
        except discord.HTTPException as exc:  # the interaction may have expired meanwhile
            log.warning("could not tell the user /%s failed: %s", command, exc)


class TrackerBot(commands.Bot):
    def __init__(
        self,
        services: Services,
        channel_id: int | None,
        on_start: Callable[[TrackerBot], Awaitable[None]] | None = None,
        guild_id: int | None = None,
    ):
        super().__init__(
            command_prefix=commands.when_mentioned,  # no prefix commands: slash commands only
            help_command=None,
            intents=intents(),
            allowed_mentions=discord.AllowedMentions.none(),
            tree_cls=TrackerTree,
        )
        self.services = services
        self.channel_id = channel_id
        self.guild_id = guild_id
        self.on_start = on_start
        self._destinations: dict[int | None, ChannelDestination] = {}
        self._notifier = ChannelNotifier(self, channel_id)

    def destination(self, channel_id: int | None = None) -> ChannelDestination:
        """Where digests go in ``channel_id`` (the configured channel when None)."""
        key = channel_id or self.channel_id
        if key not in self._destinations:
            self._destinations[key] = ChannelDestination(self, key)
        return self._destinations[key]

    def notifier(self) -> ChannelNotifier:
        return self._notifier

    async def setup_hook(self) -> None:
        await self.add_cog(AskCog(self.services))
        await self.add_cog(StoriesCog(self, self.services))
        await self.add_cog(SourcesCog(self.services))
        await self.add_cog(FeedbackCog(self.services, self._own_id, self._remaining_votes))
        await self.sync_commands()
        if self.on_start is not None:
            await self.on_start(self)

    async def sync_commands(self) -> None:
        """Register the commands with Discord: in one server when ``guild_id`` is set (shows
        at once, for development), else everywhere the bot is (may take a while to show).
        A failure is logged, not raised: the digest does not need the commands."""
        guild = discord.Object(self.guild_id) if self.guild_id else None
        if guild is not None:
            self.tree.copy_global_to(guild=guild)
        try:
            synced = await self.tree.sync(guild=guild)
        except discord.HTTPException as exc:
            log.error(
                "could not register slash commands (%s); invite the bot with the "
                "'bot applications.commands' scopes%s",
                exc,
                " and check DISCORD_GUILD_ID" if guild else "",
            )
            return
        where = f"server {self.guild_id}" if guild else "all servers"
        log.info("registered %d commands in %s", len(synced), where)

    async def on_ready(self) -> None:
        user = self.user
        log.info(
            "connected to Discord as %s (%s) in %d servers",
            user,
            user.id if user else "?",
            len(self.guilds),
        )
        if not self.guilds and self.application_id:
            log.warning(
                "the bot is in no server yet; invite it with %s", invite_url(self.application_id)
            )
        elif self.channel_id and self.get_channel(self.channel_id) is None:
            log.warning(
                "the bot cannot see channel %s; check DISCORD_CHANNEL_ID and that the bot was "
                "invited to that server with View Channel",
                self.channel_id,
            )

    async def close(self) -> None:
        for destination in self._destinations.values():
            await destination.settle(timeout=5.0)
        await super().close()

    async def _remaining_votes(self, payload: discord.RawReactionActionEvent) -> set[int] | None:
        """The thumbs ``payload``'s reader still has on that message, as votes."""
        try:
            channel = self.get_channel(payload.channel_id) or await self.fetch_channel(
                payload.channel_id
            )
            message = await channel.fetch_message(payload.message_id)  # type: ignore[union-attr]
            votes: set[int] = set()
            for reaction in message.reactions:
                emoji = reaction.emoji
                partial = emoji if isinstance(emoji, discord.PartialEmoji) else None
                if isinstance(emoji, str):
                    partial = discord.PartialEmoji(name=emoji)
                vote = vote_of(partial) if partial is not None else None
                if vote is None or vote in votes:
                    continue
                async for user in reaction.users():
                    if user.id == payload.user_id:
                        votes.add(vote)
                        break
            return votes
        except (discord.HTTPException, AttributeError) as exc:
            log.info("could not read the reactions on message %s: %s", payload.message_id, exc)
            return None

    def _own_id(self) -> int | None:
        return self.user.id if self.user is not None else None
