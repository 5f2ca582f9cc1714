"""Persistence: the OpenRaster project file, PSD export/import, archive safety, atomic saves and
autosave. Widgets never import this package directly; they go through :mod:`app.files`, which
re-exports the errors and the :class:`~app.io.autosave.AutosaveManager`.

Design notes (the why):

- Mask, pose and control layers are written ``visibility="hidden"`` in stack.xml and PSD, their
  own visibility kept in ``impasto:visible``: Krita, GIMP, MyPaint and Photoshop then show the same
  picture as Impasto instead of a white mask or a black ControlNet image over it.
- A mask is stored as white with the mask as alpha (one-channel PNGs would be opaque slabs in
  other apps); a pose layer's PNG is its rendered control image with black made transparent, and
  its data (exact, hidden joints keep their position) plus OpenPose JSON live under ``impasto/``.
- Recipes and generation state are JSON; numpy arrays in them go to ``impasto/arrays/*.npy``
  (``allow_pickle=False``), tuples are kept as tuples.
- Layer PNGs use zlib level 1 and are stored (not deflated again) in the zip; encoding runs on a
  few threads with a bounded window; ``mergedimage.png`` is composited in bands. Autosaves skip
  ``mergedimage.png`` (most of a save's cost; our reader never needs it) and reuse the PNGs of
  layers whose pixels did not change (``ora.PngCache``, invalidated by ``pixels_changed``).
- The PSD's merged image is our own composite, written as Photoshop stores it (colour matted on
  white + transparency, negative layer count), because psd-tools' own recompositing is slow,
  float64, and would replace it. This uses two private psd-tools attributes, pinned by tests.
- Saves go to a temp file in the target folder, fsync, rename; the previous version stays as
  ``NAME~`` (hard link, else copy). A save through a symlink writes its target; temp files of
  killed saves are removed by the next save (or open) of that file when unlocked and old.
- Everything read from a file is validated into typed values by :mod:`app.io.validate` before it
  reaches the model (a project that opens saves to a project that opens); pixel budgets are
  checked from headers before any pixel is decoded; imports are converted to 8-bit sRGB
  (:func:`app.image_io.to_srgb_rgba`, littleCMS for embedded profiles and Lab).
- A PSD keeps Impasto's layer roles in each layer's ``shmd`` metadata item ``impa``
  (:mod:`app.io.psd_roles`); other programs see plain pixel layers.
- Crash recovery decides "dead" by the session's advisory lock file, never by PID or host name.

Kept import-light on purpose: :mod:`app.image_io` imports :mod:`app.io.errors` at start-up.
"""
