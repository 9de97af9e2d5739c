"""The Discord bot (``tracker serve`` starts it when DISCORD_TOKEN is set).

``client`` holds ``TrackerBot`` (intents, command registration, the one error
handler); ``cogs/`` the commands, each a thin layer over ``tracker.services``;
``destination`` posts digests and announcements to the channel; ``replies``
the rules every message follows (no pings, escaped text, Discord's limits);
``ratelimit`` how often one person may ask.
"""
