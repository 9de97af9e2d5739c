"""Stage 2: new items become stories: chunked, embedded, merged, summarised and ranked."""
