"""genbench built-in plugin: gan (being written; registers nothing yet)."""
