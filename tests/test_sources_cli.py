"""tracker sources add, import and export: sources.yaml edited from the command line,
with the bot's checks and without losing a comment."""

from __future__ import annotations

import difflib
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import DATA, SHARED_FIXTURES, FeedServer
from tests.test_opml import READER_EXPORT
from tracker.cli import main
from tracker.collect.sources.feed import FeedSource
from tracker.config import load_config
from tracker.follow.opml import read_opml
from tracker.urls import url_key

WritePath = Callable[[str], Path]

#: A hand-written sources.yaml: banners, comments above and beside entries, a trailing note.
COMMENTED = """\
# What tracker follows. Edit freely.

interests: [agents]   # for now

sources:
  # --- Blogs -------------------------------------------------------
  - name: simon-willison
    kind: feed
    url: https://simonwillison.net/atom/everything/   # the full firehose
    tags: [blog]

  # Releases of what we run
  - name: vllm
    kind: github_releases
    repo: vllm-project/vllm

# more to come
"""


def run(*args: str) -> int:
    return main(["sources", *args])


def removed_lines(before: str, after: str) -> list[str]:
    """Lines of ``before`` that ``after`` lost or changed: none, for an edit that only adds."""
    return [
        line
        for line in difflib.ndiff(before.splitlines(), after.splitlines())
        if line[:2] in ("- ", "? ")
    ]


@pytest.fixture
def sources(write_sources: WritePath) -> Path:
    return write_sources(COMMENTED)


# --- sources add --------------------------------------------------------------------------


def test_a_blogs_page_is_followed_through_the_feed_it_advertises(
    server: FeedServer, sources: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    feed = server.add("/feed.xml", (DATA / "rss2.xml").read_bytes())
    page = server.add(
        "/",
        "<!DOCTYPE html><html><head><title>Notes on Inference</title>"
        '<link rel="alternate" type="application/rss+xml" href="/feed.xml"></head>'
        "<body><p>Posts</p></body></html>",
        content_type="text/html; charset=utf-8",
    )

    assert run("add", page) == 0

    out = capsys.readouterr().out
    assert out == (
        f"Added notes-on-inference (feed: {feed}) to {sources} "
        f"(“Inference Notes”, 2 entries now; the feed that {page} links to).\n"
    )
    text = sources.read_text()
    assert removed_lines(COMMENTED, text) == []
    assert text.endswith(
        "    repo: vllm-project/vllm\n\n"
        "  - name: notes-on-inference\n"
        "    kind: feed\n"
        f"    url: {feed}\n"
        "\n# more to come\n"
    )
    added = load_config(sources).source("notes-on-inference")
    assert isinstance(added, FeedSource)
    assert (added.url, added.public_only) == (feed, False)  # the owner's command: trusted


def test_a_page_without_a_feed_is_refused_naming_the_page_and_the_fix(
    server: FeedServer, sources: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    page = server.add(
        "/about", "<html><head><title>About</title></head></html>", content_type="text/html"
    )

    assert run("add", page) == 2

    err = capsys.readouterr().err
    assert err.startswith(f"error: {page} is a web page that advertises no feed")
    assert "Find the site's feed address (often /feed, /rss.xml or /atom.xml" in err
    assert err.endswith(f"{sources} is unchanged.\n")
    assert sources.read_text() == COMMENTED


def test_a_feed_is_added_under_the_name_given_and_public_only_on_request(
    server: FeedServer, sources: Path
) -> None:
    feed = server.add("/rss", (DATA / "rss2.xml").read_bytes())
    assert run("add", feed, "--name", "notes", "--public-only") == 0
    added = load_config(sources).source("notes")
    assert isinstance(added, FeedSource)
    assert (added.url, added.public_only) == (feed, True)


@pytest.mark.parametrize(
    ("url", "entry"),
    [
        (
            "https://github.com/ollama/ollama",
            "  - name: ollama\n    kind: github_releases\n    repo: ollama/ollama\n",
        ),
        (
            "https://www.reddit.com/r/LocalLLaMA/",
            "  - name: r-localllama\n    kind: reddit\n    subreddit: LocalLLaMA\n",
        ),
        ("https://huggingface.co/papers", "  - name: hf-papers\n    kind: hf_papers\n"),
        (
            "https://news.ycombinator.com/",
            "  - name: hacker-news\n    kind: hackernews\n    min_points: 100\n",
        ),
    ],
    ids=["github", "reddit", "hf_papers", "hackernews"],
)
def test_a_known_site_becomes_a_source_of_its_own_kind_without_a_fetch(
    sources: Path, url: str, entry: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run("add", url) == 0
    text = sources.read_text()
    assert "    repo: vllm-project/vllm\n\n" + entry + "\n# more to come\n" in text
    assert removed_lines(COMMENTED, text) == []
    load_config(sources)  # valid for the real parser
    assert capsys.readouterr().out.startswith("Added ")


def test_a_kind_given_takes_the_short_form(sources: Path) -> None:
    assert run("add", "acme/infer", "--kind", "github_releases", "--name", "infer") == 0
    assert load_config(sources).source("infer").kind == "github_releases"


def test_an_address_that_is_not_of_the_kind_given_is_a_usage_error(
    sources: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run("add", "https://blog.example/", "--kind", "reddit") == 2
    assert "is not an address of a reddit source; give a subreddit" in capsys.readouterr().err
    assert sources.read_text() == COMMENTED


@pytest.mark.parametrize(
    ("url", "name"),
    [
        ("http://SimonWillison.net/atom/everything", "simon-willison"),
        ("https://github.com/vllm-project/vllm/releases", "vllm"),
        ("https://github.com/VLLM-Project/VLLM", "vllm"),
    ],
)
def test_what_is_already_followed_is_reported_not_added_and_not_fetched(
    sources: Path, url: str, name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run("add", url) == 0
    assert (
        f"is already followed, as the source '{name}'; {sources} is unchanged."
        in capsys.readouterr().out
    )
    assert sources.read_text() == COMMENTED


def test_a_subreddit_already_followed_is_reported_whatever_its_case(
    write_sources: WritePath, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_sources("sources:\n  - {name: llama, kind: reddit, subreddit: LocalLLaMA}\n")
    assert run("add", "https://old.reddit.com/r/localllama") == 0
    assert "r/localllama is already followed, as the source 'llama'" in capsys.readouterr().out
    assert path.read_text().count("kind: reddit") == 1


def test_a_name_already_taken_is_refused_before_anything_is_fetched(
    server: FeedServer, sources: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    feed = server.add("/rss", (DATA / "rss2.xml").read_bytes())
    assert run("add", feed, "--name", "VLLM") == 2
    assert "there is already a source named 'VLLM'" in capsys.readouterr().err
    assert server.hits_for("/rss") == []


def test_a_dead_feed_is_refused_with_the_status(
    server: FeedServer, sources: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run("add", server.url("/gone")) == 2
    assert "404 Not Found" in capsys.readouterr().err
    assert sources.read_text() == COMMENTED


# --- sources import -------------------------------------------------------------------------


@pytest.fixture
def export(tmp_path: Path) -> Path:
    path = tmp_path / "Inoreader Subscriptions.opml"
    path.write_bytes(READER_EXPORT)
    return path


def test_importing_adds_every_feed_with_its_folders_as_tags_and_keeps_every_comment(
    sources: Path, export: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run("import", str(export)) == 0

    text = sources.read_text()
    assert removed_lines(COMMENTED, text) == []
    assert text.endswith("# more to come\n")
    config = load_config(sources)
    added = {
        s.name: (s.url, s.tags) for s in config.sources if s.name not in ("simon-willison", "vllm")
    }
    assert added == {
        "lillog": ("https://lilianweng.github.io/index.xml", ["ai-ml"]),
        "the-berkeley-artificial-intelligence": (
            "https://bair.berkeley.edu/blog/feed.xml",
            ["ai-ml", "research"],
        ),
        "julia-evans": ("https://jvns.ca/atom.xml", ["engineering"]),
        "hn-100-points": ("https://hnrss.org/frontpage?points=100&comments=25", ["engineering"]),
    }
    assert (
        "  - name: lillog\n    kind: feed\n    url: https://lilianweng.github.io/index.xml\n    tags: [ai-ml]\n"
        in text
    )
    out = capsys.readouterr().out.splitlines()
    assert out == [
        f"{export} into {sources}: 4 added, 1 already followed, 1 skipped.",
        "Added: lillog, the-berkeley-artificial-intelligence, julia-evans, hn-100-points",
        "Already followed:",
        "  Simon Willison’s Weblog (as simon-willison)",
        "Skipped:",
        "  Empty folder (line 23): it has no xmlUrl (an empty folder, or a note): there is no feed to follow",
    ]


def test_export_then_import_adds_nothing(
    sources: Path, export: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run("import", str(export)) == 0
    imported = sources.read_text()
    exported = tmp_path / "tracker.opml"
    assert run("export", "--output", str(exported)) == 0
    capsys.readouterr()

    assert run("import", str(exported)) == 0

    assert sources.read_text() == imported
    summary = capsys.readouterr().out.splitlines()[0]
    assert summary.endswith(": 0 added, 5 already followed, 0 skipped.")


def test_the_round_trip_keeps_feeds_and_tags(
    write_sources: WritePath, export: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = write_sources("")
    assert run("import", str(export)) == 0
    exported = tmp_path / "out.opml"
    assert run("export", "-o", str(exported)) == 0
    second = tmp_path / "again.yaml"
    monkeypatch.setenv("TRACKER_SOURCES", str(second))

    assert run("import", str(exported)) == 0

    def feeds(path: Path) -> list[tuple[str, str, list[str]]]:
        return sorted((s.name, str(s.url), s.tags) for s in load_config(path).sources)

    assert feeds(second) == feeds(first)
    assert len(feeds(first)) == 5


def test_duplicates_in_the_file_and_feeds_already_followed_are_skipped_by_name(
    sources: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    opml = tmp_path / "subs.opml"
    opml.write_text(
        '<opml version="2.0"><body>\n'
        '<outline text="Simon" xmlUrl="https://simonwillison.net/atom/everything"/>\n'
        '<outline text="Katie Floyd" xmlUrl="http://feed.katiefloyd.com"/>\n'
        '<outline text="Katie Floyd" xmlUrl="http://feed.katiefloyd.com/"/>\n'
        '<outline text="Gopher news" xmlUrl="gopher://news.example/1"/>\n'
        '<outline text="Private" xmlUrl="https://me:secret@private.example/feed"/>\n'
        "</body></opml>"
    )
    assert run("import", str(opml)) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"{opml} into {sources}: 1 added, 1 already followed, 3 skipped.",
        "Added: katie-floyd",
        "Already followed:",
        "  Simon (as simon-willison)",
        "Skipped:",
        "  Katie Floyd: listed twice in the file (line 3): imported once",
        "  Gopher news: gopher://news.example/1 is a gopher: address; tracker follows http(s) feeds only",
        "  Private: the address carries a user name or password; tracker keeps no credentials in "
        "sources.yaml, so give the address of a feed that needs no login",
    ]
    assert [s.name for s in load_config(sources).sources] == [
        "simon-willison",
        "vllm",
        "katie-floyd",
    ]
    assert "secret" not in sources.read_text()


def test_a_dry_run_reports_and_writes_nothing(
    sources: Path, export: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run("import", str(export), "--dry-run") == 0
    assert sources.read_text() == COMMENTED
    assert (
        capsys.readouterr()
        .out.splitlines()[0]
        .endswith("4 would be added, 1 already followed, 1 skipped (dry run: nothing written).")
    )


def test_imported_feeds_are_public_only_on_request(sources: Path, export: Path) -> None:
    assert run("import", str(export), "--public-only") == 0
    added = [s for s in load_config(sources).sources if s.name not in ("simon-willison", "vllm")]
    assert len(added) == 4
    assert all(isinstance(s, FeedSource) and s.public_only for s in added)


def test_importing_into_a_file_that_does_not_exist_creates_it(tmp_path: Path, export: Path) -> None:
    assert run("import", str(export)) == 0
    assert len(load_config(tmp_path / "sources.yaml").sources) == 5


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b'<opml version="2.0"><body><outline text="A & B"', "subs.opml:1: not well-formed XML"),
        (
            b'<?xml version="1.0"?><rss version="2.0"><channel/></rss>',
            "subs.opml is a feed, not an OPML",
        ),
        (
            b'<!DOCTYPE opml [<!ENTITY a "aaaa">]><opml><body/></opml>',
            "subs.opml:1: the file has a <!DOCTYPE> declaration",
        ),
        (
            b'<opml version="2.0"><body><outline text="folder"/></body></opml>',
            "subs.opml lists no feeds",
        ),
    ],
    ids=["malformed", "a feed", "entities", "no feeds"],
)
def test_a_file_that_cannot_be_imported_is_a_usage_error_without_a_traceback(
    sources: Path, tmp_path: Path, content: bytes, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    opml = tmp_path / "subs.opml"
    opml.write_bytes(content)
    assert run("import", str(opml)) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err
    assert "Traceback" not in err
    assert sources.read_text() == COMMENTED


def test_a_missing_file_is_named(
    sources: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run("import", str(tmp_path / "nope.opml")) == 2
    assert (
        capsys.readouterr().err
        == f"error: {tmp_path / 'nope.opml'} does not exist; give the path of an OPML file\n"
    )


def test_a_sources_file_with_problems_is_not_imported_into(
    write_sources: WritePath, export: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = (
        "sources:\n  - name: a\n    kind: feed\n    url: https://a.example/f\n    colour: red\n"
    )
    path = write_sources(broken)
    assert run("import", str(export)) == 2
    err = capsys.readouterr().err
    assert "has problems to fix before it can be edited" in err and ":5: colour:" in err
    assert path.read_text() == broken


# --- sources export -------------------------------------------------------------------------


def test_export_writes_the_feeds_to_stdout_and_notes_what_is_left_out(
    sources: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run("export") == 0
    out, err = capsys.readouterr()
    assert [(f.title, f.url, f.folders) for f in read_opml(out.encode()).feeds] == [
        ("simon-willison", "https://simonwillison.net/atom/everything/", ("blog",))
    ]
    assert err == "note: OPML lists feeds only; left out: vllm (github_releases)\n"


def test_export_of_an_invalid_sources_file_is_a_setup_error(
    write_sources: WritePath, capsys: pytest.CaptureFixture[str]
) -> None:
    write_sources("sources:\n  - name: a\n    kind: nonsense\n")
    assert run("export") == 2
    assert "kind 'nonsense' is not known" in capsys.readouterr().err


# --- the real-world tier: a real reader's export ---------------------------------------------


@pytest.mark.realworld
def test_every_feed_of_a_real_readers_export_becomes_a_source(
    write_sources: WritePath, capsys: pytest.CaptureFixture[str]
) -> None:
    subs = SHARED_FIXTURES / "feeds" / "blogs" / "rsparser_Subs.opml"
    if not subs.is_file():
        pytest.skip(f"real-world fixtures not found at {SHARED_FIXTURES}")
    path = write_sources(COMMENTED)
    wanted = {url_key(f.url) for f in read_opml(subs.read_bytes(), str(subs)).feeds}

    assert run("import", str(subs)) == 0

    config = load_config(path)
    followed = {url_key(str(s.url)) for s in config.sources if s.kind == "feed"}
    assert wanted <= followed
    assert len(wanted) == len(followed) - 1  # and simon-willison, followed before
    assert removed_lines(COMMENTED, path.read_text()) == []
    summary = capsys.readouterr().out.splitlines()[0]
    assert summary.endswith(f": {len(wanted)} added, 0 already followed, 1 skipped.")


def test_help_says_which_sources_yaml_is_read_and_where_state_lives(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TRACKER_SOURCES", str(tmp_path / "mine.yaml"))
    monkeypatch.setenv("TRACKER_HOME", str(tmp_path / "home"))
    with pytest.raises(SystemExit):
        main(["--help"])
    said = capsys.readouterr().out
    assert f"sources: {tmp_path / 'mine.yaml'}" in said and f"state:   {tmp_path / 'home'}" in said
