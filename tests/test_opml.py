"""OPML: a feed reader's export read into feeds with their folders, and written back."""

from __future__ import annotations

import pytest

from tracker.errors import UserError
from tracker.follow.opml import (
    MAX_OUTLINES,
    MAX_TAGS,
    NotAFeed,
    Subscription,
    read_opml,
    subscription_for,
    tags_of,
    write_opml,
)

#: Modelled on Inoreader's and NetNewsWire's exports: folders nested two deep, type="rss",
#: htmlUrl, titles with entities escaped once (&amp;) and twice (&amp;#8217;).
READER_EXPORT = b"""<?xml version="1.0" encoding="UTF-8"?>
<opml version="2.0">
  <head>
    <title>Jane's subscriptions in Inoreader</title>
    <dateCreated>Mon, 03 Mar 2025 09:12:44 +0000</dateCreated>
  </head>
  <body>
    <outline text="Simon Willison&#8217;s Weblog" title="Simon Willison&amp;#8217;s Weblog"
             type="rss" xmlUrl="https://simonwillison.net/atom/everything/"
             htmlUrl="https://simonwillison.net/"/>
    <outline text="AI &amp; ML" title="AI &amp; ML">
      <outline text="Lil'Log" title="Lil&apos;Log" type="rss"
               xmlUrl="https://lilianweng.github.io/index.xml" htmlUrl="https://lilianweng.github.io/"/>
      <outline text="Research" title="Research">
        <outline text="BAIR" title="The Berkeley Artificial Intelligence Research Blog" type="rss"
                 xmlUrl="https://bair.berkeley.edu/blog/feed.xml" htmlUrl="https://bair.berkeley.edu/blog/"/>
      </outline>
    </outline>
    <outline text="Engineering" title="Engineering">
      <outline text="Julia Evans" type="rss" xmlUrl="https://jvns.ca/atom.xml" htmlUrl="https://jvns.ca"/>
      <outline text="HN: 100+ points" title="HN: 100+ points" type="rss"
               xmlUrl="https://hnrss.org/frontpage?points=100&amp;comments=25"/>
      <outline text="Empty folder" title="Empty folder"/>
    </outline>
  </body>
</opml>
"""


def test_a_readers_export_gives_every_feed_with_its_folders_in_order() -> None:
    opml = read_opml(READER_EXPORT, "subs.opml")
    assert opml.title == "Jane's subscriptions in Inoreader"
    assert [(f.title, f.url, f.folders) for f in opml.feeds] == [
        ("Simon Willison’s Weblog", "https://simonwillison.net/atom/everything/", ()),
        ("Lil'Log", "https://lilianweng.github.io/index.xml", ("AI & ML",)),
        (
            "The Berkeley Artificial Intelligence Research Blog",
            "https://bair.berkeley.edu/blog/feed.xml",
            ("AI & ML", "Research"),
        ),
        ("Julia Evans", "https://jvns.ca/atom.xml", ("Engineering",)),
        (
            "HN: 100+ points",
            "https://hnrss.org/frontpage?points=100&comments=25",
            ("Engineering",),
        ),
    ]


def test_folders_become_slugged_lower_case_tags() -> None:
    feeds = read_opml(READER_EXPORT).feeds
    assert [tags_of(f) for f in feeds] == [
        [],
        ["ai-ml"],
        ["ai-ml", "research"],
        ["engineering"],
        ["engineering"],
    ]


def test_an_outline_that_is_neither_folder_nor_feed_is_skipped_with_the_reason() -> None:
    (empty,) = read_opml(READER_EXPORT, "subs.opml").skipped
    assert (empty.title, empty.line) == ("Empty folder", 23)
    assert "has no xmlUrl" in empty.reason


def test_a_link_to_a_page_is_skipped_with_the_command_that_finds_its_feed() -> None:
    opml = read_opml(
        b'<opml version="1.0"><body><outline text="A blog" type="link" '
        b'url="https://blog.example/"/></body></opml>'
    )
    assert opml.feeds == []
    assert opml.skipped == [
        NotAFeed(
            "A blog",
            1,
            "it has no xmlUrl, only the page https://blog.example/; add it with "
            "`tracker sources add https://blog.example/`, which finds the feed the page links to",
        )
    ]


def test_attribute_names_in_any_case_and_text_without_title_are_read() -> None:
    (feed,) = read_opml(
        b'<opml version="1.1"><head/><body><outline TEXT="Notes" xmlurl=" https://n.example/rss "/>'
        b"</body></opml>"
    ).feeds
    assert (feed.title, feed.url) == ("Notes", "https://n.example/rss")


def test_categories_add_tags_after_the_folders() -> None:
    (feed,) = read_opml(
        b'<opml version="2.0"><body><outline text="Blog"><outline text="x" '
        b'xmlUrl="https://x.example/f" category="/Blog,/Vendor News"/></outline></body></opml>'
    ).feeds
    assert tags_of(feed) == ["blog", "vendor-news"]


# --- what is refused, and how it is said ---------------------------------------------------


LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE opml [
  <!ENTITY lol "lol">
  <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
  <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
<opml version="2.0"><body><outline text="&lol3;" xmlUrl="https://x.example/f"/></body></opml>"""
EXTERNAL = (
    b'<?xml version="1.0"?><!DOCTYPE opml SYSTEM "file:///etc/passwd">'
    b'<opml version="2.0"><body/></opml>'
)


@pytest.mark.parametrize(
    ("document", "said"),
    [
        pytest.param(
            LAUGHS, r"evil\.opml:2: .*<!DOCTYPE> .*Remove the <!DOCTYPE", id="entity expansion"
        ),
        pytest.param(EXTERNAL, r"evil\.opml:1: .*<!DOCTYPE>", id="an external entity"),
    ],
)
def test_a_doctype_is_refused_before_anything_expands(document: bytes, said: str) -> None:
    with pytest.raises(UserError, match=said):
        read_opml(document, "evil.opml")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", r"subs\.opml is empty"),
        (b"  \n", r"subs\.opml is empty"),
        (
            b'<opml version="2.0"><body><outline text="Tom & Jerry" xmlUrl="https://t.example/f"/>',
            r"subs\.opml:1: not well-formed XML \(not well-formed \(invalid token\), column \d+\)\. "
            r"OPML is XML: a bare & must be written &amp;",
        ),
        (
            b'<opml version="2.0">\n<body>\n<outline text="A&nbsp;B" xmlUrl="https://a.example/f"/>'
            b"</body></opml>",
            r"subs\.opml:3: not well-formed XML \(undefined entity",
        ),
        (
            b'<opml version="2.0"><body><outline text="cut short"',
            r"subs\.opml:1: not well-formed XML",
        ),
        (
            b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title></channel></rss>',
            r"subs\.opml is a feed, not an OPML subscription list; follow it with "
            r"`tracker sources add",
        ),
        (
            b"<!DOCTYPE html><html><head><title>Feeds</title></head><body><p>hi</body></html>",
            r"subs\.opml is an HTML page, not OPML; export your subscriptions",
        ),
        (b"<html><body><p>unclosed</body></html>", r"subs\.opml is an HTML page"),
        (b'<?xml version="1.0"?><settings/>', r"its root element is <settings>, not <opml>"),
        (b'<opml version="2.0"><head><title>t</title></head></opml>', r"OPML without a <body>"),
    ],
    ids=[
        "empty",
        "blank",
        "bare ampersand",
        "html entity",
        "truncated",
        "a feed",
        "html page",
        "broken html",
        "other xml",
        "no body",
    ],
)
def test_what_is_not_an_opml_file_is_a_user_error_naming_the_file(
    data: bytes, message: str
) -> None:
    with pytest.raises(UserError, match=message):
        read_opml(data, "subs.opml")


# --- writing --------------------------------------------------------------------------------


def test_a_feed_sits_in_its_first_tags_folder_and_carries_all_its_tags() -> None:
    document = write_opml(
        [
            subscription_for(
                "simon-willison", "https://simonwillison.net/atom/everything/", ["blog"]
            ),
            subscription_for("hf", "https://huggingface.co/blog/feed.xml", ["blog", "vendor"]),
            subscription_for("untagged", "https://u.example/feed?a=1&b=2", []),
        ]
    )
    assert document.decode() == (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<opml version="2.0">\n'
        "  <head>\n"
        "    <title>tracker sources</title>\n"
        "  </head>\n"
        "  <body>\n"
        '    <outline text="blog" title="blog">\n'
        '      <outline type="rss" text="simon-willison" title="simon-willison" '
        'xmlUrl="https://simonwillison.net/atom/everything/" />\n'
        '      <outline type="rss" text="hf" title="hf" xmlUrl="https://huggingface.co/blog/feed.xml" '
        'category="/blog,/vendor" />\n'
        "    </outline>\n"
        '    <outline type="rss" text="untagged" title="untagged" '
        'xmlUrl="https://u.example/feed?a=1&amp;b=2" />\n'
        "  </body>\n"
        "</opml>\n"
    )


def test_what_is_written_reads_back_as_the_same_feeds_and_tags() -> None:
    followed = [
        ("a", "https://a.example/feed", ["blog"]),
        ("b", "https://b.example/feed?x=1&y=2", ["blog", "ai-ml", "research"]),
        ("c", "https://c.example/feed", []),
        ("d", "https://d.example/feed", ["papers", "blog"]),
    ]
    opml = read_opml(write_opml(subscription_for(*f) for f in followed))
    assert sorted((f.title, f.url, tags_of(f)) for f in opml.feeds) == followed
    assert opml.skipped == []


def test_a_title_with_markup_characters_survives_the_round_trip() -> None:
    (feed,) = read_opml(write_opml([Subscription("https://q.example/f", 'Q&A <"quotes">')])).feeds
    assert feed.title == 'Q&A <"quotes">'


def test_an_outline_nested_40000_deep_is_read_with_its_outermost_folders_only() -> None:
    depth = 40_000
    body = "<outline text='f'>" * depth + "<outline xmlUrl='https://deep.example/rss'/>"
    body += "</outline>" * depth
    document = f"<opml version='2.0'><body>{body}</body></opml>".encode()
    (feed,) = read_opml(document).feeds
    assert len(feed.folders) <= MAX_TAGS + 1 and tags_of(feed) == ["f"]


def test_a_file_of_more_outlines_than_any_reader_exports_is_refused() -> None:
    outlines = "<outline xmlUrl='https://x.example/rss'/>" * (MAX_OUTLINES + 1)
    document = f"<opml version='2.0'><body>{outlines}</body></opml>".encode()
    with pytest.raises(UserError, match="more than 50,000 outlines"):
        read_opml(document)
