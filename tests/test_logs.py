"""Logs of tracker serve: logfmt lines, quiet libraries, and never a secret."""

from __future__ import annotations

import io
import logging

import pytest

from tracker.runtime import logs

TOKEN = "MTIzNDU2Nzg5MDEyMzQ1Njc4.GaBcDe.secret-token-value"


@pytest.fixture
def captured():
    stream = io.StringIO()
    logs.setup(verbose=False, secrets=[TOKEN], stream=stream)
    yield stream
    logging.getLogger().handlers.clear()


def test_a_secret_in_a_message_or_an_exception_is_blanked(captured):
    log = logging.getLogger("tracker.serve")
    log.warning("login with %s failed", TOKEN)
    try:
        raise RuntimeError(f"401 for token {TOKEN}")
    except RuntimeError:
        log.exception("bot stopped")
    text = captured.getvalue()
    assert TOKEN not in text
    assert text.count("[redacted]") == 2


def test_lines_are_logfmt_and_quote_what_needs_quoting(captured):
    logging.getLogger("tracker.serve").info('digest "today"\nsecond line')
    (line,) = captured.getvalue().splitlines()
    assert line.startswith("time=") and " level=info logger=tracker.serve " in line
    assert line.endswith('msg="digest \\"today\\"\\nsecond line"')


def test_libraries_are_quiet_unless_they_warn(captured):
    logging.getLogger("discord.gateway").info("Shard ID None has connected")
    logging.getLogger("apscheduler.scheduler").info("Added job")
    logging.getLogger("discord.http").warning("We are being rate limited")
    text = captured.getvalue()
    assert "connected" not in text and "Added job" not in text
    assert "rate limited" in text
