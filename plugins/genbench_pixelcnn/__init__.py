"""genbench built-in plugin: pixelcnn (being written; registers nothing yet)."""
