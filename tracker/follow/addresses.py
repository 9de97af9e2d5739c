"""What an address asks to follow: a GitHub repository's releases, a subreddit, Hugging
Face's Daily Papers, Hacker News, or (anything else) a feed. Pure.

``tracker sources add`` and the bot's ``/sources add`` take whatever a person pastes;
this decides the kind of source and its settings, and whether ``sources.yaml``
already follows it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ruamel.yaml.comments import CommentedMap

from tracker.errors import UserError
from tracker.follow.feed_probe import url_problem
from tracker.urls import canonical_url

#: The ``--kind`` of ``tracker sources add``: auto tells from the address.
ADD_KINDS = ("auto", "feed", "github_releases", "reddit", "hf_papers", "hackernews")

#: Points a Hacker News story needs before a source added by its address takes it.
HACKERNEWS_MIN_POINTS = 100

#: github.com/<first>/... that are GitHub's own pages, not a repository's owner.
_GITHUB_PAGES = frozenset(
    {
        *("about", "apps", "collections", "codespaces", "enterprise", "events", "explore"),
        *("features", "issues", "login", "marketplace", "new", "notifications", "orgs"),
        *("pricing", "pulls", "search", "settings", "site", "sponsors", "topics", "trending"),
        "users",
    }
)
_GITHUB = re.compile(
    r"^(?:https?://)?(?:www\.)?github\.com/([A-Za-z0-9_.-]+)/([A-Za-z0-9_.-]+?)(?:\.git)?"
    r"(?:/releases(?:\.atom)?(?:/[^?#]*)?)?/?(?:[?#].*)?$",
    re.IGNORECASE,
)
_OWNER_REPO = re.compile(r"^([A-Za-z0-9_.-]+)/([A-Za-z0-9_.-]+)$")
_REDDIT = re.compile(
    r"^(?:https?://)?(?:(?:www|old|new|np)\.)?reddit\.com/r/([A-Za-z0-9_]+)(?:[/?#].*)?$",
    re.IGNORECASE,
)
_SUBREDDIT = re.compile(r"^(?:/?r/)?([A-Za-z0-9_]{2,21})/?$")
_HF_PAPERS = re.compile(
    r"^(?:https?://)?(?:www\.)?huggingface\.co/papers/?(?:[?#].*)?$", re.IGNORECASE
)
_HACKERNEWS = re.compile(r"^(?:https?://)?news\.ycombinator\.com(?:[/?#].*)?$", re.IGNORECASE)


@dataclass(frozen=True)
class Wanted:
    """What an address given to ``sources add`` asks to follow, before anything is fetched."""

    kind: str
    #: What it follows, as the keys of its entry in sources.yaml (url:, repo:, ...).
    keys: tuple[tuple[str, str | int], ...]
    #: How to show what it follows: the feed's address, owner/repo, r/name, a site.
    target: str
    #: What to name it after when no name is given (a feed: its title, found later).
    name_hint: str = ""


class AlreadyFollowed(UserError):
    """What was asked for is followed already, under ``name``: nothing to do."""

    def __init__(self, what: str, name: str):
        super().__init__(f"{what} is already followed, as the source {name!r}")
        self.name = name


def wanted_from(text: str, kind: str = "auto") -> Wanted:
    """The source ``text`` asks for: a GitHub repository's releases, a subreddit, Hugging
    Face's daily papers, Hacker News' front page, or (anything else) a feed.

    With ``kind`` given, ``text`` must be an address of that kind; a repository
    may also be written owner/repo, and a subreddit r/name.
    """
    text = text.strip()
    if kind == "auto":
        for guess in (_github, _reddit, _hf_papers, _hackernews):
            wanted = guess(text, False)
            if wanted is not None:
                return wanted
        return feed_wanted(text)
    if kind == "feed":
        return feed_wanted(text)
    parsers = {
        "github_releases": (_github, "a repository, such as https://github.com/vllm-project/vllm"),
        "reddit": (_reddit, "a subreddit, such as https://www.reddit.com/r/LocalLLaMA"),
        "hf_papers": (_hf_papers, "https://huggingface.co/papers"),
        "hackernews": (_hackernews, "https://news.ycombinator.com"),
    }
    if kind not in parsers:
        kinds = ", ".join(ADD_KINDS)
        raise UserError(f"{kind!r} is not a kind tracker can add; use one of {kinds}")
    parse, example = parsers[kind]
    wanted = parse(text, True)
    if wanted is None:
        raise UserError(f"{text[:200]!r} is not an address of a {kind} source; give {example}")
    return wanted


def feed_wanted(url: str) -> Wanted:
    problem = url_problem(url)
    if problem:
        raise UserError(problem)
    return Wanted("feed", (("url", url),), url)


def _github(text: str, explicit: bool) -> Wanted | None:
    match = _GITHUB.match(text) or (_OWNER_REPO.match(text) if explicit else None)
    if match is None or match.group(1).lower() in _GITHUB_PAGES:
        return None
    owner, name = match.group(1), match.group(2).removesuffix(".git")
    return Wanted("github_releases", (("repo", f"{owner}/{name}"),), f"{owner}/{name}", name)


def _reddit(text: str, explicit: bool) -> Wanted | None:
    match = _REDDIT.match(text) or (_SUBREDDIT.match(text) if explicit else None)
    if match is None:
        return None
    name = match.group(1)
    return Wanted("reddit", (("subreddit", name),), f"r/{name}", f"r/{name}")


def _hf_papers(text: str, explicit: bool) -> Wanted | None:
    if not _HF_PAPERS.match(text):
        return None
    return Wanted("hf_papers", (), "https://huggingface.co/papers", "hf-papers")


def _hackernews(text: str, explicit: bool) -> Wanted | None:
    if not _HACKERNEWS.match(text):
        return None
    return Wanted(
        "hackernews",
        (("min_points", HACKERNEWS_MIN_POINTS),),
        "https://news.ycombinator.com",
        "hacker-news",
    )


def follows(node: object, wanted: Wanted) -> bool:
    """Whether the entry ``node`` of sources.yaml already follows what ``wanted`` asks for."""
    if not isinstance(node, CommentedMap):
        return False
    kind = str(node.get("kind", ""))
    if wanted.kind == "feed":
        url = node.get("url")
        return url is not None and url_key(url) == url_key(wanted.target)
    if kind != wanted.kind:
        return False
    if kind == "github_releases":
        return str(node.get("repo", "")).strip().casefold() == wanted.target.casefold()
    if kind == "reddit":
        have = str(node.get("subreddit", "")).strip().rstrip("/").rsplit("/", 1)[-1]
        return f"r/{have}".casefold() == wanted.target.casefold()
    if kind == "hackernews":  # another query of Hacker News is another source
        return not str(node.get("query", "") or "").strip()
    return kind == "hf_papers"


def url_key(url: str) -> str:
    """One spelling per feed address: http and https, a trailing slash and case of the host
    do not make another feed."""
    canonical = canonical_url(str(url))
    return re.sub(r"^https?://", "", canonical).rstrip("/")
