"""Size limits shared by the CLIs, the engine and the document (one place for each number)."""

from __future__ import annotations

# The largest picture Impasto opens or makes: 100 megapixels (10k x 10k). ``app`` uses it for
# documents and images; pose canvases and CLI inputs are held to it too.
DEFAULT_PIXEL_LIMIT = 100_000_000

# The widest feather of a pasted mask: beyond this a blur costs gigabytes and changes nothing.
MAX_MASK_BLUR = 512

# Text files we parse (pose JSON): read at most this many bytes, whatever the file claims.
MAX_JSON_BYTES = 50 * 1024 * 1024

# JSON nested deeper than this is refused before it reaches the parser (no RecursionError).
MAX_JSON_DEPTH = 64
