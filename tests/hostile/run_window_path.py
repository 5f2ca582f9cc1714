"""Worker for the hostile corpus: opens each input with the window's own calls (app.files), saves
it as a project, opens that again, and prints one JSON line per input. Run in a subprocess under
a memory cap by tests/hostile/test_corpus.py."""

from __future__ import annotations

import json
import sys
import traceback
from pathlib import Path

import numpy as np


def layers_equal(a, b) -> str | None:
    if len(a.layers) != len(b.layers):
        return f"{len(a.layers)} layers became {len(b.layers)}"
    for x, y in zip(a.layers, b.layers, strict=True):
        if (x.kind, x.name, x.visible, x.locked) != (y.kind, y.name, y.visible, y.locked):
            return f"layer {x.name!r} changed its properties"
        if abs(x.opacity - y.opacity) > 1e-9:
            return f"layer {x.name!r} changed opacity"
        if x.raster is not None:
            if x.raster.rect != y.raster.rect:
                return f"layer {x.name!r} moved from {x.raster.rect} to {y.raster.rect}"
            if not np.array_equal(x.raster.data, y.raster.data):
                return f"layer {x.name!r} changed its pixels"
    return None


def main(folder: str, inputs: list[str]) -> None:
    from app import files

    for index, name in enumerate(inputs):
        result: dict = {"input": name}
        try:
            try:
                doc = files.open_document(Path(name))
            except files.FileError as err:
                result.update(outcome="refused", message=str(err))
            else:
                target = Path(folder) / f"window-{index}.ora"
                files.save_project(doc, target)
                again = files.open_document(target)
                difference = layers_equal(doc, again)
                result.update(outcome="ok", difference=difference)
        except BaseException as err:  # reported, not raised: the test names the case
            result.update(outcome="crash", message=f"{type(err).__name__}: {err}")
            result["traceback"] = traceback.format_exc()[-1500:]
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
