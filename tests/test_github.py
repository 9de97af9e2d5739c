"""GitHub releases: from the public Atom feed, or from the API when a token is set."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.conftest import DATA, FeedServer
from tracker.collect.http import HttpClient
from tracker.collect.sources.base import CollectContext
from tracker.collect.sources.github import (
    GitHubReleasesCollector,
    GitHubReleasesSource,
    looks_prerelease,
)
from tracker.models import ItemKind
from tracker.settings import Settings


def collect(settings: Settings, url: str, token: str | None = None, **fields):
    source = GitHubReleasesSource(
        name="infer", kind="github_releases", repo="acme/infer", url=url, **fields
    )
    with HttpClient(settings) as http:
        return GitHubReleasesCollector().collect(
            source, CollectContext(http=http, github_token=token)
        )


def test_releases_atom_gives_tag_notes_and_prerelease_flag(
    settings: Settings, server: FeedServer
) -> None:
    fetched = collect(settings, server.add("/releases.atom", (DATA / "releases.atom").read_bytes()))
    rc, stable = fetched.items
    assert rc.id == "release:acme/infer@v0.7.0rc1" and rc.extra["prerelease"] is True
    assert stable.extra == {"repo": "acme/infer", "tag": "v0.6.0", "prerelease": False}
    assert stable.kind is ItemKind.RELEASE
    assert stable.title == "infer 0.6.0 (v0.6.0)"
    assert rc.title == "infer v0.7.0rc1"
    assert "Removed the legacy --max-tokens flag" in stable.text and "<li>" not in stable.text
    assert stable.url == "https://github.com/acme/infer/releases/tag/v0.6.0"
    assert stable.published == datetime(2026, 11, 10, 12, 0, tzinfo=UTC)


def test_api_releases_are_parsed_and_drafts_skipped(settings: Settings, server: FeedServer) -> None:
    url = server.add(
        "/api/releases", (DATA / "releases_api.json").read_bytes(), content_type="application/json"
    )
    fetched = collect(settings, url, token="ghp_secret")
    assert [i.extra["tag"] for i in fetched.items] == ["v0.7.0rc1", "v0.6.0"]
    assert fetched.items[0].extra["prerelease"] is True
    assert fetched.items[1].authors == ("octocat",)
    assert server.hits_for("/api/releases")[0].headers["accept"] == "application/vnd.github+json"


def test_prereleases_can_be_left_out(settings: Settings, server: FeedServer) -> None:
    fetched = collect(
        settings,
        server.add("/r.atom", (DATA / "releases.atom").read_bytes()),
        include_prereleases=False,
    )
    assert [i.extra["tag"] for i in fetched.items] == ["v0.6.0"]


def test_prerelease_tags_are_recognised() -> None:
    for tag in ("v1.2.0-rc1", "0.5b2", "v2.0.0-beta.3", "1.0.0a1", "v0.3.0.dev4", "nightly"):
        assert looks_prerelease(tag), tag
    for tag in ("v1.2.0", "b4123", "0.6.0", "v2024.11.1", "release-7"):
        assert not looks_prerelease(tag), tag


def _api_transport(seen: list):
    import httpx

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        wants_token = request.url.host == "api.github.com"
        if wants_token and request.headers.get("authorization") != "Bearer ghp_secret":
            return httpx.Response(401, json={"message": "Bad credentials"})
        return httpx.Response(
            200,
            content=(DATA / "releases_api.json").read_bytes(),
            headers={"content-type": "application/json", "etag": '"abc"'},
        )

    return httpx.MockTransport(handler)


def test_the_token_goes_to_api_github_com_and_nowhere_else(settings: Settings) -> None:
    seen: list = []
    source = GitHubReleasesSource(name="infer", kind="github_releases", repo="acme/infer")
    with HttpClient(settings, transport=_api_transport(seen)) as http:
        fetched = GitHubReleasesCollector().collect(
            source, CollectContext(http=http, github_token="ghp_secret")
        )
        mirror = GitHubReleasesSource(
            name="m",
            kind="github_releases",
            repo="acme/infer",
            url="https://mirror.example/releases",
        )
        GitHubReleasesCollector().collect(
            mirror, CollectContext(http=http, github_token="ghp_secret")
        )
    assert str(seen[0].url) == "https://api.github.com/repos/acme/infer/releases?per_page=30"
    assert seen[0].headers["authorization"] == "Bearer ghp_secret"
    assert "authorization" not in seen[1].headers  # a mirror never sees the token
    assert [i.extra["tag"] for i in fetched.items] == ["v0.7.0rc1", "v0.6.0"]


def test_a_rejected_token_is_named_without_revealing_it(settings: Settings) -> None:
    import pytest

    from tracker.errors import HTTPStatusError

    source = GitHubReleasesSource(name="infer", kind="github_releases", repo="acme/infer")
    with (
        HttpClient(settings, transport=_api_transport([])) as http,
        pytest.raises(HTTPStatusError) as caught,
    ):
        GitHubReleasesCollector().collect(
            source, CollectContext(http=http, github_token="ghp_wrong")
        )
    assert "GITHUB_TOKEN" in str(caught.value) and "ghp_wrong" not in str(caught.value)
