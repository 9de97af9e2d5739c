"""``sources.yaml``: parsed once into validated models, or one clear message per mistake.

Users edit this file by hand, so every problem is reported with the file, the
line, the key and what to write instead, and all problems are reported at
once rather than one per run.
"""

from __future__ import annotations

import difflib
import functools
import os
from pathlib import Path
from typing import Annotated, Any, Union

from pydantic import (
    BaseModel,
    Field,
    ValidationError,
    create_model,
)
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from tracker.config.digest import DigestSettings, RouteSettings
from tracker.config.kinds import SourceSettings, kinds
from tracker.config.names import skeleton, visible
from tracker.config.values import Strict
from tracker.errors import ConfigError, ConfigProblem


class Config(Strict):
    """The whole of ``sources.yaml``."""

    sources: list[SourceSettings] = Field(default_factory=list, description="What to follow.")
    interests: list[str] = Field(default_factory=list, description="Topics you care about.")
    stack: list[str] = Field(
        default_factory=list,
        description="Tools you run (repo names): their breaking releases top the digest.",
    )
    digest: DigestSettings = Field(default_factory=DigestSettings)

    def source(self, name: str) -> SourceSettings:
        for source in self.sources:
            if source.name == name:
                return source
        raise KeyError(name)


# --- loading ---------------------------------------------------------------

_EXAMPLE = {
    "name": "name: my-source",
    "url": "url: https://example.com/feed.xml",
    "sources": "sources:\n  - name: ...\n    kind: feed\n    url: https://...",
}


def _example(key: str) -> str:
    """What to write for a missing ``key``: the kinds say theirs (``repo: owner/name``)."""
    if key == "kind":
        return f"kind: feed   (one of {', '.join(kinds())})"
    for kind in kinds().values():
        if kind.example.startswith(f"{key}:"):
            return kind.example
    return _EXAMPLE.get(key, key + ": ...")


@functools.cache
def _validating(models: tuple[type[SourceSettings], ...]) -> type[Config]:
    """``Config`` whose ``sources:`` entries are validated by their kind's settings model
    (a pydantic union tagged by ``kind:``): made once for each set of registered kinds."""
    entry: Any = (
        models[0]
        if len(models) == 1
        else Annotated[
            Union[models],  # noqa: UP007 - a runtime union of a tuple of models
            Field(discriminator="kind"),
        ]
    )
    return create_model(
        "Config",
        __base__=Config,
        sources=(list[entry], Field(default_factory=list, description="What to follow.")),
    )


#: sources.yaml is a page or two written by hand; a file past this is not one, and parsing
#: megabytes of YAML takes seconds each (5 MB: 6 s). TRACKER_SOURCES_MAX_BYTES raises it.
MAX_BYTES = 2 * 1024 * 1024
#: Values (mappings, lists and scalars) the file may hold once its aliases are expanded: a
#: "billion laughs" of nine nested anchors is a few lines that expand past a billion.
MAX_NODES = 200_000


def max_bytes() -> int:
    """The size cap of sources.yaml: TRACKER_SOURCES_MAX_BYTES, else ``MAX_BYTES``."""
    raw = os.environ.get("TRACKER_SOURCES_MAX_BYTES", "").strip()
    return int(raw) if raw.isdigit() and int(raw) > 0 else MAX_BYTES


def _too_big(file: str, size: int, cap: int) -> ConfigError:
    return ConfigError(
        [
            ConfigProblem(
                file,
                None,
                None,
                f"the file is {size:,} bytes, more than the {cap:,} bytes tracker reads",
                "sources.yaml lists sources, a few kilobytes even for hundreds; if yours "
                "really is this big, set TRACKER_SOURCES_MAX_BYTES to a larger number of bytes",
            )
        ]
    )


def load_config(path: Path) -> Config:
    """Read and validate ``path``; raise ConfigError listing every problem found."""
    file = str(path)
    cap = max_bytes()
    try:
        with path.open("rb") as f:
            raw = f.read(cap + 1)
            if len(raw) > cap:
                raise _too_big(file, os.fstat(f.fileno()).st_size, cap)
        # As read_text would: universal newlines.
        text = raw.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")
    except FileNotFoundError:
        raise ConfigError(
            [
                ConfigProblem(
                    file,
                    None,
                    None,
                    "the file does not exist",
                    "run tracker from the folder that holds sources.yaml, "
                    "or set TRACKER_SOURCES to its path",
                )
            ]
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([ConfigProblem(file, None, None, f"cannot be read ({exc})")]) from None
    return parse_config(text, file)


def parse_config(text: str, file: str = "sources.yaml") -> Config:
    """Validate YAML text; ``file`` is only used to name the file in messages."""
    if len(text) > (cap := max_bytes()) and len(text.encode("utf-8")) > cap:
        raise _too_big(file, len(text.encode("utf-8")), cap)
    try:
        return _parse_config(text, file)
    except RecursionError:  # hundreds of nested brackets: the parser gives up
        raise ConfigError(
            [
                ConfigProblem(
                    file,
                    None,
                    None,
                    "the YAML is nested too deeply to read",
                    "sources.yaml needs only a few levels; look for runaway [ or { brackets",
                )
            ]
        ) from None


def _parse_config(text: str, file: str) -> Config:
    yaml = YAML(typ="rt")
    try:
        data = yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = _last_written_line(text, mark.line + 1) if mark is not None else None
        problem = " ".join(p for p in (exc.problem, exc.context) if p)
        raise ConfigError(
            [
                ConfigProblem(
                    file,
                    line,
                    None,
                    f"YAML syntax error: {problem}",
                    "check the indentation and quoting on this line and the one above",
                )
            ]
        ) from None
    except YAMLError as exc:  # e.g. a control character: ruamel's reader error has no mark
        unreadable = ConfigProblem(
            file,
            None,
            None,
            f"cannot be read as YAML ({exc})",
            "remove control characters and save the file as UTF-8",
        )
        raise ConfigError([unreadable]) from None
    if data is None:
        raise ConfigError(
            [
                ConfigProblem(
                    file, None, None, "the file is empty", f"start it with\n{_EXAMPLE['sources']}"
                )
            ]
        )
    if not isinstance(data, CommentedMap):
        raise ConfigError(
            [
                ConfigProblem(
                    file,
                    1,
                    None,
                    "the file must be a mapping with a sources: list",
                    f"start it with\n{_EXAMPLE['sources']}",
                )
            ]
        )

    problems: list[ConfigProblem] = []
    try:
        models = tuple(kind.settings for kind in kinds().values())
        config = _validating(models).model_validate(_plain(data, _Budget(file)))
    except ValidationError as exc:
        problems.extend(_problems(exc, data, file))
        config = None
    problems.extend(_duplicate_names(data.get("sources"), file))
    if config is not None:
        problems.extend(_route_problems(config, data, file))
    if problems or config is None:
        problems.sort(key=lambda p: p.line or 0)
        raise ConfigError(problems)
    return config


def _last_written_line(text: str, line: int) -> int:
    """A parse error found at the end of the file belongs to the last line with text."""
    lines = text.splitlines()
    line = min(line, len(lines))
    while line > 1 and not lines[line - 1].strip():
        line -= 1
    return max(line, 1)


class _Budget:
    """Counts the values ``_plain`` makes, to stop an alias bomb before it fills memory."""

    def __init__(self, file: str, limit: int = MAX_NODES):
        self.file, self.left = file, limit
        self.line: int | None = None  # of the last mapping or list entered

    def spend(self, node: Any) -> None:
        lc = getattr(node, "lc", None)
        if lc is not None and lc.line is not None:
            self.line = lc.line + 1
        self.left -= 1
        if self.left < 0:
            line = self.line
            raise ConfigError(
                [
                    ConfigProblem(
                        self.file,
                        line,
                        None,
                        f"the file expands to more than {MAX_NODES:,} values: its aliases "
                        "(*name) repeat anchors (&name) that repeat others",
                        "write the sources out; an alias may repeat a small block, not nest",
                    )
                ]
            )


def _plain(node: Any, budget: _Budget | None = None) -> Any:
    """ruamel's round-trip containers as plain dicts and lists for pydantic. The loader keeps
    an alias as a second reference to its anchor's value; here each becomes a copy, counted
    against ``budget``."""
    if budget is not None:
        budget.spend(node)
    if isinstance(node, dict):
        return {str(k): _plain(v, budget) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v, budget) for v in node]
    return node


def _locate(data: Any, loc: tuple[int | str, ...]) -> tuple[int | None, str | None, Any]:
    """Follow a pydantic error location through the YAML tree to a line and key.

    Returns the 1-based line, the innermost key name and the innermost node
    reached. Location parts that are not in the document (a discriminated
    union's tag) are skipped.
    """
    node: Any = data
    line: int | None = None
    key: str | None = None
    for part in loc:
        if isinstance(node, CommentedMap) and part in node:
            line = node.lc.key(part)[0] + 1
            key = str(part)
            node = node[part]
        elif isinstance(node, CommentedSeq) and isinstance(part, int) and part < len(node):
            line = node.lc.item(part)[0] + 1
            # An item of a plain list (sections: [news]) is named by its list's key; an
            # entry of sources: or routes: is a thing of its own.
            key = key if not isinstance(node[part], CommentedMap) else None
            node = node[part]
        elif isinstance(node, CommentedMap) and isinstance(part, str) and part not in kinds():
            key = part
    if line is None and isinstance(node, CommentedMap | CommentedSeq):
        line = node.lc.line + 1
    return line, key, node


def _problems(exc: ValidationError, data: CommentedMap, file: str) -> list[ConfigProblem]:
    problems = []
    for error in exc.errors(include_url=False):
        loc = tuple(error["loc"])
        kind_tag = next((p for p in loc if isinstance(p, str) and p in kinds()), None)
        if error["type"] == "missing":
            line, _, _ = _locate(data, loc[:-1])
            key = str(loc[-1])
            problems.append(
                ConfigProblem(
                    file,
                    line,
                    key,
                    "is required but missing",
                    f"add  {_example(key)}",
                )
            )
            continue
        line, at_key, _ = _locate(data, loc)
        ctx = error.get("ctx") or {}
        if error["type"] == "extra_forbidden":
            bad = str(loc[-1])
            model = kinds()[kind_tag].settings if kind_tag else _model_at(loc)
            valid = sorted(model.model_fields) if model else []
            close = difflib.get_close_matches(bad, valid, n=1)
            hint = f"did you mean {close[0]}:? " if close else "remove it. "
            if valid:
                hint += f"Valid keys here: {', '.join(valid)}"
            problems.append(ConfigProblem(file, line, bad, "is not a known key", hint.strip()))
        elif error["type"] in ("union_tag_invalid", "union_tag_not_found"):
            _, _, entry = _locate(data, loc)
            if isinstance(entry, CommentedMap) and "kind" in entry:
                line = entry.lc.key("kind")[0] + 1
            given = ctx.get("tag")
            what = f"kind {given!r} is not known" if given else "has no kind:"
            close = difflib.get_close_matches(str(given or ""), list(kinds()), n=1, cutoff=0.6)
            meant = (
                f"did you mean  kind: {close[0]}  ? (the kinds: {', '.join(kinds())})"
                if close
                else f"write kind: one of {', '.join(kinds())}"
            )
            problems.append(ConfigProblem(file, line, "kind", what, meant))
        else:
            message = error["msg"]
            if message.startswith("Value error, "):
                message = message[len("Value error, ") :]
            fix = ctx.get("fix")
            if fix is None and "input" in error and error["type"].endswith("_type"):
                fix = f"this should be {error['type'].removesuffix('_type').replace('_', ' ')}"
            problems.append(ConfigProblem(file, line, at_key, message, fix))
    return problems


def _model_at(loc: tuple[int | str, ...]) -> type[BaseModel] | None:
    if len(loc) == 1:
        return Config
    if loc[0] == "digest" and len(loc) == 2:
        return DigestSettings
    if loc[:2] == ("digest", "routes") and len(loc) == 4:
        return RouteSettings
    return None


def _duplicate_names(entries: Any, file: str, what: str = "source") -> list[ConfigProblem]:
    """Entries of ``sources:`` (or ``digest.routes:``) whose name, in any case, is taken."""
    if not isinstance(entries, CommentedSeq):
        return []
    seen: dict[str, tuple[int, str]] = {}
    problems = []
    for entry in entries:
        if not isinstance(entry, CommentedMap) or not isinstance(entry.get("name"), str):
            continue
        name = visible(entry["name"])
        line = entry.lc.key("name")[0] + 1
        key = skeleton(name)
        if key in seen:
            other_line, other = seen[key]
            said = (
                f"{name!r} is already used on line {other_line}"
                if name.casefold() == other.casefold()
                else f"{name!r} looks the same as {other!r} on line {other_line}"
            )
            problems.append(
                ConfigProblem(file, line, "name", said, f"give every {what} its own name")
            )
        else:
            seen[key] = (line, name)
    return problems


def _route_problems(config: Config, data: CommentedMap, file: str) -> list[ConfigProblem]:
    """Routes that name a source or tag nothing has, or a name used twice: each would
    quietly send nothing (or mix two routes' records), so each is an error with its line."""
    names = [s.name for s in config.sources]
    tags = sorted({t for s in config.sources for t in s.tags})
    digest = data.get("digest")
    problems = _duplicate_names(
        digest.get("routes") if isinstance(digest, CommentedMap) else None, file, "route"
    )
    for i, route in enumerate(config.digest.routes):
        for key, wanted, known in (("sources", route.sources, names), ("tags", route.tags, tags)):
            for j, value in enumerate(wanted):
                if value in known:
                    continue
                at, _, _ = _locate(data, ("digest", "routes", i, key, j))
                close = difflib.get_close_matches(value, known, n=1)
                what = "source" if key == "sources" else "tag"
                fix = f"did you mean {close[0]}? " if close else ""
                fix += f"Known {key}: {', '.join(known) or 'none'}"
                problems.append(ConfigProblem(file, at, key, f"no {what} is {value!r}", fix))
    return problems
