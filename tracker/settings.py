"""Paths, secrets and knobs that come from the environment, read in one place.

Nothing else in tracker reads ``os.environ``: code takes a ``Settings`` and
tests build one pointing at ``tmp_path``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from tracker import __version__
from tracker.errors import ConfigError, ConfigProblem

USER_AGENT = (
    f"tracker/{__version__} (AI-engineering digest bot; +https://github.com/tracker-digest/tracker)"
)


def _summary_model(env: Mapping[str, str]) -> str | None:
    """The chat model for summaries: as set, or OpenAI's small model when only a key is set.

    With OPENAI_BASE_URL (Ollama, vLLM) there is no sensible default name: the
    user says which model their server runs.
    """
    if env.get("TRACKER_SUMMARY_MODEL"):
        return env["TRACKER_SUMMARY_MODEL"]
    if env.get("OPENAI_API_KEY") and not env.get("OPENAI_BASE_URL"):
        return "gpt-4o-mini"
    return None


def default_home(env: Mapping[str, str]) -> Path:
    """Where state lives when TRACKER_HOME is unset: the XDG data directory."""
    base = env.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "tracker"


@dataclass(frozen=True)
class Settings:
    """Everything tracker takes from the environment."""

    home: Path
    sources_path: Path
    github_token: str | None = field(default=None, repr=False)
    user_agent: str = USER_AGENT
    #: Seconds to wait for a connection, and between bytes of a response.
    timeout: float = 20.0
    #: A response larger than this is refused rather than read into memory.
    max_bytes: int = 10 * 1024 * 1024
    #: Sources collected at the same time.
    workers: int = 8
    #: Requests in flight to one host at once (arXiv is held to 1 regardless).
    per_host: int = 2
    #: Article pages asked for per source per run, and of one host per run (shared fairly
    #: among the sources waiting on it); the rest wait in the queue for the next run.
    max_pages: int = 20
    #: OpenAI or any OpenAI-compatible server (Ollama, vLLM): for embeddings and summaries.
    openai_api_key: str | None = field(default=None, repr=False)
    openai_base_url: str | None = None
    #: "local" (the bundled MiniLM) or "openai:<model>" (through the OpenAI client).
    embedding_model: str = "local"
    #: Chat model for summaries; None means offline extractive summaries.
    summary_model: str | None = None
    #: A Chroma server (http://host:port); unset means Chroma on disk under ``home``.
    chroma_url: str | None = None
    #: New items are compared with stories first seen this many days back.
    dedupe_days: int = 14
    #: The Discord bot's token; unset means ``tracker serve`` writes digests to files.
    discord_token: str | None = field(default=None, repr=False)
    #: The digest's channel (overrides ``digest.channel_id`` in sources.yaml).
    discord_channel_id: int | None = None
    #: Sync slash commands to this server only (instant; for trying the bot out).
    discord_guild_id: int | None = None

    @property
    def digests_path(self) -> Path:
        return self.home / "digests"

    @property
    def lock_path(self) -> Path:
        return self.home / "serve.lock"

    def secrets(self) -> list[str]:
        """The secret values in use, so that logs can blank them out wherever they appear."""
        values = (self.discord_token, self.openai_api_key, self.github_token)
        return [v for v in values if v and len(v) >= 8]

    @property
    def state_db(self) -> Path:
        return self.home / "state.sqlite3"

    @property
    def chroma_path(self) -> Path:
        return self.home / "chroma"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        problems: list[ConfigProblem] = []

        def number(name: str, default: float, kind: type = float) -> float:
            raw = env.get(name)
            if raw is None or raw == "":
                return default
            try:
                value = kind(raw)
                if value <= 0:
                    raise ValueError
                return value
            except ValueError:
                problems.append(
                    ConfigProblem(
                        "environment",
                        None,
                        name,
                        f"{raw!r} is not a positive number",
                        f"set {name} to a number such as {default}, or unset it",
                    )
                )
                return default

        def snowflake(name: str) -> int | None:
            raw = (env.get(name) or "").strip()
            if not raw:
                return None
            if raw.isdigit() and 15 <= len(raw) <= 21:
                return int(raw)
            problems.append(
                ConfigProblem(
                    "environment",
                    None,
                    name,
                    f"{raw!r} is not a Discord id",
                    "turn on Developer Mode in Discord (Settings > Advanced), right-click "
                    "the channel or server and choose Copy ID",
                )
            )
            return None

        home = Path(env["TRACKER_HOME"]).expanduser() if env.get("TRACKER_HOME") else None
        settings = cls(
            home=home or default_home(env),
            sources_path=Path(env.get("TRACKER_SOURCES") or "sources.yaml").expanduser(),
            github_token=env.get("GITHUB_TOKEN") or None,
            timeout=number("TRACKER_TIMEOUT", 20.0),
            max_bytes=int(number("TRACKER_MAX_BYTES", 10 * 1024 * 1024, int)),
            workers=int(number("TRACKER_WORKERS", 8, int)),
            per_host=int(number("TRACKER_PER_HOST", 2, int)),
            max_pages=int(number("TRACKER_MAX_PAGES", 20, int)),
            openai_api_key=env.get("OPENAI_API_KEY") or None,
            openai_base_url=env.get("OPENAI_BASE_URL") or None,
            embedding_model=env.get("TRACKER_EMBEDDING_MODEL") or "local",
            summary_model=_summary_model(env),
            chroma_url=env.get("CHROMA_URL") or None,
            dedupe_days=int(number("TRACKER_DEDUPE_DAYS", 14, int)),
            discord_token=(env.get("DISCORD_TOKEN") or "").strip() or None,
            discord_channel_id=snowflake("DISCORD_CHANNEL_ID"),
            discord_guild_id=snowflake("DISCORD_GUILD_ID"),
        )
        model = settings.embedding_model
        if model != "local" and not model.startswith("openai:"):
            problems.append(
                ConfigProblem(
                    "environment",
                    None,
                    "TRACKER_EMBEDDING_MODEL",
                    f"{model!r} is not a model",
                    "use local, or openai:<model> such as openai:text-embedding-3-small",
                )
            )
        if problems:
            raise ConfigError(problems)
        return settings
