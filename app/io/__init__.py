"""Persistence: the OpenRaster project file, PSD export/import, archive safety, atomic saves and
autosave. Widgets never import this package directly; they go through :mod:`app.files`, which
re-exports the errors and the :class:`~app.io.autosave.AutosaveManager`.

Kept import-light on purpose: :mod:`app.image_io` imports :mod:`app.io.errors` at start-up.
"""
