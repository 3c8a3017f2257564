"""A lab run: its directory and manifest, profiles, the services it starts, the stage runner, the book, the CLI."""
