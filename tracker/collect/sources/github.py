"""Releases of a GitHub repository: the public releases.atom feed, or the API with a token.

The Atom feed needs no account; with ``GITHUB_TOKEN`` set the REST API is
used instead, because it says which releases are pre-releases and gives the
release notes as written. Both are parsed by pure functions here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

from pydantic import Field, field_validator
from pydantic_core import PydanticCustomError

from tracker.collect.sources.base import CollectContext, parse_iso
from tracker.collect.sources.feed import FEED_ACCEPT, parse_feed, refreshed
from tracker.collect.sources.jsonfeed import looks_like_json
from tracker.config.kinds import AddressRule, SourceKind, SourceSettings, Wanted
from tracker.errors import HTTPStatusError, ParseError
from tracker.models import Fetched, Item, ItemKind, content_hash
from tracker.text import html_to_text, normalise_space, one_line
from tracker.urls import canonical_url

_REPO = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")


class GitHubReleasesSource(SourceSettings):
    """Releases of one GitHub repository."""

    kind: Literal["github_releases"]
    repo: str = Field(description="owner/name, e.g. vllm-project/vllm")
    include_prereleases: bool = Field(default=True, description="Keep rc/beta releases.")

    @field_validator("repo")
    @classmethod
    def _owner_name(cls, value: str) -> str:
        value = value.strip()
        match = re.match(r"^(?:https?://)?github\.com/([^/\s]+/[^/\s#?]+?)(?:\.git)?/?$", value)
        if match:
            raise PydanticCustomError(
                "repo",
                "'{value}' is a URL, not owner/name",
                {"value": value, "fix": f"write  repo: {match.group(1)}"},
            )
        if not _REPO.match(value):
            raise PydanticCustomError(
                "repo",
                "'{value}' is not owner/name",
                {"value": value, "fix": "write the repository as owner/name, e.g. ollama/ollama"},
            )
        return value


API_ACCEPT = "application/vnd.github+json"
_PRERELEASE = re.compile(
    r"\d[.\-_+]?(?:rc|alpha|beta|a|b|dev|pre|preview)\.?\d*$"  # 0.5b2, 1.0.0a1, 1.2rc1
    r"|[.\-_+](?:rc|alpha|beta|dev|pre|preview|nightly)\b"  # v1.2.0-rc1, v0.3.0.dev4
    r"|^nightly",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Release:
    tag: str
    name: str
    url: str
    notes: str
    prerelease: bool
    authors: tuple[str, ...] = ()
    published: datetime | None = None
    updated: datetime | None = None


def looks_prerelease(tag: str) -> bool:
    """The Atom feed has no pre-release flag; semver-style tags tell (v1.2.0-rc1, 0.5b2)."""
    return bool(_PRERELEASE.search(tag.lstrip("vV")))


def parse_releases_atom(content: bytes, url: str, repo: str, headers: Any = None) -> list[Release]:
    releases = []
    for entry in parse_feed(content, url, headers).entries:
        link = entry.link or ""
        tag = unquote(link.rsplit("/releases/tag/", 1)[1]) if "/releases/tag/" in link else ""
        tag = tag or (entry.id or "").rsplit("/", 1)[-1]
        releases.append(
            Release(
                tag=tag,
                name=one_line(entry.title) or tag,
                url=link or f"https://github.com/{repo}/releases/tag/{tag}",
                notes=html_to_text(entry.content or entry.summary),
                prerelease=looks_prerelease(tag),
                authors=entry.authors,
                published=entry.published,
                updated=entry.updated,
            )
        )
    return releases


def parse_releases_api(content: bytes, url: str, repo: str) -> list[Release]:
    try:
        data = json.loads(content)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ParseError(f"{url} is not valid JSON ({exc})") from None
    if not isinstance(data, list):
        message = data.get("message") if isinstance(data, dict) else None
        raise ParseError(
            f"{url} did not return a list of releases ({message or 'unexpected JSON'})"
        )
    releases = []
    for raw in data:
        if not isinstance(raw, dict) or raw.get("draft") or not raw.get("tag_name"):
            continue
        tag = str(raw["tag_name"])
        author = (raw.get("author") or {}).get("login")
        published = parse_iso(raw.get("published_at")) or parse_iso(raw.get("created_at"))
        releases.append(
            Release(
                tag=tag,
                name=" ".join(str(raw.get("name") or "").split()) or tag,
                url=str(raw.get("html_url") or f"https://github.com/{repo}/releases/tag/{tag}"),
                notes=normalise_space(str(raw.get("body") or "")),
                prerelease=bool(raw.get("prerelease")),
                authors=(str(author),) if author else (),
                published=published,
                updated=published,
            )
        )
    return releases


class GitHubReleasesCollector:
    """Collects the releases of one repository."""

    def collect(self, source: GitHubReleasesSource, ctx: CollectContext) -> Fetched:
        use_api = ctx.github_token is not None
        if source.url:
            url = source.url
        elif use_api:
            url = f"https://api.github.com/repos/{source.repo}/releases?per_page=30"
        else:
            url = f"https://github.com/{source.repo}/releases.atom"
        headers = {}
        if use_api and urlsplit(url).hostname == "api.github.com":
            headers = {
                "Authorization": f"Bearer {ctx.github_token}",
                "X-GitHub-Api-Version": "2022-11-28",
            }
        try:
            response = ctx.get(
                url, ctx.validators, accept=API_ACCEPT if use_api else FEED_ACCEPT, headers=headers
            )
        except HTTPStatusError as exc:
            if headers and exc.status in (401, 403):
                raise HTTPStatusError(
                    f"GitHub refused GITHUB_TOKEN ({exc.status}): the token is invalid, expired "
                    "or rate-limited; fix it, or unset GITHUB_TOKEN to use the public feed",
                    exc.status,
                ) from None
            raise
        if response.not_modified:
            return Fetched(
                items=[],
                not_modified=True,
                validators=refreshed(ctx.validators, response.validators),
            )
        if looks_like_json(response.content, response.content_type):
            releases = parse_releases_api(response.content, response.url, source.repo)
        else:
            releases = parse_releases_atom(
                response.content, response.url, source.repo, response.headers
            )
        items = []
        seen = set()
        for release in releases:
            if release.prerelease and not source.include_prereleases:
                continue
            item = release_item(source, release)
            if item.id not in seen:
                seen.add(item.id)
                items.append(item)
        return Fetched(items=items, validators=response.validators)


def release_item(source: GitHubReleasesSource, release: Release) -> Item:
    """A release as an item titled so it reads alone: "vllm v0.6.0", not just "v0.6.0"."""
    title = release.name
    if release.tag and release.tag not in title:
        title = f"{title} ({release.tag})"
    project = source.repo.split("/")[1]
    if project.lower() not in title.lower():
        title = f"{project} {title}"
    return Item(
        id=f"release:{source.repo}@{release.tag}",
        source=source.name,
        source_kind=source.kind,
        kind=ItemKind.RELEASE,
        url=canonical_url(release.url),
        title=title,
        text=release.notes,
        authors=release.authors,
        published=release.published,
        updated=release.updated,
        extra={"repo": source.repo, "tag": release.tag, "prerelease": release.prerelease},
        fingerprint=content_hash(release.tag, release.name, release.notes, release.prerelease),
    )


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


def repository_wanted(text: str, explicit: bool) -> Wanted | None:
    """A repository's address (or, with the kind named, owner/repo): its releases."""
    match = _GITHUB.match(text) or (_OWNER_REPO.match(text) if explicit else None)
    if match is None or match.group(1).lower() in _GITHUB_PAGES:
        return None
    owner, name = match.group(1), match.group(2).removesuffix(".git")
    return Wanted("github_releases", (("repo", f"{owner}/{name}"),), f"{owner}/{name}", name)


def _follows_repository(node: Mapping[str, Any], wanted: Wanted) -> bool:
    if node.get("kind") != "github_releases":
        return False
    return str(node.get("repo", "")).strip().casefold() == wanted.target.casefold()


KIND = SourceKind(
    name="github_releases",
    settings=GitHubReleasesSource,
    collector=GitHubReleasesCollector(),
    endpoint=("repo",),
    interval=timedelta(hours=6),
    address=AddressRule(
        repository_wanted,
        "a repository, such as https://github.com/vllm-project/vllm",
        _follows_repository,
    ),
    example="repo: owner/name",
)
