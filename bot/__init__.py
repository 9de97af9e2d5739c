"""The Discord bot (issue 5). Not built yet: until then digests go to the terminal and files."""
