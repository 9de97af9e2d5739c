"""Canonical URLs: one spelling per page, so the same link is recognised as the same.

Pure functions; no network.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from typing import Any
from urllib.parse import SplitResult, parse_qsl, urlencode, urlsplit, urlunsplit

#: Query parameters that track the reader rather than select the content.
TRACKING_PARAMS = frozenset(
    {
        "fbclid",
        "gclid",
        "dclid",
        "gbraid",
        "wbraid",
        "msclkid",
        "yclid",
        "twclid",
        "mc_cid",
        "mc_eid",
        "_hsenc",
        "_hsmi",
        "hsctatracking",
        "mkt_tok",
        "igshid",
        "ref_src",
        "ref_url",
        "spm",
        "vero_id",
        "vero_conv",
        "oly_anon_id",
        "oly_enc_id",
        "rb_clickid",
        "s_cid",
        "ncid",
        "cmpid",
        "sr_share",
        "trk",
        "trkcampaign",
        "__s",
        "ck_subscriber_id",
        "wt.mc_id",
        "_ga",
        "_gl",
    }
)
TRACKING_PREFIXES = ("utm_", "pk_", "mtm_", "at_medium", "at_campaign")

_DEFAULT_PORTS = {"http": 80, "https": 443}


def canonical_url(url: str) -> str:
    """The URL with tracking parameters, navigation fragments and default ports removed.

    Lower-cases scheme and host (they are case-insensitive), keeps the path and
    the order of the remaining query parameters (they may be significant).
    """
    url = url.strip()
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return url
    scheme = parts.scheme.lower()
    host = parts.hostname.lower().rstrip(".")
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = host if port in (None, _DEFAULT_PORTS[scheme]) else f"{host}:{port}"
    if ":" in host and not host.startswith("["):
        netloc = f"[{host}]" if port in (None, _DEFAULT_PORTS[scheme]) else f"[{host}]:{port}"
    query = [
        (k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not _is_tracking(k)
    ]
    path = parts.path or "/"
    fragment = "" if _is_navigation(parts.fragment) else parts.fragment
    return urlunsplit((scheme, netloc, path, urlencode(query, doseq=True), fragment))


#: Fragments that move the reader around a page rather than name a thing on it.
_NAV_FRAGMENTS = frozenset(
    {
        "",
        "comments",
        "comment",
        "respond",
        "more",
        "disqus_thread",
        "top",
        "main",
        "content",
        "main-content",
        "article",
        "post",
        "reply",
        "replies",
        "footnotes",
        "share",
    }
)


def _is_navigation(fragment: str) -> bool:
    """Drop ``#comments`` or ``#more``; keep ``#a080631`` on blogs whose posts are anchors."""
    lowered = fragment.lower()
    return lowered in _NAV_FRAGMENTS or lowered.startswith(
        (":~:", "more-", "comment-", "fn", "utm_")
    )


def _is_tracking(key: str) -> bool:
    lowered = key.lower()
    return lowered in TRACKING_PARAMS or lowered.startswith(TRACKING_PREFIXES)


_ARXIV_NEW = r"\d{4}\.\d{4,5}"
_ARXIV_OLD = r"[a-z][a-z.-]+(?:\.[A-Z]{2})?/\d{7}"
ARXIV_ID = re.compile(rf"(?P<id>{_ARXIV_NEW}|{_ARXIV_OLD})(?:v(?P<version>\d+))?")
_ARXIV_URL = re.compile(
    rf"arxiv\.org/(?:abs|pdf|html|format)/(?P<id>{_ARXIV_NEW}|{_ARXIV_OLD})(?:v(?P<version>\d+))?",
    re.IGNORECASE,
)


def split_arxiv_id(text: str) -> tuple[str, int | None]:
    """``2104.12255v2`` -> (``2104.12255``, 2); also accepts abs/pdf URLs.

    The version-less id names the paper; the version says which revision.
    """
    text = text.strip()
    match = _ARXIV_URL.search(text) or ARXIV_ID.fullmatch(text.removeprefix("arXiv:"))
    if not match:
        raise ValueError(f"{text!r} is not an arXiv id")
    version = match.group("version")
    return match.group("id"), int(version) if version else None


def without_credentials(url: str) -> str:
    """The URL without user, password, query or fragment: safe to show and to store."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, _host_port(parts.hostname, parts), parts.path, "", ""))


def origin(url: str) -> str:
    """scheme://host[:port] of ``url``: where it points, with nothing that may hold a key."""
    parts = urlsplit(url)
    return f"{parts.scheme or 'http'}://{_host_port(parts.hostname or '?', parts)}"


def _host_port(host: str | None, parts: SplitResult) -> str:
    host = host or ""
    if ":" in host:  # IPv6
        host = f"[{host}]"
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:  # not a number: the request will fail and say so
        port = ""
    return f"{host}{port}"


def arxiv_paper(url: str) -> str | None:
    """The arXiv id (without version) of an arXiv abstract, PDF or HTML link; else None."""
    try:
        paper, _ = split_arxiv_id(url)
    except ValueError:
        return None
    return paper


@functools.cache
def _suffixes() -> Any:
    from publicsuffixlist import PublicSuffixList

    return PublicSuffixList()


def outlet(url: str) -> str:
    """Who published ``url``: its registrable domain (``blog.openai.com`` and
    ``openai.com/index.xml`` are one outlet, ``a.github.io`` and ``b.github.io`` two),
    by the Public Suffix List shipped with ``publicsuffixlist`` (no download)."""
    host = (urlsplit(url).hostname or "").rstrip(".").lower()
    if not host:
        return ""
    try:
        ipaddress.ip_address(host)
        return host
    except ValueError:
        pass
    return str(_suffixes().privatesuffix(host) or host)


def url_problem(url: str) -> str | None:
    """What is wrong with ``url`` without looking its host up, if anything."""
    example = "such as https://example.com/feed.xml"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        return f"{url!r} is not a usable address ({exc}); give a full address {example}"
    if parts.scheme.lower() not in ("http", "https"):
        scheme = f"{parts.scheme}: addresses" if parts.scheme else "addresses without http(s)://"
        return f"tracker follows http and https feeds only, not {scheme}; give one {example}"
    if not parts.hostname:
        return f"{url!r} has no host name; give a full address {example}"
    if parts.username is not None or parts.password is not None:
        return (
            "the address carries a user name or password; tracker keeps no credentials "
            "in sources.yaml, so give the address of a feed that needs no login"
        )
    if any(c.isspace() or not c.isprintable() for c in url) or len(url) > 2000:
        return f"{url[:200]!r} is not a usable address; give a full address {example}"
    return None


def url_key(url: str) -> str:
    """One spelling per feed address: http and https, a trailing slash and case of the host
    do not make another feed."""
    canonical = canonical_url(str(url))
    return re.sub(r"^https?://", "", canonical).rstrip("/")
