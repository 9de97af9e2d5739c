"""The one place that talks to OpenAI-compatible servers (OpenAI, Ollama, vLLM...)."""
