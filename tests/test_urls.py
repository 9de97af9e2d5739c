"""Canonical URLs and arXiv ids: one spelling per thing."""

from __future__ import annotations

import pytest

from tracker.urls import canonical_url, split_arxiv_id


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://a.example/p?utm_source=rss&utm_medium=feed", "https://a.example/p"),
        ("https://a.example/p?id=3&fbclid=xyz&gclid=1", "https://a.example/p?id=3"),
        ("HTTPS://A.Example:443/Path#comments", "https://a.example/Path"),
        (
            "http://scripting.com/2017/06/25.html#a080631",
            "http://scripting.com/2017/06/25.html#a080631",
        ),
        ("https://a.example/p#:~:text=hello", "https://a.example/p"),
        ("http://a.example:8080/x?b=2&a=1", "http://a.example:8080/x?b=2&a=1"),
        ("https://a.example", "https://a.example/"),
        ("https://a.example/p?ref_src=twsrc%5Etfw&page=2", "https://a.example/p?page=2"),
    ],
)
def test_canonical_url_drops_tracking_and_noise_but_keeps_meaning(url: str, expected: str) -> None:
    assert canonical_url(url) == expected


def test_canonical_url_leaves_non_web_urls_alone() -> None:
    assert canonical_url("mailto:someone@example.com") == "mailto:someone@example.com"


@pytest.mark.parametrize(
    ("text", "paper", "version"),
    [
        ("2104.12255v2", "2104.12255", 2),
        ("2104.12255", "2104.12255", None),
        ("http://arxiv.org/abs/2104.12255v1", "2104.12255", 1),
        ("https://arxiv.org/pdf/2104.12255v3", "2104.12255", 3),
        ("https://arxiv.org/html/2401.00001v1", "2401.00001", 1),
        ("hep-ex/0406020v1", "hep-ex/0406020", 1),
        ("http://arxiv.org/abs/astro-ph/0601001", "astro-ph/0601001", None),
        ("arXiv:1707.08567", "1707.08567", None),
    ],
)
def test_arxiv_ids_lose_their_version_but_keep_it_aside(
    text: str, paper: str, version: int | None
) -> None:
    assert split_arxiv_id(text) == (paper, version)


def test_a_non_arxiv_string_is_refused() -> None:
    with pytest.raises(ValueError):
        split_arxiv_id("not-a-paper")


def test_credentials_never_survive_in_a_url_meant_for_display() -> None:
    from tracker.urls import without_credentials

    url = "http://user:sk-SECRET@llm.example:8000/v1?api-key=sk-SECRET#x"
    assert without_credentials(url) == "http://llm.example:8000/v1"
