"""genbench built-in plugin: vae (being written; registers nothing yet)."""
