"""``/ask``, ``/search`` and ``/why``: questions answered from the corpus, with their sources."""
