"""tracker.deliver.discord: every Discord limit, at its boundary, on every message."""

from __future__ import annotations

import json
import random
import re
from datetime import datetime
from urllib.parse import unquote

import pytest

from tracker.deliver.digest import PINNED
from tracker.deliver.discord import (
    DiscordMessage,
    Embed,
    EmbedField,
    escape_markdown_and_mentions,
    render_discord,
    story_embed,
)
from tracker.models import Digest, DigestEntry, DigestSection, ItemKind

NOW = datetime(2026, 11, 24, 7, 30)
ZWSP = "\u200b"
SPECIALS = "\\*_~`|>#[]()"
MASKED_LINK = re.compile(r"\[([^\]]*)\]\((https?://[^)\s]+)\)")
MORE_LINKS = re.compile(r"\(\+(\d+) more links?\)")
MENTION = re.compile(r"@(everyone|here)|<[@#]", re.IGNORECASE)


def u16(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def validate(messages: list[DiscordMessage]) -> list[DiscordMessage]:
    """Every Discord limit on every message (counted here independently of the module)."""
    assert messages, "a digest always renders to at least one message"
    for m in messages:
        assert m.content or m.embeds, "Discord refuses an empty message"
        assert u16(m.content) <= 2000
        assert len(m.embeds) <= 10
        assert len(m.story_ids) == len(m.embeds)
        total = 0
        for e in m.embeds:
            texts = [e.title or "", e.description or "", e.footer or ""]
            assert u16(e.title or "") <= 256
            assert u16(e.description or "") <= 4096
            assert u16(e.footer or "") <= 2048
            assert len(e.fields) <= 25
            for f in e.fields:
                assert 0 < u16(f.name) <= 256 and 0 < u16(f.value) <= 1024
                texts += [f.name, f.value]
            if e.url is not None:
                assert re.fullmatch(r"https?://\S+", e.url) and len(e.url) <= 2048
            size = sum(u16(t) for t in texts)
            assert e.size() == size
            total += size
            for text in texts:
                assert not MENTION.search(text), text
        assert total <= 6000
        assert not MENTION.search(m.content)
        payload = m.to_payload()
        assert payload["allowed_mentions"] == {"parse": []}
        assert payload["content"] == m.content and len(payload["embeds"]) == len(m.embeds)
        json.dumps(payload, ensure_ascii=False).encode("utf-8")  # sendable as JSON
    return messages


def entry(
    n: int | str = 1,
    *,
    title: str = "A story",
    summary: str | None = "What it is about.",
    links: tuple[str, ...] = ("https://example.com/a",),
    sources: tuple[str, ...] = ("simon-willison",),
    kind: ItemKind = ItemKind.PAPER,
    update: str | None = None,
) -> DigestEntry:
    return DigestEntry(
        story_id=f"s{n}",
        kind=kind,
        title=title,
        summary=summary,
        sources=sources,
        links=links,
        update=update,
    )


def digest(*entries: DigestEntry, name: str = "Papers", left_out: int = 0) -> Digest:
    return Digest(NOW, None, (DigestSection(name, tuple(entries)),), left_out=left_out)


def render_one(e: DigestEntry) -> Embed:
    messages = validate(render_discord(digest(e)))
    assert len(messages) == 1 and len(messages[0].embeds) == 1
    return messages[0].embeds[0]


def unescape(text: str) -> str:
    """What Discord shows: backslash escapes and zero-width spaces vanish."""
    return re.sub(r"\\([^0-9A-Za-z\s])", r"\1", text).replace(ZWSP, "")


def links_accounted(embed: Embed, links: list[str]) -> None:
    """Every link is in the embed, or counted by "(+N more links)"."""
    description = embed.description or ""
    shown = [unquote(url) for _, url in MASKED_LINK.findall(description)]
    more = MORE_LINKS.search(description)
    assert len(shown) + (int(more.group(1)) if more else 0) == len(links)
    assert all(url in links for url in shown)
    assert shown == [link for link in links if link in shown], "links keep their order"


# --- titles -----------------------------------------------------------------------------------


def test_title_of_300_chars_is_cut_at_a_word_boundary() -> None:
    title = " ".join(f"word{i:02d}" for i in range(60))[:300]
    embed = render_one(entry(title=title))
    assert embed.title is not None and embed.title.endswith("…")
    kept = embed.title[:-1]
    assert u16(embed.title) <= 256 and title.startswith(kept)
    assert title[len(kept)] == " ", "cut between words, not inside one"
    assert len(kept) > 240, "the cut is at the last boundary that fits, not earlier"


@pytest.mark.parametrize(
    ("title", "shown"),
    [
        pytest.param("a" * 256, "a" * 256, id="256 is kept"),
        pytest.param("a" * 249 + " " + "b" * 6, "a" * 249 + " " + "b" * 6, id="256 with a space"),
        pytest.param("a" * 249 + " " + "b" * 7, "a" * 249 + "…", id="257 is cut"),
    ],
)
def test_a_title_at_the_limit_is_kept_and_one_over_is_cut(title: str, shown: str) -> None:
    assert render_one(entry(title=title)).title == shown


@pytest.mark.parametrize(
    "unit",
    [
        pytest.param("👨\u200d👩\u200d👧", id="a family: one grapheme, 8 UTF-16 units"),
        pytest.param("e\u0301", id="e and a combining acute"),
        pytest.param("🇫🇷", id="a flag"),
        pytest.param("👍🏽", id="a skin-toned thumb"),
        pytest.param("字", id="a CJK character"),
    ],
)
def test_giant_single_word_title_is_cut_between_graphemes(unit: str) -> None:
    result = render_one(entry(title=unit * 300)).title
    assert result is not None and result.endswith("…")
    kept = result[:-1]
    assert kept and len(kept) % len(unit) == 0 and kept == unit * (len(kept) // len(unit))
    assert u16(result) <= 256 and u16(result) + u16(unit) > 256


def test_title_with_escapes_counts_the_escaped_length() -> None:
    title = "*" * 200  # 400 characters once escaped
    result = render_one(entry(title=title)).title
    assert result is not None and u16(result) <= 256 and result.endswith("…")
    assert not result[:-1].endswith("\\") or result[:-1].endswith("\\*"), "no split escape"
    assert unescape(result[:-1]) == "*" * (len(result[:-1]) // 2)


# --- descriptions -------------------------------------------------------------------------------


def test_summary_of_5000_chars_is_shortened_and_links_kept() -> None:
    words = [f"token{i}" for i in range(900)]
    summary = " ".join(words)
    assert len(summary) > 5000
    links = ("https://arxiv.org/abs/2411.01234", "https://example.com/post")
    embed = render_one(entry(summary=summary, links=links))
    description = embed.description or ""
    assert u16(description) <= 4096
    shown_summary, links_line = description.rsplit("\n\n", 1)
    assert shown_summary.endswith("…") and summary.startswith(shown_summary[:-1])
    assert summary[len(shown_summary) - 1] == " "
    assert len(shown_summary) > 3500, "the summary uses the room the links leave"
    links_accounted(embed, list(links))
    assert "more link" not in links_line


def test_summary_exactly_at_the_description_limit() -> None:
    # 2048 emoji are 4096 UTF-16 units: exactly the limit, so kept whole.
    whole = render_one(entry(summary="😀" * 2048, links=())).description
    assert whole == "😀" * 2048
    cut = render_one(entry(summary="😀" * 2048 + "a", links=())).description
    assert cut is not None and cut.endswith("…") and u16(cut) <= 4096
    assert cut[:-1] == "😀" * 2047, "a surrogate pair is never split"


def test_cjk_summary_near_the_limit() -> None:
    summary = "深度学习模型的推理速度。" * 500  # 6000 characters, no spaces
    embed = render_one(entry(summary=summary, title="大型语言模型 " * 50))
    assert u16(embed.description or "") <= 4096 and u16(embed.title or "") <= 256
    assert embed.description and embed.description.split("\n\n")[0].endswith("…")


def test_story_with_60_short_links_shows_them_all() -> None:
    links = [f"https://ex{i}.org/p" for i in range(60)]
    embed = render_one(entry(links=tuple(links)))
    links_accounted(embed, links)
    assert "more link" not in (embed.description or "")
    assert embed.url == links[0]


def test_story_with_60_long_links_keeps_what_fits_and_counts_the_rest() -> None:
    links = [f"https://site{i}.example.com/" + "path/" * 30 + str(i) for i in range(60)]
    embed = render_one(entry(links=tuple(links), summary="word " * 1000))
    description = embed.description or ""
    more = MORE_LINKS.search(description)
    assert more is not None and 0 < int(more.group(1)) < 60
    links_accounted(embed, links)
    assert "word" in description, "the summary keeps its share"


def test_url_with_parenthesis_works_as_a_masked_link() -> None:
    link = "https://en.wikipedia.org/wiki/Transformer_(deep_learning_architecture)"
    embed = render_one(entry(links=(link, "https://x.org/a b")))
    description = embed.description or ""
    found = MASKED_LINK.findall(description)
    assert [label for label, _ in found] == ["en.wikipedia.org", "x.org"]
    assert (
        found[0][1] == "https://en.wikipedia.org/wiki/Transformer_%28deep_learning_architecture%29"
    )
    assert unquote(found[0][1]) == link and unquote(found[1][1]) == "https://x.org/a b"
    assert embed.url == found[0][1]


def test_a_link_that_is_not_http_is_shown_as_text_not_as_a_link() -> None:
    embed = render_one(entry(links=("javascript:alert(1)", "https://ok.org/")))
    description = embed.description or ""
    assert "javascript:alert\\(1\\)" in description and "](javascript" not in description
    assert embed.url == "https://ok.org/", "the title links to the first usable link"


def test_update_line_comes_first() -> None:
    embed = render_one(entry(update="v2 adds a *new* benchmark", summary="The summary."))
    description = embed.description or ""
    first, rest = description.split("\n\n", 1)
    assert first == "**Updated:** v2 adds a \\*new\\* benchmark"
    assert rest.startswith("The summary.")
    assert "Updated" not in (render_one(entry()).description or "")


def test_sources_in_the_footer() -> None:
    assert render_one(entry(sources=("arxiv-cs-cl", "simon-willison"))).footer == (
        "via arxiv-cs-cl, simon-willison"
    )
    assert render_one(entry(sources=())).footer is None
    many = tuple(f"source-{i:03d}-" + "x" * 40 for i in range(100))
    footer = render_one(entry(sources=many)).footer or ""
    assert footer.startswith("via source-000-") and re.search(r"\(\+\d+ more\)$", footer)


# --- escaping -----------------------------------------------------------------------------------


def test_markdown_specials_are_escaped_and_read_the_same() -> None:
    text = r"**bold** _it_ ~~s~~ `code` ||spoiler|| > quote # head [a](b) \ back"
    escaped = escape_markdown_and_mentions(text)
    assert unescape(escaped) == text
    assert not any(ch in re.sub(r"\\.", "", escaped) for ch in SPECIALS), escaped
    embed = render_one(entry(title=text, summary="- item\n1. first\n# heading\n> quote"))
    assert unescape(embed.title or "") == text
    summary = (embed.description or "").split("\n\n")[0]
    assert summary == "\\- item\n1\\. first\n\\# heading\n\\> quote"
    assert unescape(summary) == "- item\n1. first\n# heading\n> quote"


def test_mentions_in_scraped_text_are_harmless() -> None:
    nasty = "@everyone @here <@123> <@!123> <@&456> <#789> </cmd:1> <:e:1> <t:1700000000>"
    embed = render_one(
        entry(title=nasty, summary=nasty, sources=("@everyone", "<@123>"), update=nasty)
    )
    for text in (embed.title, embed.description, embed.footer):
        assert text is not None and not MENTION.search(text)
        assert "<:" not in text and "</" not in text and "<t:" not in text
    assert unescape(embed.title or "") == nasty
    messages = validate(render_discord(digest(entry(), name="@here <#1> news")))
    assert "@\u200bhere" in messages[0].content


# --- messages -----------------------------------------------------------------------------------


def test_100_stories_split_into_messages_in_order() -> None:
    entries = [
        entry(i, title=f"Story {i}", summary=("Lorem ipsum dolor sit amet. " * (i % 40 + 1)))
        for i in range(100)
    ]
    messages = validate(render_discord(digest(*entries)))
    assert len(messages) >= 10
    ids = [sid for m in messages for sid in m.story_ids]
    assert ids == [f"s{i}" for i in range(100)], "every story once, in order"
    for m in messages:
        assert [e.title for e in m.embeds] == [f"Story {sid[1:]}" for sid in m.story_ids]
    assert messages[0].content.startswith("**AI engineering digest — 24 Nov 2026**")
    assert all(m.content == "**📄 Papers** (continued)" for m in messages[1:])


def test_six_thousand_characters_fit_one_message_and_one_more_does_not() -> None:
    def sized(n: int, size: int) -> DigestEntry:  # embed size = 1 (title) + summary
        return entry(n, title="T", summary="x" * (size - 1), links=(), sources=())

    exact = validate(render_discord(digest(*(sized(i, 2000) for i in range(3)))))
    assert [len(m.embeds) for m in exact] == [3]
    assert sum(e.size() for e in exact[0].embeds) == 6000
    over = validate(render_discord(digest(sized(0, 2000), sized(1, 2000), sized(2, 2001))))
    assert [len(m.embeds) for m in over] == [2, 1]


def test_ten_embeds_per_message() -> None:
    ten = validate(render_discord(digest(*(entry(i) for i in range(10)))))
    assert [len(m.embeds) for m in ten] == [10]
    eleven = validate(render_discord(digest(*(entry(i) for i in range(11)))))
    assert [len(m.embeds) for m in eleven] == [10, 1]
    assert eleven[1].story_ids == ("s10",)


def test_one_story_per_message_names_the_section_once_above_its_first_story() -> None:
    messages = validate(render_discord(digest(*(entry(i) for i in range(3))), embeds_per_message=1))
    assert [m.story_ids for m in messages] == [("s0",), ("s1",), ("s2",)]
    assert messages[0].content.endswith("**📄 Papers**")
    assert [m.content for m in messages[1:]] == ["", ""]
    assert all("continued" not in m.content for m in messages)


def test_the_largest_possible_story_fits_a_message_alone() -> None:
    huge = "w" * 3000
    e = entry(
        title=huge,
        summary=(huge + " ") * 5,
        links=tuple(f"https://{i}.{huge[:200]}.org/" for i in range(80)),
        sources=tuple(huge[:500] for _ in range(20)),
        update=huge,
    )
    embed = story_embed(e)
    assert embed.size() <= 6000
    assert [len(m.embeds) for m in validate(render_discord(digest(e, e, e)))] == [1, 1, 1]


def test_sections_start_new_messages_with_their_headers() -> None:
    d = Digest(
        NOW,
        None,
        (
            DigestSection(PINNED, (entry(0, kind=ItemKind.RELEASE),)),
            DigestSection("Papers", (entry(1), entry(2))),
            DigestSection("Posts", (entry(3, kind=ItemKind.POST),)),
            DigestSection("Releases", (entry(4, kind=ItemKind.RELEASE),)),
        ),
        left_out=7,
    )
    messages = validate(render_discord(d))
    assert [m.story_ids for m in messages] == [("s0",), ("s1", "s2"), ("s3",), ("s4",)]
    assert messages[0].content == (
        "**AI engineering digest — 24 Nov 2026**\n"
        "7 more stories didn't make the cut.\n\n"
        "**⚠️ Breaking changes in your stack**"
    )
    assert [m.content for m in messages[1:]] == ["**📄 Papers**", "**✍️ Posts**", "**📦 Releases**"]
    assert messages[0].embeds[0].color != messages[1].embeds[0].color, "pinned stands out"


def test_no_left_out_note_when_nothing_was_left_out() -> None:
    content = validate(render_discord(digest(entry())))[0].content
    assert content == "**AI engineering digest — 24 Nov 2026**\n\n**📄 Papers**"
    one = validate(render_discord(digest(entry(), left_out=1)))[0].content
    assert "1 more story didn't make the cut." in one


def test_content_stays_within_2000_with_a_huge_section_name() -> None:
    messages = validate(render_discord(digest(entry(), name="Section " * 1000, left_out=10**30)))
    assert messages[0].content.startswith("**AI engineering digest")
    assert u16(messages[0].content) <= 2000


def test_quiet_day_is_one_message_without_embeds() -> None:
    for d in (
        Digest(NOW, None),
        Digest(NOW, NOW, (DigestSection("Papers", ()),)),
    ):
        messages = validate(render_discord(d))
        assert len(messages) == 1
        assert messages[0].embeds == () and messages[0].story_ids == ()
        assert messages[0].content.startswith("**AI engineering digest — 24 Nov 2026**")
        assert "quiet day" in messages[0].content


def test_payload_shape() -> None:
    e = Embed(
        title="t",
        description="d",
        url="https://x.org/",
        fields=(EmbedField("n", "v", inline=True),),
        footer="f",
        color=1,
    )
    payload = DiscordMessage(content="c", embeds=(e,), story_ids=("s1",)).to_payload()
    assert payload == {
        "content": "c",
        "embeds": [
            {
                "type": "rich",
                "title": "t",
                "description": "d",
                "url": "https://x.org/",
                "color": 1,
                "fields": [{"name": "n", "value": "v", "inline": True}],
                "footer": {"text": "f"},
            }
        ],
        "allowed_mentions": {"parse": []},
    }
    assert e.size() == 5
    assert Embed(title="😀", fields=(EmbedField("字", "e\u0301"),)).size() == 2 + 1 + 2
    assert DiscordMessage(content="quiet").to_payload()["allowed_mentions"] == {"parse": []}


# --- property-style ---------------------------------------------------------------------------

_PIECES = [
    "word",
    "AI",
    "the",
    " ",
    " ",
    " ",
    "\n",
    "\n\n",
    *SPECIALS,
    "@everyone",
    "@here",
    "<@123>",
    "<@&5>",
    "<#9>",
    "😀",
    "👍🏽",
    "👨\u200d👩\u200d👧",
    "🇯🇵",
    "字",
    "模型",
    "e\u0301",
    "- ",
    "1. ",
    "é",
    "\t",
    "x" * 50,
]


def _text(rng: random.Random, max_pieces: int) -> str:
    return "".join(rng.choices(_PIECES, k=rng.randint(0, max_pieces)))


def _link(rng: random.Random, i: int) -> str:
    path = "".join(rng.choices("abc/()_-.? 字", k=rng.randint(0, 80)))
    return f"https://host{i}.example.org/{path}"


def test_random_digests_respect_every_limit() -> None:
    rng = random.Random(20261124)
    for _ in range(200):
        sections = []
        n = 0
        for name in rng.sample(["Papers", "Posts", "Releases", PINNED, _text(rng, 30)], 3):
            entries = []
            for _ in range(rng.choice([0, 1, 3, 12])):
                n += 1
                links = tuple(
                    dict.fromkeys(_link(rng, j) for j in range(rng.choice([0, 1, 3, 70])))
                )
                entries.append(
                    entry(
                        n,
                        title=_text(rng, rng.choice([5, 100, 400])),
                        summary=rng.choice([None, _text(rng, rng.choice([10, 500, 3000]))]),
                        links=links,
                        sources=tuple(_text(rng, 10) for _ in range(rng.randint(0, 5))),
                        kind=rng.choice(list(ItemKind)),
                        update=rng.choice([None, "updated", _text(rng, 200)]),
                    )
                )
            sections.append(DigestSection(name, tuple(entries)))
        d = Digest(NOW, None, tuple(sections), left_out=rng.choice([0, 1, 5000]))
        messages = validate(render_discord(d))
        if d.quiet:
            assert len(messages) == 1 and not messages[0].embeds
            continue
        assert [s for m in messages for s in m.story_ids] == [e.story_id for e in d.entries]
        by_id = {e.story_id: e for e in d.entries}
        for m in messages:
            for sid, embed in zip(m.story_ids, m.embeds, strict=True):
                e = by_id[sid]
                links_accounted(embed, list(e.links))
                title = unescape(embed.title or "")
                flat = " ".join(e.title.split()) or "(untitled)"
                assert flat.startswith(title.removesuffix("…")), (flat, title)


def test_a_long_answer_is_split_between_sentences_and_keeps_its_citations() -> None:
    from tracker.deliver.discord_answer import render_answer

    sentences = [
        f"Sentence number {i} says something about @everyone and models [1]." for i in range(120)
    ]
    citations = [
        (1, "A paper <@123>", "https://arxiv.org/abs/2411.01234"),
        (2, "A post", "https://x.example/a_(b)"),
    ]
    messages = render_answer(" ".join(sentences), citations)
    assert len(messages) > 1
    for message in messages:
        validate([message])
        assert len(message.content.encode("utf-16-le")) // 2 <= 2000
        assert "@everyone" not in message.content and "<@123>" not in message.content
    text = " ".join(m.content for m in messages)
    for i in range(120):
        assert f"Sentence number {i} says" in text  # no sentence lost or cut
    assert (
        "[1] A paper" in messages[-1].content
        and "(https://arxiv.org/abs/2411.01234)" in messages[-1].content
    )
    assert "%28b%29" in messages[-1].content
