"""The one place tracker talks to OpenAI-compatible servers: configured or not, where, and
keys kept out of every sentence. (Real failures over loopback are in test_summarise and
test_embed, through the summariser and the embedder that share this.)"""

from __future__ import annotations

from tracker.llm.openai_compat import OPENAI_BASE_URL, Server, llm_configured


def test_an_llm_is_configured_by_a_model_and_a_key_or_a_server_of_ones_own():
    assert llm_configured("gpt-4o-mini", "sk-x", None)
    assert llm_configured("llama3.1:8b", None, "http://localhost:11434/v1")
    assert not llm_configured(None, "sk-x", None)
    assert not llm_configured("gpt-4o-mini", None, None)


def test_where_a_server_is_never_shows_a_password_path_or_query():
    server = Server("https://user:sk-secret-123@llm.example:8443/v1?api-key=sk-secret-123")
    assert server.where == "https://llm.example:8443"
    assert Server(None).url == OPENAI_BASE_URL


def test_a_key_echoed_by_a_server_is_redacted_whoever_it_belongs_to():
    server = Server("http://127.0.0.1:1/v1", api_key="local-secret-key")
    said = server.redact("bad key local-secret-key; also sk-proj-abcdef123 \n twice")
    assert said == "bad key [redacted]; also [redacted] twice"
    assert Server(None, api_key="x").redact("x marks the spot") == "x marks the spot"
