"""Impasto's engine served to many clients on a Ray Serve cluster (``impasto serve``).

- :mod:`inference.serve.wire`: the HTTP API's JSON (requests, events), PNG images, limits —
  no Ray, shared with the client (:mod:`inference.remote`).
- :mod:`inference.serve.catalogue`: the models a server offers, referenced by name + A1111 hash.
- :mod:`inference.serve.auth`: the bearer token (made on first start, stored 0600).
- :mod:`inference.serve.deployment`: the Ray Serve deployments (the only module importing Ray).
- :mod:`inference.serve.cli`: ``impasto serve``.

Nothing in this package is imported by the desktop app's default path; Ray is an extra
(``pip install "impasto[serve]"``).
"""
