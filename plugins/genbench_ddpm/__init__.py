"""genbench built-in plugin: ddpm (being written; registers nothing yet)."""
