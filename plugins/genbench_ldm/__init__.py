"""genbench built-in plugin: ldm (being written; registers nothing yet)."""
