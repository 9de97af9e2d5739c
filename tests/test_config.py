"""sources.yaml: valid files load; every mistake is reported with file, line, key and fix."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from tracker.cli import main
from tracker.collect.sources.arxiv import ArxivSource
from tracker.collect.sources.feed import FeedSource
from tracker.collect.sources.github import GitHubReleasesSource
from tracker.config import load_config, parse_config
from tracker.errors import ConfigError, ConfigProblem

REPO_ROOT = Path(__file__).resolve().parents[1]

VALID = """\
interests: [agents, retrieval]
digest:
  time: "07:30"
  timezone: Europe/Berlin
  size: 5
sources:
  - name: papers
    kind: arxiv
    query: cat:cs.CL
    max_results: 20
    interval: 1h30m
  - name: blog
    kind: feed
    url: https://blog.example/feed.xml
    weight: 1.5
    tags: [blog]
  - name: vllm
    kind: github_releases
    repo: vllm-project/vllm
    enabled: false
"""


def problems_of(text: str) -> list[ConfigProblem]:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "sources.yaml")
    return caught.value.problems


def only(problems: list[ConfigProblem]) -> ConfigProblem:
    assert len(problems) == 1, problems
    return problems[0]


def test_a_valid_file_loads_into_typed_sources() -> None:
    config = parse_config(VALID)
    papers, blog, vllm = config.sources
    assert isinstance(papers, ArxivSource) and papers.interval == timedelta(minutes=90)
    assert isinstance(blog, FeedSource) and blog.weight == 1.5 and blog.full_text == "auto"
    assert isinstance(vllm, GitHubReleasesSource) and not vllm.enabled
    assert config.interests == ["agents", "retrieval"]
    assert config.digest.size == 5 and config.digest.at.hour == 7


def test_the_shipped_sources_yaml_is_valid_and_follows_enough_sources() -> None:
    config = load_config(REPO_ROOT / "sources.yaml")
    kinds = [s.kind for s in config.sources]
    assert kinds.count("feed") >= 10
    assert kinds.count("github_releases") >= 10
    queries = " ".join(s.query for s in config.sources if isinstance(s, ArxivSource))
    for category in ("cs.CL", "cs.LG", "cs.AI"):
        assert category in queries


@pytest.mark.parametrize(
    ("text", "line", "key", "message_has", "fix_has"),
    [
        pytest.param(
            "sources:\n  - name: a\n    kind: feed\n    url: https://a.example/f\n    wieght: 2\n",
            5,
            "wieght",
            "not a known key",
            "did you mean weight:",
            id="an unknown key suggests the right one",
        ),
        pytest.param(
            "sources:\n"
            "  - {name: blog, kind: feed, url: 'https://a.example/f'}\n"
            "  - {name: blog, kind: feed, url: 'https://b.example/f'}\n",
            3,
            "name",
            "already used on line 2",
            "its own name",
            id="a duplicate name points at both lines",
        ),
        pytest.param(
            "sources:\n  - name: blog\n    kind: rss\n    url: https://a.example\n",
            3,
            "kind",
            "rss",
            "arxiv, feed, github_releases",
            id="an unknown kind lists the known ones",
        ),
        pytest.param(
            "sources:\n  - name: gh\n    kind: github_releases\n",
            2,
            "repo",
            "required",
            "owner/name",
            id="a missing field says what to add",
        ),
        pytest.param(
            "sources:\n  - name: gh\n    kind: github_releases\n"
            "    repo: https://github.com/ollama/ollama\n",
            4,
            "repo",
            "is a URL",
            "write  repo: ollama/ollama",
            id="a repo written as a URL is corrected",
        ),
        pytest.param(
            "sources:\n  - name: p\n    kind: arxiv\n",
            2,
            None,
            "needs a query or ids",
            "query",
            id="arxiv needs a query or ids",
        ),
    ],
)
def test_a_mistake_names_its_line_and_key_and_says_what_to_write(
    text: str, line: int, key: str | None, message_has: str, fix_has: str
) -> None:
    problem = only(problems_of(text))
    assert (problem.line, problem.key) == (line, key)
    assert message_has in problem.message
    assert fix_has in str(problem.fix)


def test_bad_url_and_bad_interval_each_get_their_own_message() -> None:
    text = (
        "sources:\n"
        "  - name: blog\n"
        "    kind: feed\n"
        "    url: htp:/blog.example\n"
        "    interval: every hour\n"
    )
    url, interval = problems_of(text)
    assert (url.line, url.key) == (4, "url") and "https://" in str(url.fix)
    assert (interval.line, interval.key) == (5, "interval") and "30m" in str(interval.fix)


def test_yaml_syntax_error_names_the_line() -> None:
    problem = only(problems_of("sources:\n  - name: blog\n    kind: [feed\n    url: x\n"))
    assert problem.line is not None and problem.line >= 3
    assert "YAML syntax error" in problem.message and problem.fix


def billion_laughs(levels: int = 9) -> str:
    """Nine anchors, each a list of ten aliases of the one before: 10^9 values expanded."""
    lines = ['a0: &a0 ["lol"]']
    for n in range(1, levels + 1):
        lines.append(f"a{n}: &a{n} [" + ", ".join([f"*a{n - 1}"] * 10) + "]")
    return "\n".join(lines) + f"\nsources:\n  - *a{levels}\n"


def test_an_alias_bomb_is_refused_without_expanding_it() -> None:
    problem = only(problems_of(billion_laughs()))
    assert "expands to more than" in problem.message and "aliases" in problem.message
    assert problem.line is not None and problem.fix


def test_an_alias_that_repeats_a_small_block_is_still_read() -> None:
    text = (
        "defaults: &weekly {interval: 1d, full_text: never}\n"
        "sources:\n"
        "  - {name: a, kind: feed, url: 'https://a.example/feed', <<: *weekly}\n"
        "  - {name: b, kind: feed, url: 'https://b.example/feed', <<: *weekly}\n"
    )
    with pytest.raises(ConfigError) as refused:
        parse_config(text)
    # Unknown top-level key, said as such: the aliases themselves were read.
    assert "defaults" in str(refused.value) and "expands" not in str(refused.value)


def test_a_file_past_the_size_cap_is_refused_naming_the_cap_and_how_to_raise_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "sources.yaml"
    comment = "# " + "x" * 1000 + "\n"
    path.write_text(comment * 2200 + "sources: []\n")
    with pytest.raises(ConfigError) as refused:
        load_config(path)
    said = str(refused.value)
    assert "more than the 2,097,152 bytes" in said and "TRACKER_SOURCES_MAX_BYTES" in said

    monkeypatch.setenv("TRACKER_SOURCES_MAX_BYTES", str(3 * 1024 * 1024))
    assert load_config(path).sources == []


@pytest.mark.parametrize(
    ("second", "said"),
    [
        ("fast5", "'fast5' is already used on line 2"),
        ("FAST5", "'FAST5' is already used on line 2"),
        ("fast5\u200b", "'fast5' is already used on line 2"),  # a zero-width space
        ("\u202efast5", "'fast5' is already used on line 2"),  # a right-to-left override
        ("f\u0430st5", "'fаst5' looks the same as 'fast5' on line 2"),  # a Cyrillic а
        ("ｆａｓｔ５", "'ｆａｓｔ５' looks the same as 'fast5' on line 2"),  # full width
    ],
)
def test_names_that_print_the_same_are_one_name(second: str, said: str) -> None:
    text = (
        "sources:\n"
        "  - {name: fast5, kind: feed, url: 'https://a.example/feed'}\n"
        f"  - {{name: \"{second}\", kind: feed, url: 'https://b.example/feed'}}\n"
    )
    problem = only(problems_of(text))
    assert (problem.line, problem.key, problem.message) == (3, "name", said)


def test_names_in_any_script_are_welcome_and_lose_their_invisible_characters() -> None:
    config = parse_config(
        "sources:\n"
        "  - {name: \"速報\", kind: feed, url: 'https://a.example/feed'}\n"
        "  - {name: \"Новости\", kind: feed, url: 'https://b.example/feed'}\n"
        "  - {name: \"ai\u200bnews\", kind: feed, url: 'https://c.example/feed'}\n"
    )
    assert [s.name for s in config.sources] == ["速報", "Новости", "ainews"]


@pytest.mark.parametrize(
    ("kind", "meant"), [("fead", "feed"), ("github_release", "github_releases"), ("rss", None)]
)
def test_an_unknown_kind_says_which_was_meant(kind: str, meant: str | None) -> None:
    problem = only(
        problems_of(f"sources:\n  - {{name: a, kind: {kind}, url: 'https://a.example/f'}}\n")
    )
    assert problem.message == f"kind {kind!r} is not known"
    if meant:
        assert f"did you mean  kind: {meant}  ?" in str(problem.fix)
    else:
        assert str(problem.fix).startswith("write kind: one of arxiv, feed")


def test_digest_time_and_timezone_are_checked() -> None:
    time, zone = problems_of('digest:\n  time: "25:00"\n  timezone: Mars/Olympus\nsources: []\n')
    assert (time.line, time.key) == (2, "time")
    assert (zone.line, zone.key) == (3, "timezone") and "Europe/Berlin" in str(zone.fix)


def test_all_problems_are_reported_at_once_in_line_order() -> None:
    text = (
        "sources:\n"
        "  - {name: a, kind: feed, url: 'nope'}\n"
        "  - {name: b, kind: feed, url: 'https://ok.example', colour: red}\n"
        "  - {name: a, kind: arxiv, query: x}\n"
    )
    lines = [p.line for p in problems_of(text)]
    assert lines == sorted(lines) and len(lines) == 3


def test_empty_and_missing_files_explain_what_to_do(tmp_path: Path) -> None:
    assert "empty" in only(problems_of("")).message
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "nope.yaml")
    assert "TRACKER_SOURCES" in str(caught.value)


def test_sources_check_exits_0_when_valid(
    write_sources, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TRACKER_SOURCES", str(write_sources(VALID)))
    assert main(["sources", "check"]) == 0
    assert "3 sources" in capsys.readouterr().out


def test_sources_check_exits_2_and_prints_file_line_and_fix(
    write_sources, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_sources(
        "sources:\n  - name: a\n    kind: feed\n    url: https://a.example\n    intervall: 1h\n"
    )
    monkeypatch.setenv("TRACKER_SOURCES", str(path))
    assert main(["sources", "check"]) == 2
    err = capsys.readouterr().err
    assert f"{path}:5: intervall:" in err and "did you mean interval:" in err


def test_sources_check_json_lists_problems(
    write_sources, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(
        "TRACKER_SOURCES", str(write_sources("sources:\n  - name: a\n    kind: feed\n"))
    )
    assert main(["sources", "check", "--json"]) == 2
    report = json.loads(capsys.readouterr().out)
    assert report["valid"] is False
    assert report["problems"][0]["key"] == "url" and report["problems"][0]["line"] == 2
