"""Upscale-and-refine jobs: upscale, then regenerate in overlapping tiles (tiled img2img).

The Ultimate SD Upscale / MultiDiffusion approach, with memory bounded for 8k pictures:

- the upscaled picture is one RGB uint8 array, refined **in place**: tiles run one at a time in
  rows, each generated from the picture as it was before refining (the few overlap strips that
  earlier tiles overwrite are kept aside until their tile runs: :class:`PristineBands`; a tile
  fed its neighbour's refined edge would copy that edge's step into itself), at the tile size by
  the ordinary img2img path
  (``Engine.run`` on a tile-sized request: the prompt, LoRAs and ControlNets apply to every tile;
  a ControlNet of type ``tile`` gets the tile itself), and blended back;
- the blend weight ramps from 0 at a tile's top and left edges (where refined neighbours already
  are) to 1 past the overlap, so every pixel changes continuously from one tile to the next and no
  seam shows; right and bottom edges need no ramp, the next tile's ramp covers them;
- only tile-sized float32 buffers exist; the full-size picture is never held as floats.

Previews stream tile by tile (their box is the tile's place in the upscaled picture); the cancel
token is checked every step, and a cancelled job returns nothing.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, replace

import numpy as np

from inference import cropping
from inference.api import (
    Box,
    Cancelled,
    CancelToken,
    ControlInput,
    EngineProtocol,
    InvalidRequestError,
    Mode,
    PreviewCallback,
    Request,
    Result,
    UpscaleSpec,
    Variant,
)
from inference.classic import is_classic
from inference.recipe import Recipe
from inference.upscale import Upscaler, check_scale, upscale_image

log = logging.getLogger(__name__)

MIN_TILE = 64
MAX_TILE = 2048
TILE_CONTROL = "tile"  # a ControlNet of this type is fed the tile itself


@dataclass(frozen=True)
class TilePlan:
    """Where the tiles go in the upscaled picture, in the order they run (rows, left to right)."""

    width: int
    height: int
    boxes: tuple[Box, ...]

    def __len__(self) -> int:
        return len(self.boxes)


def _starts(length: int, tile: int, overlap: int) -> list[int]:
    """Tile starts along one side: evenly spread, overlapping by at least ``overlap``."""
    if length <= tile:
        return [0]
    stride = tile - overlap
    count = math.ceil((length - overlap) / stride)
    count = max(2, count)
    return [round(i * (length - tile) / (count - 1)) for i in range(count)]


def plan_tiles(width: int, height: int, tile: int, overlap: int) -> TilePlan:
    tw, th = min(tile, width), min(tile, height)
    boxes = tuple(
        Box(x, y, tw, th)
        for y in _starts(height, tile, overlap)
        for x in _starts(width, tile, overlap)
    )
    return TilePlan(width, height, boxes)


def earlier_overlap(plan: TilePlan, index: int) -> tuple[int, int]:
    """(left, top): how far earlier tiles reach into tile ``index`` from its left edge (tiles of
    its row) and from its top edge (tiles of earlier rows). Nothing earlier lies elsewhere in it:
    tiles run in rows, left to right."""
    left, _, top, _ = _edge_overlaps(plan, index)
    return left, top


def _edge_overlaps(plan: TilePlan, index: int) -> tuple[int, int, int, int]:
    """How far the neighbours reach into tile ``index`` from its left, right, top, bottom."""
    box = plan.boxes[index]
    row = [b for b in plan.boxes if b.y == box.y]
    left = max((b.right - box.x for b in row if b.x < box.x), default=0)
    right = max((box.right - b.x for b in row if b.x > box.x), default=0)
    top = max((b.bottom - box.y for b in plan.boxes if b.y < box.y), default=0)
    bottom = max((box.bottom - b.y for b in plan.boxes if b.y > box.y), default=0)
    width, height = box.width, box.height
    return (
        min(max(0, left), width),
        min(max(0, right), width),
        min(max(0, top), height),
        min(max(0, bottom), height),
    )


def _ramp(size: int, rise: int, fall: int) -> np.ndarray:
    """float32 weights over ``size`` pixels: rising over the first ``rise`` pixels from near 0,
    falling over the last ``fall`` pixels to near 0, 1 between (never exactly 0)."""
    weights = np.ones(size, np.float32)
    if rise > 0:
        weights[:rise] = (np.arange(rise, dtype=np.float32) + 0.5) / rise
    if fall > 0:
        falling = (np.arange(fall, 0, -1, dtype=np.float32) - 0.5) / fall
        weights[size - fall :] = np.minimum(weights[size - fall :], falling)
    return weights


def feather(plan: TilePlan, index: int) -> np.ndarray:
    """(h, w) float32: tile ``index``'s share of the picture, fading out across each overlap with
    a neighbour (not at the picture's own edges)."""
    box = plan.boxes[index]
    left, right, top, bottom = _edge_overlaps(plan, index)
    return _ramp(box.height, top, bottom)[:, None] * _ramp(box.width, left, right)[None, :]


def blend_weights(plan: TilePlan, index: int) -> np.ndarray:
    """(h, w) float32 opacity of tile ``index`` over what earlier tiles left: its feather over
    the sum of the feathers so far. Blending tile after tile this way keeps a running weighted
    mean, so the end result is the feather-weighted average of every tile over each pixel (as
    MultiDiffusion averages), though only one tile exists at a time."""
    box = plan.boxes[index]
    own = feather(plan, index)
    total = own.copy()
    for earlier in range(index):
        other = plan.boxes[earlier]
        if not _overlaps(other, box):
            continue
        x0, y0 = max(box.x, other.x), max(box.y, other.y)
        x1, y1 = min(box.right, other.right), min(box.bottom, other.bottom)
        weights = feather(plan, earlier)
        total[y0 - box.y : y1 - box.y, x0 - box.x : x1 - box.x] += weights[
            y0 - other.y : y1 - other.y, x0 - other.x : x1 - other.x
        ]
    return own / total


def _overlaps(a: Box, b: Box) -> bool:
    return a.x < b.right and b.x < a.right and a.y < b.bottom and b.y < a.bottom


class PristineBands:
    """The unrefined pixels of the bands of later tiles that earlier tiles overwrite.

    Every tile is generated from the upscaled picture as it was before refining (as
    MultiDiffusion does): a tile fed its neighbour's refined edge would copy that edge's step
    into itself. The picture is refined in place, so before a tile is blended in, the top and
    left bands (see :func:`earlier_overlap`) of each later tile it touches are copied once, while
    still untouched: a few strips of ``overlap`` pixels, never a second picture."""

    def __init__(self, plan: TilePlan) -> None:
        self.plan = plan
        self._bands: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def keep_before_writing(self, picture: np.ndarray, index: int) -> None:
        written = self.plan.boxes[index]
        for later in range(index + 1, len(self.plan)):
            box = self.plan.boxes[later]
            if later in self._bands or not _overlaps(written, box):
                continue
            left, top = earlier_overlap(self.plan, later)
            top_band = picture[box.y : box.y + top, box.x : box.right, :3].copy()
            left_band = picture[box.y : box.bottom, box.x : box.x + left, :3].copy()
            self._bands[later] = (top_band, left_band)

    def tile_source(self, picture: np.ndarray, index: int) -> np.ndarray:
        """Tile ``index`` as it was before any tile was blended in (its bands are let go)."""
        box = self.plan.boxes[index]
        tile = np.array(picture[box.y : box.bottom, box.x : box.right, :3])
        bands = self._bands.pop(index, None)
        if bands is not None:
            top_band, left_band = bands
            tile[:, : left_band.shape[1]] = left_band
            tile[: top_band.shape[0], :] = top_band
        return tile


def blend_tile(canvas: np.ndarray, tile: np.ndarray, box: Box, weights: np.ndarray) -> None:
    """Blend ``tile`` (RGB uint8, box-sized) into the colour of ``canvas`` (RGB or RGBA) at
    ``box`` in place."""
    region = canvas[box.y : box.bottom, box.x : box.right, :3]
    mixed = tile.astype(np.float32)  # the one tile-sized float buffer: region + w (tile - region)
    mixed -= region
    mixed *= weights[..., None]
    mixed += region
    np.rint(mixed, out=mixed)
    region[...] = mixed


# ---- validation -------------------------------------------------------------------------------


def validate_upscale(request: Request) -> tuple[int, int]:
    """The upscaled size, or InvalidRequestError with a sentence the user can act on."""
    spec = request.upscale
    assert spec is not None
    if request.image is None:
        raise InvalidRequestError("upscaling needs an image")
    height, width = request.image.shape[:2]
    size = check_scale(width, height, spec.scale, spec.pixel_limit)
    if not spec.refine:
        if spec.scale == 1:
            raise InvalidRequestError("an upscale by 1 without refining changes nothing")
        return size
    if is_classic(request.model_path):
        raise InvalidRequestError("refining needs a Stable Diffusion model")
    if not MIN_TILE <= spec.tile <= MAX_TILE or spec.tile % 8:
        raise InvalidRequestError(
            f"the tile size must be a multiple of 8 from {MIN_TILE} to {MAX_TILE}, not {spec.tile}"
        )
    if not 0 <= spec.overlap <= spec.tile // 2:
        raise InvalidRequestError(
            f"the tile overlap must be 0..{spec.tile // 2} pixels (half a tile), not {spec.overlap}"
        )
    return size


# ---- the job ----------------------------------------------------------------------------------


def run_upscale(
    engine: EngineProtocol,
    request: Request,
    upscaler: Upscaler | None,
    on_preview: PreviewCallback | None = None,
    cancel: CancelToken | None = None,
) -> Result:
    """Upscale ``request.image`` (and refine it when asked); one variant at the new size."""
    spec = request.upscale
    assert spec is not None and request.image is not None
    validate_upscale(request)
    source = request.image
    picture = upscale_image(source[..., :3], spec.scale, upscaler, spec.pixel_limit, cancel)
    height, width = picture.shape[:2]
    recipe = Recipe(
        seed=request.seed,
        extra=_upscale_labels(spec, upscaler),
        model_path=request.model_path,
    )
    if spec.refine:
        recipe = refine(engine, request, picture, on_preview, cancel)
        recipe = replace(recipe, extra=(*recipe.extra, *_upscale_labels(spec, upscaler)))
    if cancel is not None and cancel.cancelled:
        raise Cancelled("cancelled")
    variant = Variant(image=picture, seed=request.seed, box=Box(0, 0, width, height))
    return Result(variants=(variant,), recipe=recipe)


def refine(
    engine: EngineProtocol,
    request: Request,
    picture: np.ndarray,
    on_preview: PreviewCallback | None = None,
    cancel: CancelToken | None = None,
) -> Recipe:
    """Regenerate the colour of ``picture`` (RGB or RGBA uint8, upscaled) in place, tile by tile;
    returns the recipe of the tile runs (the same for every tile but its crop)."""
    spec = request.upscale
    assert spec is not None and request.image is not None
    height, width = picture.shape[:2]
    plan = plan_tiles(width, height, spec.tile, spec.overlap)
    source_h, source_w = request.image.shape[:2]
    log.info("refining %dx%d in %d tiles of %d px", width, height, len(plan), spec.tile)
    previews = _TilePreviews(on_preview, len(plan))
    pristine = PristineBands(plan)
    recipe: Recipe | None = None
    for index, box in enumerate(plan.boxes):
        if cancel is not None and cancel.cancelled:
            raise Cancelled("cancelled")
        tile = pristine.tile_source(picture, index)
        controls = tuple(
            _tile_control(c, tile, box, width / source_w, height / source_h)
            for c in request.controls
        )
        side = max(MIN_TILE, min(4096, round(math.sqrt(box.width * box.height) / 8) * 8))
        tile_request = replace(
            request,
            mode=Mode.IMG2IMG,
            image=tile,
            mask=None,
            crop_box=None,
            batch_size=1,
            model_size=side,
            controls=controls,
            upscale=None,
        )
        previews.tile(index, box)
        result = engine.run(tile_request, previews, cancel)
        generated = result.variants[0].image[..., :3]
        if recipe is None:
            recipe = Recipe.from_json(result.recipe)
        pristine.keep_before_writing(picture, index)
        blend_tile(picture, generated, box, blend_weights(plan, index))
    assert recipe is not None
    return replace(recipe, crop_box=None)


class _TilePreviews:
    """A tile run's previews placed in the upscaled picture, their steps counted over all tiles
    (a tile's step count is the sampler's, known from its first preview)."""

    def __init__(self, on_preview: PreviewCallback | None, tiles: int) -> None:
        self.on_preview = on_preview
        self.tiles = tiles
        self.steps_per_tile = 0
        self.index = 0
        self.box = Box(0, 0, 0, 0)

    def tile(self, index: int, box: Box) -> None:
        self.index, self.box = index, box

    def __call__(
        self,
        step: int,
        total: int,
        image: np.ndarray,
        box: Box | None = None,
        region: np.ndarray | None = None,
    ) -> None:
        self.steps_per_tile = max(self.steps_per_tile, total)
        if self.on_preview is not None:
            done = self.index * self.steps_per_tile
            self.on_preview(done + step, self.steps_per_tile * self.tiles, image, self.box, None)


def _tile_control(
    control: ControlInput, tile: np.ndarray, box: Box, fx: float, fy: float
) -> ControlInput:
    """The control input over one tile: a tile ControlNet sees the tile; any other control image
    (covering the source picture) is cut where the tile lies and resized to it."""
    if control.control_type == TILE_CONTROL:
        return replace(control, image=tile)
    image = control.image
    src_h, src_w = image.shape[:2]
    x0, y0 = int(box.x / fx), int(box.y / fy)
    x1 = max(x0 + 1, min(src_w, math.ceil(box.right / fx)))
    y1 = max(y0 + 1, min(src_h, math.ceil(box.bottom / fy)))
    part = np.ascontiguousarray(image[y0:y1, x0:x1, :3])
    return replace(control, image=cropping.resize(part, box.width, box.height))


def _upscale_labels(spec: UpscaleSpec, upscaler: Upscaler | None) -> tuple[tuple[str, str], ...]:
    """What the recipe records of an upscale, as A1111-style labels (kept in the PNG text)."""
    labels = [
        ("Upscale", f"{spec.scale:g}"),
        ("Upscaler", upscaler.name if upscaler is not None else "Lanczos"),
    ]
    if spec.refine:
        labels += [("Tile size", str(spec.tile)), ("Tile overlap", str(spec.overlap))]
    return tuple(labels)
