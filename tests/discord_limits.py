"""What Discord documents it refuses (API v10: application commands, messages, embeds), as
checks on a request's body: each returns the problems Discord would answer with its
``400 Invalid Form Body``. Used by the loopback Discord (``tests/discord_loopback.py``)."""

from __future__ import annotations

import re
from typing import Any

# Documented limits (Discord API v10: application commands, messages, embeds).
NAME = re.compile(r"^[-_'\w]{1,32}$")
COMMAND_DESCRIPTION = 100
OPTIONS = 25
CHOICES = 25
CHAT_INPUT_COMMANDS = 100
CONTEXT_MENU_COMMANDS = 15  # per type (user, message)
CONTENT = 2000
NONCE = 25
EMBEDS = 10
EMBED_TOTAL = 6000
EMBED_LIMITS = {"title": 256, "description": 4096}
FIELDS = 25
FIELD_NAME = 256
FIELD_VALUE = 1024
FOOTER = 2048
AUTHOR_NAME = 256


def command_problems(body: Any) -> list[str]:
    """What Discord would refuse in a bulk overwrite of application commands."""
    if not isinstance(body, list):
        return ["the body is not a list of commands"]
    problems: list[str] = []
    counts: dict[int, int] = {}
    names: set[tuple[int, str]] = set()
    for command in body:
        kind = command.get("type", 1)
        counts[kind] = counts.get(kind, 0) + 1
        name = command.get("name", "")
        if (kind, name) in names:
            problems.append(f"two commands named {name!r}")
        names.add((kind, name))
        if kind == 1:
            problems += _named(f"/{name}", command)
            problems += _options(f"/{name}", command.get("options") or [])
        else:  # context menus: any case and spaces, no description
            if not 1 <= len(name) <= 32:
                problems.append(f"menu command name {name!r} is not 1-32 characters")
            if command.get("description"):
                problems.append(f"menu command {name!r} has a description")
    if counts.get(1, 0) > CHAT_INPUT_COMMANDS:
        problems.append(f"{counts[1]} slash commands, more than {CHAT_INPUT_COMMANDS}")
    for kind in (2, 3):
        if counts.get(kind, 0) > CONTEXT_MENU_COMMANDS:
            problems.append(f"{counts[kind]} menu commands of type {kind}")
    return problems


def _named(where: str, thing: dict[str, Any]) -> list[str]:
    problems = []
    name = thing.get("name", "")
    if not NAME.fullmatch(name) or name != name.lower():
        problems.append(f"{where}: name {name!r} is not 1-32 lowercase letters, digits, - or _")
    description = thing.get("description") or ""
    if not 1 <= len(description) <= COMMAND_DESCRIPTION:
        problems.append(f"{where}: description is {len(description)} characters, not 1-100")
    return problems


def _options(where: str, options: list[dict[str, Any]]) -> list[str]:
    problems = []
    if len(options) > OPTIONS:
        problems.append(f"{where}: {len(options)} options, more than {OPTIONS}")
    required_done = False
    for option in options:
        here = f"{where} {option.get('name')}"
        problems += _named(here, option)
        if option.get("type") in (1, 2):  # subcommand, group
            problems += _options(here, option.get("options") or [])
            continue
        if option.get("required"):
            if required_done:
                problems.append(f"{here}: a required option after an optional one")
        else:
            required_done = True
        choices = option.get("choices") or []
        if len(choices) > CHOICES:
            problems.append(f"{here}: {len(choices)} choices, more than {CHOICES}")
        for choice in choices:
            if not 1 <= len(str(choice.get("name", ""))) <= 100:
                problems.append(f"{here}: a choice name is not 1-100 characters")
    return problems


def message_problems(body: Any) -> list[str]:
    """What Discord would refuse in a message to create (or an edit)."""
    if not isinstance(body, dict):
        return ["the body is not an object"]
    problems = []
    content = body.get("content") or ""
    embeds = body.get("embeds") or []
    if not content and not embeds:
        problems.append("an empty message")
    if len(content) > CONTENT:
        problems.append(f"content is {len(content)} characters, more than {CONTENT}")
    nonce = body.get("nonce")
    if nonce is not None and not (
        (isinstance(nonce, str) and len(nonce) <= NONCE) or isinstance(nonce, int)
    ):
        problems.append(f"nonce {nonce!r} is not an integer or a string of at most {NONCE}")
    if len(embeds) > EMBEDS:
        problems.append(f"{len(embeds)} embeds, more than {EMBEDS}")
    total = 0
    for n, embed in enumerate(embeds):
        for key, limit in EMBED_LIMITS.items():
            size = len(embed.get(key) or "")
            total += size
            if size > limit:
                problems.append(f"embed {n} {key} is {size} characters, more than {limit}")
        fields = embed.get("fields") or []
        if len(fields) > FIELDS:
            problems.append(f"embed {n} has {len(fields)} fields, more than {FIELDS}")
        for f in fields:
            name, value = f.get("name") or "", f.get("value") or ""
            total += len(name) + len(value)
            if not name or len(name) > FIELD_NAME or not value or len(value) > FIELD_VALUE:
                problems.append(f"embed {n} field {name[:20]!r} is empty or too long")
        footer = (embed.get("footer") or {}).get("text") or ""
        author = (embed.get("author") or {}).get("name") or ""
        total += len(footer) + len(author)
        if len(footer) > FOOTER or len(author) > AUTHOR_NAME:
            problems.append(f"embed {n} footer or author too long")
    if total > EMBED_TOTAL:
        problems.append(f"embeds total {total} characters, more than {EMBED_TOTAL}")
    return problems
