"""The bot's cogs: thin layers from a Discord interaction to one ``Services`` call."""

from bot.cogs.ask import AskCog
from bot.cogs.feedback import FeedbackCog
from bot.cogs.sources import SourcesCog
from bot.cogs.stories import StoriesCog

__all__ = ["AskCog", "FeedbackCog", "SourcesCog", "StoriesCog"]
