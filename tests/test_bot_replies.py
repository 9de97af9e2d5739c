"""The rules every bot message follows: safe links, escaped text, Discord timestamps, and
content packed into messages of at most 2,000 characters."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.replies import link, pack, safe_url, timestamp


def test_only_http_links_become_links():
    assert safe_url("https://example.org/a") == "https://example.org/a"
    assert safe_url("javascript:alert(1)") is None
    assert safe_url("ftp://example.org/x") is None
    assert safe_url("https://exa mple.org/") is None


def test_characters_that_would_end_a_markdown_link_are_encoded():
    assert safe_url("https://en.wikipedia.org/wiki/Foo_(bar)") == (
        "https://en.wikipedia.org/wiki/Foo_%28bar%29"
    )


def test_a_link_label_is_escaped_and_a_bad_url_leaves_plain_text():
    assert (
        link("**Bold** @here", "https://x.org") == "[\\*\\*Bold\\*\\* @\u200bhere](https://x.org)"
    )
    assert link("Title", "not a url") == "Title"


def test_timestamps_render_in_each_readers_zone():
    assert timestamp(datetime(2026, 1, 1, tzinfo=UTC)) == "<t:1767225600:R>"
    assert timestamp(datetime(2026, 1, 1)) == "<t:1767225600:R>"  # naive means UTC


def test_lines_are_packed_without_splitting_one():
    lines = ["a" * 900, "b" * 900, "c" * 900]
    assert pack(lines) == ["a" * 900 + "\n" + "b" * 900, "c" * 900]
    parts = pack(["x" * 2500])  # longer than a message: cut, nothing lost
    assert all(len(p) <= 2000 for p in parts) and "".join(parts) == "x" * 2500
