"""What an address asks to follow, and whether ``sources.yaml`` follows it already. Pure.

``tracker sources add`` and the bot's ``/sources add`` take whatever a person pastes:
a GitHub repository, a subreddit, Hugging Face's Daily Papers, Hacker News, or (anything
else) a feed. Each kind says how it knows its addresses (its ``AddressRule``, in its own
module); this asks the kinds in turn.
"""

from __future__ import annotations

from collections.abc import Mapping

from tracker.config.kinds import AddressRule, Wanted, kinds
from tracker.errors import UserError


class AlreadyFollowed(UserError):
    """What was asked for is followed already, under ``name``: nothing to do."""

    def __init__(self, what: str, name: str):
        super().__init__(f"{what} is already followed, as the source {name!r}")
        self.name = name


def add_kinds() -> tuple[str, ...]:
    """The ``--kind`` of ``tracker sources add``: auto tells from the address."""
    return ("auto", *(name for name, rule in _rules().items()))


def _rules() -> dict[str, AddressRule]:
    """The kinds that can be added by address, the one that takes any address last."""
    rules = {name: k.address for name, k in kinds().items() if k.address is not None}
    return dict(sorted(rules.items(), key=lambda kv: kv[1].last))


def wanted_from(text: str, kind: str = "auto") -> Wanted:
    """The source ``text`` asks for: a GitHub repository's releases, a subreddit, Hugging
    Face's daily papers, Hacker News' front page, or (anything else) a feed.

    With ``kind`` given, ``text`` must be an address of that kind; a repository
    may also be written owner/repo, and a subreddit r/name.
    """
    text = text.strip()
    rules = _rules()
    if kind == "auto":
        for rule in rules.values():
            wanted = rule.recognise(text, False)
            if wanted is not None:
                return wanted
        raise UserError(f"{text[:200]!r} is not an address tracker can follow")
    if kind not in rules:
        known = ", ".join(add_kinds())
        raise UserError(f"{kind!r} is not a kind tracker can add; use one of {known}")
    wanted = rules[kind].recognise(text, True)
    if wanted is None:
        example = rules[kind].example
        raise UserError(f"{text[:200]!r} is not an address of a {kind} source; give {example}")
    return wanted


def follows(node: object, wanted: Wanted) -> bool:
    """Whether the entry ``node`` of sources.yaml already follows what ``wanted`` asks for."""
    rule = _rules().get(wanted.kind)
    return isinstance(node, Mapping) and rule is not None and rule.follows(node, wanted)


def added_note(kind: str) -> str:
    """What a person is told of a source of ``kind`` just added by its address."""
    rule = _rules().get(kind)
    return rule.note if rule else ""
