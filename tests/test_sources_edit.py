"""/sources add and remove, and imports: only feeds that work (public ones, from Discord), found
from a page when a page is given, and edits that leave the rest of the file as it was."""

from __future__ import annotations

import difflib
import os
import stat
import threading
from pathlib import Path

import pytest

from tests.conftest import DATA, FeedServer
from tracker.config import load_config
from tracker.errors import UserError
from tracker.follow import edit as sources_edit
from tracker.follow import yaml_splice
from tracker.follow.addresses import wanted_from
from tracker.follow.edit import add_source, import_feeds, remove_source
from tracker.follow.feed_probe import check_feed_url, probe_feed, read_page
from tracker.follow.opml import Subscription
from tracker.settings import Settings

REPO_SOURCES = Path(__file__).parent.parent / "sources.yaml"
FEED = "https://inference.example/feed.xml"


def allow_all(host: str) -> bool:
    """The test server is on 127.0.0.1, which the real check rightly refuses."""
    return True


@pytest.fixture
def repo_copy(tmp_path: Path) -> Path:
    """A copy of the hand-written sources.yaml of this repository, alone in its folder."""
    path = tmp_path / "conf" / "sources.yaml"
    path.parent.mkdir()
    path.write_bytes(REPO_SOURCES.read_bytes())
    return path


# --- which addresses may be followed --------------------------------------------------


@pytest.mark.parametrize(
    "url", ["ftp://example.com/feed.xml", "file:///etc/passwd", "javascript:alert(1)"]
)
def test_only_http_and_https_addresses_are_followed(url: str) -> None:
    with pytest.raises(UserError, match="http and https"):
        check_feed_url(url, is_public=allow_all)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/feed",
        "http://10.0.0.1/feed",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]:8080/feed",
        "http://localhost/feed",
    ],
)
def test_loopback_private_and_link_local_hosts_are_refused(url: str) -> None:
    with pytest.raises(UserError, match="loopback, private or link-local"):
        check_feed_url(url)


def test_credentials_in_the_address_are_refused() -> None:
    with pytest.raises(UserError, match="user name or password"):
        check_feed_url("https://me:secret@example.com/feed", is_public=allow_all)


def test_a_public_address_is_returned_as_written() -> None:
    assert check_feed_url(f"  {FEED} ", is_public=allow_all) == FEED


# --- probing a feed ---------------------------------------------------------------------


def test_a_working_feed_is_probed_with_its_title_and_entries(
    server: FeedServer, settings: Settings
) -> None:
    url = server.add("/rss", (DATA / "rss2.xml").read_bytes())
    probe = probe_feed(url, settings, is_public=allow_all)
    assert (probe.title, probe.items, probe.url, probe.kind) == ("Inference Notes", 2, url, "feed")


def test_a_redirect_is_followed_and_the_final_address_reported(
    server: FeedServer, settings: Settings
) -> None:
    final = server.add("/rss", (DATA / "rss2.xml").read_bytes())
    assert (
        probe_feed(server.add("/old", redirect="/rss"), settings, is_public=allow_all).url == final
    )


def test_a_redirect_to_a_private_address_is_not_followed(
    server: FeedServer, settings: Settings
) -> None:
    server.add("/rss", (DATA / "rss2.xml").read_bytes())
    inside = f"http://localhost:{server.httpd.server_address[1]}/rss"
    url = server.add("/old", redirect=inside)
    with pytest.raises(UserError, match="loopback, private or link-local"):
        probe_feed(url, settings, is_public=lambda host: host == "127.0.0.1")
    assert server.hits_for("/rss") == []


def test_the_real_check_never_lets_a_probe_reach_this_machine(
    server: FeedServer, settings: Settings
) -> None:
    url = server.add("/rss", (DATA / "rss2.xml").read_bytes())
    with pytest.raises(UserError, match="public internet"):
        probe_feed(url, settings)
    assert server.hits_for("/rss") == []


def test_a_web_page_whose_advertised_feed_is_missing_is_refused_naming_both(
    server: FeedServer, settings: Settings
) -> None:
    page = server.add("/", (DATA / "page.html").read_bytes(), content_type="text/html")
    with pytest.raises(UserError) as error:
        probe_feed(page, settings, is_public=allow_all)
    assert str(error.value) == (
        f"{page} is a web page, not a feed, and the feed it advertises at "
        f"{server.url('/feed.xml')} cannot be followed: {server.url('/feed.xml')} answered "
        "404 Not Found: there is no feed at that address; check it (the site's pages usually "
        "link it)"
    )


# --- a web page instead of a feed: its advertised feed is followed ---------------------------


def blog_page(*links: str, title: str = "Inference Notes — a blog", head: str = "") -> str:
    return (
        f"<!DOCTYPE html><html><head><title>{title}</title>{head}{''.join(links)}</head>"
        "<body><h1>Welcome</h1><p>Posts are below.</p></body></html>"
    )


def alternate(href: str, kind: str = "application/rss+xml", title: str = "RSS") -> str:
    return f'<link rel="alternate" type="{kind}" title="{title}" href="{href}">'


def test_a_page_is_followed_to_the_feed_it_advertises_and_named_by_its_title(
    server: FeedServer, settings: Settings
) -> None:
    feed = server.add("/blog/feed.xml", (DATA / "rss2.xml").read_bytes())
    page = server.add("/blog/", blog_page(alternate("feed.xml")), content_type="text/html")
    probe = probe_feed(page, settings, is_public=allow_all)
    assert (probe.address, probe.url, probe.page, probe.page_title, probe.title, probe.items) == (
        feed,
        feed,
        page,
        "Inference Notes — a blog",
        "Inference Notes",
        2,
    )
    assert probe.name_hint == "Inference Notes — a blog"


def test_the_site_name_a_page_declares_names_it_before_its_title(
    server: FeedServer, settings: Settings
) -> None:
    server.add("/feed.xml", (DATA / "rss2.xml").read_bytes())
    head = '<meta property="og:site_name" content="Notes">'
    page = server.add(
        "/",
        blog_page(alternate("/feed.xml"), title="Home | Notes", head=head),
        content_type="text/html",
    )
    assert probe_feed(page, settings, is_public=allow_all).page_title == "Notes"


def test_a_page_that_advertises_no_feed_is_a_clear_error(
    server: FeedServer, settings: Settings
) -> None:
    page = server.add("/about", blog_page(), content_type="text/html; charset=utf-8")
    with pytest.raises(UserError) as error:
        probe_feed(page, settings, is_public=allow_all)
    assert str(error.value) == (
        f"{page} is a web page that advertises no feed (its <head> has no "
        '<link rel="alternate"> to an RSS, Atom or JSON feed). Find the site\'s feed address '
        "(often /feed, /rss.xml or /atom.xml, or an RSS link on the page) and add that instead."
    )


def test_a_feed_advertised_at_a_private_address_is_refused_like_one_given(
    server: FeedServer, settings: Settings
) -> None:
    inside = f"http://localhost:{server.httpd.server_address[1]}/feed.xml"
    server.add("/feed.xml", (DATA / "rss2.xml").read_bytes())
    page = server.add("/", blog_page(alternate(inside)), content_type="text/html")
    with pytest.raises(UserError, match="loopback, private or link-local"):
        probe_feed(page, settings, is_public=lambda host: host == "127.0.0.1")
    assert server.hits_for("/feed.xml") == []


@pytest.mark.parametrize(
    ("links", "head", "expected"),
    [
        # WordPress: the comments feed comes second, but a comments feed is never the choice.
        (
            [
                alternate("/comments/feed/", title="Blog » Comments Feed"),
                alternate("/feed/", title="Blog » Feed"),
            ],
            "",
            ["https://blog.example/feed/"],
        ),
        # Only comment feeds: better than nothing.
        (
            [alternate("/comments/feed/", title="Comments")],
            "",
            ["https://blog.example/comments/feed/"],
        ),
        # The first advertised wins; JSON Feed and Atom count, and a type with a charset too.
        (
            [
                alternate("/atom.xml", "application/atom+xml; charset=utf-8"),
                alternate("/feed.json", "application/feed+json"),
                alternate("/rss.xml"),
            ],
            "",
            [
                "https://blog.example/atom.xml",
                "https://blog.example/feed.json",
                "https://blog.example/rss.xml",
            ],
        ),
        # Plain application/json is often WordPress's REST API: tried after the real types.
        (
            [alternate("/wp-json/wp/v2/pages/2", "application/json"), alternate("/feed/")],
            "",
            ["https://blog.example/feed/", "https://blog.example/wp-json/wp/v2/pages/2"],
        ),
        # Not feeds: oEmbed, another language's page, a stylesheet.
        (
            [
                alternate("/oembed?url=x", "application/json+oembed"),
                '<link rel="alternate" hreflang="de" href="/de/">',
                '<link rel="stylesheet" type="text/css" href="/s.css">',
            ],
            "",
            [],
        ),
        # Relative to <base href>, when the page has one.
        (
            [alternate("index.xml")],
            '<base href="https://cdn.example/posts/">',
            ["https://cdn.example/posts/index.xml"],
        ),
    ],
    ids=["comments last", "only comments", "page order", "json last", "not feeds", "base href"],
)
def test_the_feeds_a_page_advertises_best_first(
    links: list[str], head: str, expected: list[str]
) -> None:
    page = read_page(
        blog_page(*links, head=head).encode(), "https://blog.example/2024/post", "text/html"
    )
    assert page is not None
    assert page.feeds == expected


def test_what_is_not_html_is_not_read_as_a_page() -> None:
    assert read_page(b'{"version": 1}', "https://x.example/", "application/json") is None
    assert (
        read_page(b"<html><head><title>t</title></head></html>", "https://x.example/") is not None
    )


# --- what an address asks to follow ----------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "kind", "keys", "target"),
    [
        (
            "https://github.com/vllm-project/vllm",
            "github_releases",
            (("repo", "vllm-project/vllm"),),
            "vllm-project/vllm",
        ),
        (
            "https://www.github.com/ollama/ollama/releases",
            "github_releases",
            (("repo", "ollama/ollama"),),
            "ollama/ollama",
        ),
        ("github.com/acme/infer.git", "github_releases", (("repo", "acme/infer"),), "acme/infer"),
        (
            "https://github.com/acme/infer/releases/tag/v1.0",
            "github_releases",
            (("repo", "acme/infer"),),
            "acme/infer",
        ),
        (
            "https://www.reddit.com/r/LocalLLaMA/",
            "reddit",
            (("subreddit", "LocalLLaMA"),),
            "r/LocalLLaMA",
        ),
        (
            "https://old.reddit.com/r/MachineLearning/top/?t=week",
            "reddit",
            (("subreddit", "MachineLearning"),),
            "r/MachineLearning",
        ),
        ("https://huggingface.co/papers", "hf_papers", (), "https://huggingface.co/papers"),
        (
            "https://news.ycombinator.com/",
            "hackernews",
            (("min_points", 100),),
            "https://news.ycombinator.com",
        ),
        (
            "https://news.ycombinator.com/best",
            "hackernews",
            (("min_points", 100),),
            "https://news.ycombinator.com",
        ),
        # Everything else is a feed (or a page advertising one).
        (
            "https://github.com/acme/infer/commits/main.atom",
            "feed",
            (("url", "https://github.com/acme/infer/commits/main.atom"),),
            "https://github.com/acme/infer/commits/main.atom",
        ),
        (
            "https://github.com/topics/llm",
            "feed",
            (("url", "https://github.com/topics/llm"),),
            "https://github.com/topics/llm",
        ),
        (
            "https://huggingface.co/blog",
            "feed",
            (("url", "https://huggingface.co/blog"),),
            "https://huggingface.co/blog",
        ),
        (
            "https://www.reddit.com/user/someone",
            "feed",
            (("url", "https://www.reddit.com/user/someone"),),
            "https://www.reddit.com/user/someone",
        ),
    ],
)
def test_an_address_says_what_kind_of_source_it_is(
    url: str, kind: str, keys: tuple[tuple[str, object], ...], target: str
) -> None:
    wanted = wanted_from(url)
    assert (wanted.kind, wanted.keys, wanted.target) == (kind, keys, target)


def test_a_kind_given_accepts_the_short_forms_and_refuses_other_addresses() -> None:
    assert wanted_from("acme/infer", "github_releases").keys == (("repo", "acme/infer"),)
    assert wanted_from("r/LocalLLaMA", "reddit").keys == (("subreddit", "LocalLLaMA"),)
    assert wanted_from("https://github.com/acme/infer", "feed").kind == "feed"
    with pytest.raises(
        UserError,
        match=r"'https://blog\.example/' is not an address of a reddit source; give a subreddit",
    ):
        wanted_from("https://blog.example/", "reddit")
    with pytest.raises(UserError, match="addresses without http"):
        wanted_from("acme/infer")


def test_a_missing_feed_is_refused_with_the_status(server: FeedServer, settings: Settings) -> None:
    with pytest.raises(UserError, match="404 Not Found"):
        probe_feed(server.url("/nothing-here"), settings, is_public=allow_all)


def test_a_server_that_does_not_answer_is_a_user_error(server: FeedServer, tmp_path: Path) -> None:
    url = server.add("/slow", "<rss/>", hold=threading.Event())
    quick = Settings(home=tmp_path / "home", sources_path=tmp_path / "s.yaml", timeout=0.2)
    with pytest.raises(UserError, match="timed out"):
        probe_feed(url, quick, is_public=allow_all)


# --- adding -----------------------------------------------------------------------------


def test_adding_appends_an_entry_and_leaves_every_other_line_alone(repo_copy: Path) -> None:
    original = repo_copy.read_text()
    name, text = add_source(repo_copy, FEED, None, "Inference Notes")
    assert name == "inference-notes"
    assert repo_copy.read_text() == text
    changes = [
        line for line in difflib.ndiff(original.splitlines(), text.splitlines()) if line[:1] in "+-"
    ]
    assert changes == [
        "+ ",
        "+   - name: inference-notes",
        "+     kind: feed",
        f"+     url: {FEED}",
        "+     public_only: true",
    ]
    before = [s.name for s in load_config(REPO_SOURCES).sources]
    config = load_config(repo_copy)
    assert [s.name for s in config.sources] == [*before, "inference-notes"]
    assert config.source("inference-notes").url == FEED
    assert config.source("inference-notes").public_only  # added from Discord: public only


def test_add_then_remove_gives_back_the_same_bytes(repo_copy: Path) -> None:
    original = repo_copy.read_bytes()
    name, _ = add_source(repo_copy, FEED, None, "Inference Notes")
    assert remove_source(repo_copy, name) == f"inference-notes (feed: {FEED})"
    assert repo_copy.read_bytes() == original


def test_a_name_comes_from_the_title_or_the_host_and_is_made_unique(repo_copy: Path) -> None:
    assert add_source(repo_copy, FEED, None, "Simon Willison’s Weblog")[0] == (
        "simon-willisons-weblog"
    )
    assert add_source(repo_copy, "https://www.example.co/rss", None)[0] == "example"
    assert add_source(repo_copy, "https://blog.acme.example/a.xml", None, "Blog")[0] == (
        "blog-acme"
    )
    assert add_source(repo_copy, "https://x.example/f", None, "Simon Willison")[0] == (
        "simon-willison-2"
    )


@pytest.mark.parametrize(
    "url",
    ["https://simonwillison.net/atom/everything/", "http://SimonWillison.net/atom/everything"],
)
def test_a_feed_already_followed_is_refused(repo_copy: Path, url: str) -> None:
    original = repo_copy.read_bytes()
    with pytest.raises(UserError, match="already followed, as the source 'simon-willison'"):
        add_source(repo_copy, url, None, "Simon Willison's Weblog")
    assert repo_copy.read_bytes() == original


def test_a_name_already_used_is_refused(repo_copy: Path) -> None:
    original = repo_copy.read_bytes()
    with pytest.raises(UserError, match="already a source named 'VLLM'"):
        add_source(repo_copy, FEED, "VLLM")
    assert repo_copy.read_bytes() == original


def test_an_address_with_credentials_is_never_written(repo_copy: Path) -> None:
    with pytest.raises(UserError, match="user name or password"):
        add_source(repo_copy, "https://me:secret@example.com/feed", "mine")
    assert "secret" not in repo_copy.read_text()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "sources:\n  - name: notes\n    kind: feed\n    url: {FEED}\n    public_only: true\n"),
        (
            "# my tracker\ninterests: [agents]  # for now\n",
            "# my tracker\ninterests: [agents]  # for now\n\n"
            "sources:\n  - name: notes\n    kind: feed\n    url: {FEED}\n    public_only: true\n",
        ),
        (
            "sources:   # none yet\ninterests: [agents]\n",
            "sources:   # none yet\n  - name: notes\n    kind: feed\n    url: {FEED}\n    public_only: true\n"
            "interests: [agents]\n",
        ),
        (
            "sources: []\n",
            "sources:\n  - name: notes\n    kind: feed\n    url: {FEED}\n    public_only: true\n",
        ),
    ],
)
def test_a_missing_or_empty_sources_list_is_created(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = tmp_path / "sources.yaml"
    path.write_text(text)
    add_source(path, FEED, "notes")
    assert path.read_text() == expected.replace("{FEED}", FEED)
    assert [s.name for s in load_config(path).sources] == ["notes"]


def test_a_file_that_does_not_exist_yet_is_created(tmp_path: Path) -> None:
    path = tmp_path / "sources.yaml"
    add_source(path, FEED, "notes")
    assert load_config(path).source("notes").url == FEED


def test_flow_style_entries_get_a_flow_style_sibling(tmp_path: Path) -> None:
    path = tmp_path / "sources.yaml"
    original = 'sources:\n  - {name: blog, kind: feed, url: "https://blog.example/feed"}\n'
    path.write_text(original)
    add_source(path, FEED, "notes")
    assert (
        path.read_text()
        == original + f"  - {{name: notes, kind: feed, url: {FEED}, public_only: true}}\n"
    )
    assert load_config(path).source("notes").url == FEED
    remove_source(path, "notes")
    assert path.read_text() == original


def test_windows_line_endings_are_kept(tmp_path: Path) -> None:
    path = tmp_path / "sources.yaml"
    original = REPO_SOURCES.read_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    path.write_bytes(original)
    add_source(path, FEED, "notes")
    assert b"    url: " + FEED.encode() + b"\r\n" in path.read_bytes()
    remove_source(path, "notes")
    assert path.read_bytes() == original


# --- removing ---------------------------------------------------------------------------

SMALL = """\
sources:
  # --- Blogs -----------------------------------------------
  - name: alpha
    kind: feed
    url: https://alpha.example/feed

  # beta posts weekly
  - name: beta
    kind: feed
    url: https://beta.example/feed   # the mirror

  # --- Releases --------------------------------------------
  - name: gamma
    kind: github_releases
    repo: acme/gamma
"""


def test_removing_takes_the_entry_and_its_own_comment(tmp_path: Path) -> None:
    path = tmp_path / "sources.yaml"
    path.write_text(SMALL)
    assert remove_source(path, "beta") == "beta (feed: https://beta.example/feed)"
    assert path.read_text() == SMALL.replace(
        "\n  # beta posts weekly\n  - name: beta\n    kind: feed\n"
        "    url: https://beta.example/feed   # the mirror\n",
        "",
    )


def test_removing_the_first_entry_of_a_section_keeps_its_banner(tmp_path: Path) -> None:
    path = tmp_path / "sources.yaml"
    path.write_text(SMALL)
    remove_source(path, "gamma")
    remove_source(path, "alpha")
    assert path.read_text() == (
        "sources:\n"
        "  # --- Blogs -----------------------------------------------\n"
        "  # beta posts weekly\n"
        "  - name: beta\n"
        "    kind: feed\n"
        "    url: https://beta.example/feed   # the mirror\n"
        "\n"
        "  # --- Releases --------------------------------------------\n"
    )
    assert [s.name for s in load_config(path).sources] == ["beta"]


def test_removing_the_last_source_leaves_an_empty_valid_list(tmp_path: Path) -> None:
    path = tmp_path / "sources.yaml"
    path.write_text(
        "interests: [agents]\nsources:\n  - {name: a, kind: feed, url: 'https://a.example/f'}\n"
    )
    remove_source(path, "a")
    assert path.read_text() == "interests: [agents]\nsources: []\n"
    assert load_config(path).sources == []


def test_an_unknown_name_is_refused_with_the_closest_names(repo_copy: Path) -> None:
    original = repo_copy.read_bytes()
    with pytest.raises(UserError, match="no source is named 'vlm'; did you mean 'vllm'"):
        remove_source(repo_copy, "vlm")
    assert repo_copy.read_bytes() == original


def test_names_are_matched_regardless_of_case(repo_copy: Path) -> None:
    assert remove_source(repo_copy, "VLLM").startswith("vllm (github_releases")


# --- never a broken or half-written file -------------------------------------------------


def test_a_file_with_problems_is_not_edited(tmp_path: Path) -> None:
    path = tmp_path / "sources.yaml"
    broken = (
        "sources:\n  - name: a\n    kind: feed\n    url: https://a.example/f\n    colour: red\n"
    )
    path.write_text(broken)
    with pytest.raises(UserError, match="problems to fix") as error:
        add_source(path, FEED, "notes")
    assert "colour" in str(error.value)
    assert path.read_text() == broken


def test_an_edit_that_would_be_invalid_is_never_written(
    repo_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = repo_copy.read_bytes()
    monkeypatch.setattr(
        yaml_splice.Layout, "added", lambda self, entry: self.text + "  - kind: nonsense\n"
    )
    with pytest.raises(UserError, match=r"would make .* invalid, so it was not saved"):
        add_source(repo_copy, FEED, "notes")
    assert repo_copy.read_bytes() == original
    assert os.listdir(repo_copy.parent) == ["sources.yaml"]


def test_the_write_is_atomic_keeps_the_mode_and_leaves_no_temporary_file(repo_copy: Path) -> None:
    repo_copy.chmod(0o640)
    add_source(repo_copy, FEED, "notes")
    assert stat.S_IMODE(repo_copy.stat().st_mode) == 0o640
    assert os.listdir(repo_copy.parent) == ["sources.yaml"]


def test_a_failed_write_leaves_the_file_and_no_temporary_file(
    repo_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = repo_copy.read_bytes()

    def full_disk(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(sources_edit.os, "replace", full_disk)
    with pytest.raises(UserError, match="No space left"):
        add_source(repo_copy, FEED, "notes")
    assert repo_copy.read_bytes() == original
    assert os.listdir(repo_copy.parent) == ["sources.yaml"]


def test_a_file_changed_during_the_edit_is_left_alone(
    repo_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    validate = sources_edit.check_valid

    def someone_saves_meanwhile(text: str, file: str, original: str | None) -> None:
        validate(text, file, original)
        repo_copy.write_text(original + "# edited by hand\n" if original else "")

    monkeypatch.setattr(sources_edit, "check_valid", someone_saves_meanwhile)
    with pytest.raises(UserError, match="changed by someone else"):
        add_source(repo_copy, FEED, "notes")
    assert repo_copy.read_text().endswith("# edited by hand\n")


def test_a_symlinked_file_stays_a_symlink(tmp_path: Path, repo_copy: Path) -> None:
    link = tmp_path / "link.yaml"
    link.symlink_to(repo_copy)
    add_source(link, FEED, "notes")
    assert link.is_symlink()
    assert load_config(repo_copy).source("notes").url == FEED


# --- importing many feeds in one edit ----------------------------------------------------------

IMPORTED = [
    Subscription("https://a.example/f", "Alpha Notes", ("Blogs",)),
    Subscription("https://b.example/f", "Beta", ("Blogs", "AI & ML")),
]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "",
            "sources:\n"
            "  - name: alpha-notes\n    kind: feed\n    url: https://a.example/f\n    tags: [blogs]\n"
            "  - name: beta\n    kind: feed\n    url: https://b.example/f\n    tags: [blogs, ai-ml]\n",
        ),
        (
            'sources:\n  - {name: blog, kind: feed, url: "https://blog.example/feed"}\n',
            'sources:\n  - {name: blog, kind: feed, url: "https://blog.example/feed"}\n'
            "  - {name: alpha-notes, kind: feed, url: https://a.example/f, tags: [blogs]}\n"
            "  - {name: beta, kind: feed, url: https://b.example/f, tags: [blogs, ai-ml]}\n",
        ),
        (
            "sources:\n- name: x\n  kind: feed\n  url: https://x.example/f\n",
            "sources:\n- name: x\n  kind: feed\n  url: https://x.example/f\n"
            "- name: alpha-notes\n  kind: feed\n  url: https://a.example/f\n  tags: [blogs]\n"
            "- name: beta\n  kind: feed\n  url: https://b.example/f\n  tags: [blogs, ai-ml]\n",
        ),
    ],
    ids=["empty file", "flow-style siblings", "unindented list"],
)
def test_an_import_is_written_in_the_style_of_the_list(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = tmp_path / "sources.yaml"
    path.write_text(text)
    done = import_feeds(path, IMPORTED)
    assert (done.added, path.read_text()) == (["alpha-notes", "beta"], expected)
    assert [s.tags for s in load_config(path).sources][-2:] == [["blogs"], ["blogs", "ai-ml"]]


def test_an_import_that_adds_nothing_leaves_the_file_untouched(repo_copy: Path) -> None:
    original = repo_copy.read_bytes()
    mtime = repo_copy.stat().st_mtime_ns
    followed = Subscription("https://simonwillison.net/atom/everything/", "Simon")
    done = import_feeds(repo_copy, [followed])
    assert (done.added, done.followed) == ([], [("Simon", "simon-willison")])
    assert (repo_copy.read_bytes(), repo_copy.stat().st_mtime_ns) == (original, mtime)


def test_a_page_in_windows_1252_without_a_declaration_keeps_its_title() -> None:
    html = "<html><head><title>Caf\u00e9 \u201cNotes\u201d</title></head></html>".encode("cp1252")
    page = read_page(html, "https://x.example/")
    assert page is not None and page.title == "Café “Notes”"


def test_the_charset_of_the_header_wins() -> None:
    html = "<html><head><title>Ærø</title></head></html>".encode("iso-8859-1")
    page = read_page(html, "https://x.example/", "text/html; charset=ISO-8859-1")
    assert page is not None and page.title == "Ærø"


def many_feeds(n: int) -> list[Subscription]:
    return [
        Subscription(f"https://feeds{i}.example/rss", f"Feed {i}", ("Blogs",)) for i in range(n)
    ]


def test_an_import_of_thousands_again_adds_nothing_and_names_who_follows_each(tmp_path: Path):
    # Each feed is looked up by its address, not by going through the list again: 2,000
    # feeds took 20 s the second time when it did.
    path = tmp_path / "sources.yaml"
    feeds = many_feeds(2_000)
    assert len(import_feeds(path, feeds).added) == 2_000
    again = import_feeds(path, feeds)
    assert again.added == [] and len(again.followed) == 2_000
    respelled = import_feeds(path, [Subscription("https://FEEDS7.example/rss/", "Seven")])
    assert respelled.followed == [("Seven", "feed-7")]


def test_a_feed_deep_in_folders_gets_its_outermost_folders_as_tags_and_a_note(tmp_path: Path):
    path = tmp_path / "sources.yaml"
    folders = tuple(f"Level {i}" for i in range(1000))
    done = import_feeds(path, [Subscription("https://deep.example/rss", "Deep", folders)])
    (source,) = load_config(path).sources
    assert source.tags == [f"level-{i}" for i in range(8)]
    assert done.notes == ["deep: in more folders and categories than 8; the first 8 are its tags"]
