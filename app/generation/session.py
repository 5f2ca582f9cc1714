"""The generation session: what the user chose for one document, and Generate.

One :class:`GenerationSession` per document (:class:`GenerationSessions` hands them out). It holds
the observable parameters (prompt, negative, model, sampler, steps, guidance, strength, seed,
batch, LoRAs, resolution, padding, mask blur, mode override), the prompt history, and the verbs
``generate()``, ``apply_recipe()``, ``use_seed()``. Widgets bind to it and keep no state of their
own; live painting, regional prompts or a script drive the same session without any panel.

Its state is a versioned plain dict (:meth:`GenerationSession.to_state`), written through into
``doc.generation_state["session"]`` on every change, so every save path (project, autosave)
stores it without asking a widget. Projects saved before sessions kept the generate panel's
dict under ``"panel"``; :meth:`GenerationSession.from_state` migrates it.
"""

from __future__ import annotations

import contextlib
import logging
import math
import random
import weakref
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields, replace
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Signal

from app.document import Document
from app.frame import GenerationFrame, frame_of
from app.generation.jobs import JobController
from app.generation.request import (
    GenerationParams,
    RequestBuildError,
    ResolutionPolicy,
    Workflow,
    detect_workflow,
    params_from_recipe,
    recipe_loras,
)
from app.model_choice import inpaint_partner
from inference.api import Sampler

if TYPE_CHECKING:
    from app.generation.live import LiveMode
    from app.library import ModelLibrary
    from app.settings import Settings, SettingsStore

log = logging.getLogger(__name__)

STATE_KEY = "session"  # inside Document.generation_state
LEGACY_STATE_KEY = "panel"  # what the generate panel saved before sessions
STATE_VERSION = 1
MAX_SEED = 2**31 - 1  # what a seed field can show (a signed 32-bit int)
MAX_RECENT_PROMPTS = 20  # kept per session and in the user's settings
CLASSIC_NAME = "Built-in classic"
DEFAULT_SETTINGS = frozenset({"default_sampler", "default_steps", "default_guidance"})

PromptPair = tuple[str, str]  # (prompt, negative prompt)
LoraRow = tuple[str, float, bool]  # (path, weight, enabled)


@dataclass(frozen=True)
class ModelChoice:
    """The checkpoint Generate uses (path None: the built-in classic engine)."""

    path: str | None = None
    name: str = CLASSIC_NAME
    hash: str | None = None
    native_size: int = 512
    vae_path: str | None = None
    base: str | None = None  # the library's Base value, when known


@dataclass(frozen=True)
class SessionValues:
    """Everything a session's user chose: a plain value, easy to compare and save."""

    prompt: str = ""
    negative_prompt: str = ""
    model: ModelChoice = ModelChoice()
    sampler: Sampler = Sampler.EULER_A
    steps: int = 20
    guidance: float = 7.0
    strength: float = 0.75
    seed: int = 0
    random_seed: bool = True
    batch_size: int = 1
    resolution: ResolutionPolicy = ResolutionPolicy.NATIVE
    padding: int = 32
    mask_blur: int = 4
    workflow: Workflow | None = None  # the mode override; None: follow the document
    loras: tuple[LoraRow, ...] = ()  # every row, switched-off ones too


VALUE_NAMES = frozenset(f.name for f in fields(SessionValues))


class GenerationSession(QObject):
    """Observable generation parameters of one document, plus Generate."""

    changed = Signal(object)  # frozenset[str]: names of the SessionValues fields that changed
    history_changed = Signal()  # recent_prompts changed

    def __init__(
        self,
        doc: Document | None,
        jobs: JobController,
        *,
        library: ModelLibrary | None = None,
        store: SettingsStore | None = None,
        values: SessionValues | None = None,
        recent_prompts: Iterable[PromptPair] = (),
    ) -> None:
        super().__init__()
        self._doc = weakref.ref(doc) if doc is not None else None  # the registry keys on it
        self.jobs = jobs
        self.library = library
        self._store = store
        self._values = values or SessionValues()
        self.recent_prompts: list[PromptPair] = list(recent_prompts)[:MAX_RECENT_PROMPTS]
        self._live: LiveMode | None = None
        if store is not None:
            # a fresh session starts from the user's defaults; a copied one keeps its values
            first = (DEFAULT_SETTINGS if values is None else frozenset()) | {"recent_prompts"}
            self._apply_settings(store.settings, first)
            method = weakref.WeakMethod(self._apply_settings)

            def listen(settings: Settings, changed: frozenset[str]) -> None:
                apply = method()
                if apply is not None:
                    apply(settings, changed)

            weakref.finalize(self, store.subscribe(listen))  # stop hearing it when we go
        if doc is not None:
            self.from_state(doc.generation_state)

    # ---- values ---------------------------------------------------------------------------

    @property
    def doc(self) -> Document | None:
        return self._doc() if self._doc is not None else None

    @property
    def values(self) -> SessionValues:
        return self._values

    def update(self, **changes: Any) -> frozenset[str]:
        """Set some values; emits ``changed`` with the names that really changed."""
        unknown = set(changes) - VALUE_NAMES
        if unknown:
            raise TypeError(f"not a session value: {', '.join(sorted(unknown))}")
        new = replace(self._values, **changes)
        names = frozenset(n for n in changes if getattr(new, n) != getattr(self._values, n))
        if names:
            self._values = new
            self._write_through()
            self.changed.emit(names)
        return names

    def params(self, resolve_seed: bool = False) -> GenerationParams:
        """What a request is built from; with ``resolve_seed`` a random seed is drawn now."""
        v = self._values
        model = self._fresh_model()
        model = self._inpaint_model(model, v.workflow)
        seed = v.seed
        if resolve_seed and v.random_seed:
            seed = random.randint(0, MAX_SEED)
        loras: tuple[tuple[str, float], ...] = ()
        if model.path is not None:  # the classic engine has no LoRAs
            loras = tuple((path, round(weight, 4)) for path, weight, on in v.loras if on)
        return GenerationParams(
            prompt=v.prompt,
            negative_prompt=v.negative_prompt,
            model_path=model.path,
            model_name=model.name,
            model_hash=model.hash,
            vae_path=model.vae_path,
            native_size=int(model.native_size),
            sampler=v.sampler,
            steps=v.steps,
            guidance=v.guidance,
            strength=v.strength,
            seed=seed,
            batch_size=v.batch_size,
            resolution=v.resolution,
            padding=v.padding,
            mask_blur=v.mask_blur,
            workflow=v.workflow,
            loras=loras,
            frame=self.frame.rect if self.frame is not None else None,
        )

    @property
    def frame(self) -> GenerationFrame | None:
        """The document's generation frame (None without a document); see app/frame.py."""
        doc = self.doc
        return frame_of(doc) if doc is not None else None

    def _fresh_model(self) -> ModelChoice:
        """The chosen model with what the library learnt since (its hash arrives later)."""
        model = self._values.model
        entry = self.library.entry(model.path) if self.library is not None else None
        if entry is not None and entry.hash and entry.hash != model.hash:
            model = replace(model, hash=entry.hash)
        return model

    def _inpaint_model(self, model: ModelChoice, workflow: Workflow | None) -> ModelChoice:
        """For inpainting, the inpaint checkpoint of the chosen model's family when the library
        has one (the choice shown in the picker stays as it is)."""
        doc = self.doc
        if self.library is None or model.path is None or doc is None:
            return model
        if (workflow or detect_workflow(doc)) is not Workflow.INPAINT:
            return model
        partner = inpaint_partner(self.library.entries(), self.library.entry(model.path))
        return model if partner is None else model_choice(partner, model.vae_path)

    @property
    def live(self) -> LiveMode:
        """Live painting on this session (app.generation.live), made at first use."""
        if self._live is None:
            from app.generation.live import LiveMode

            self._live = LiveMode(self)
        return self._live

    # ---- verbs ----------------------------------------------------------------------------

    def generate(self) -> int:
        """Queue a job from the document now (a snapshot); returns its id. Raises
        :class:`RequestBuildError` with a sentence for the user when it cannot be built."""
        doc = self.doc
        if doc is None:
            raise RequestBuildError("Open or create a picture first.")
        params = self.params(resolve_seed=True)
        job_id = self.jobs.generate(doc, params)
        self.update(seed=min(params.seed, MAX_SEED))
        self.remember_prompt(params.prompt, params.negative_prompt)
        return job_id

    def use_seed(self, seed: int) -> None:
        """Fix the seed (e.g. a result's)."""
        self.update(random_seed=False, seed=min(int(seed), MAX_SEED))

    def reuse_last_seed(self) -> None:
        if self.jobs.last_seed is not None:
            self.use_seed(self.jobs.last_seed)

    def apply_recipe(self, recipe: Mapping[str, Any]) -> list[str]:
        """Take a result's recipe (fixed seed, its mode as the override, its model and LoRAs).
        LoRAs whose file moved are looked up by name in the library; returns the names of
        those not found."""
        params = params_from_recipe(dict(recipe), self.params())
        loras, missing = self._recipe_loras(recipe.get("loras"))
        model = self._values.model
        if params.model_path != model.path:
            model = self._choice_for(params.model_path, params.model_name, params.model_hash)
        self.update(
            prompt=params.prompt,
            negative_prompt=params.negative_prompt,
            model=model,
            sampler=params.sampler,
            steps=params.steps,
            guidance=params.guidance,
            strength=params.strength,
            seed=min(params.seed, MAX_SEED),
            random_seed=False,
            padding=params.padding,
            mask_blur=params.mask_blur,
            workflow=params.workflow,
            loras=tuple((path, weight, True) for path, weight in loras),
        )
        return missing

    def _recipe_loras(self, entries: Any) -> tuple[list[tuple[str, float]], list[str]]:
        if self.library is not None:
            base = self._base()
            return self.library.resolve_loras(entries, base)
        return list(recipe_loras(entries)), []

    def _base(self) -> Any:
        if self._values.model.base is None:
            return None
        from app.library import Base

        with contextlib.suppress(ValueError):
            return Base(self._values.model.base)
        return None

    def _choice_for(self, path: str | None, name: str, model_hash: str | None) -> ModelChoice:
        if path is None:
            return ModelChoice()
        entry = self.library.entry(path) if self.library is not None else None
        if entry is not None:
            return model_choice(entry, self._values.model.vae_path)
        return replace(self._values.model, path=path, name=name, hash=model_hash)

    # ---- prompt history -------------------------------------------------------------------

    def remember_prompt(self, prompt: str, negative: str = "") -> None:
        pair = (prompt.strip(), negative.strip())
        if not pair[0]:
            return
        if pair in self.recent_prompts:
            self.recent_prompts.remove(pair)
        self.recent_prompts.insert(0, pair)
        del self.recent_prompts[MAX_RECENT_PROMPTS:]
        self._write_through()
        self.history_changed.emit()
        self._save_recent()

    def use_recent_prompt(self, prompt: str, negative: str) -> None:
        self.update(prompt=prompt, negative_prompt=negative)

    def merge_recent(self, saved: object) -> None:
        """Add saved history after ours (older entries: plain prompt strings)."""
        if not isinstance(saved, list | tuple):
            return
        before = list(self.recent_prompts)
        for item in saved:
            if isinstance(item, str):
                pair = (item.strip(), "")
            elif isinstance(item, list | tuple) and len(item) == 2:
                pair = (str(item[0]).strip(), str(item[1]).strip())
            else:
                continue
            if pair[0] and pair not in self.recent_prompts:
                self.recent_prompts.append(pair)
        del self.recent_prompts[MAX_RECENT_PROMPTS:]
        if self.recent_prompts != before:
            self.history_changed.emit()

    def _save_recent(self) -> None:
        """Keep the history in the user's settings (a failed write costs only the history)."""
        if self._store is None:
            return
        from app.settings import SettingsError

        try:
            # written off the UI thread: this runs inside the Generate key press
            self._store.update_soon(recent_prompts=tuple(self.recent_prompts))
        except (OSError, SettingsError) as error:
            log.warning("could not save the recent prompts: %s", error)

    def _apply_settings(self, settings: Settings, changed: frozenset[str]) -> None:
        """New defaults (sampler, steps, guidance) and another session's history."""
        updates: dict[str, Any] = {}
        if "default_sampler" in changed:
            with contextlib.suppress(ValueError):
                updates["sampler"] = Sampler.parse(str(settings.default_sampler))
        if "default_steps" in changed:
            updates["steps"] = int(settings.default_steps)
        if "default_guidance" in changed:
            updates["guidance"] = float(settings.default_guidance)
        if updates:
            self.update(**updates)
        if "recent_prompts" in changed:
            ours = self.recent_prompts
            self.recent_prompts = [(str(p), str(n)) for p, n in settings.recent_prompts]
            self.merge_recent([list(pair) for pair in ours])
            self.history_changed.emit()

    # ---- state ----------------------------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        """The session as a versioned, JSON-safe dict (what a project file keeps)."""
        v = self._values
        model = v.model
        return {
            "version": STATE_VERSION,
            "prompt": v.prompt,
            "negative_prompt": v.negative_prompt,
            "model": {
                "path": model.path,
                "name": model.name,
                "hash": model.hash,
                "native_size": int(model.native_size),
                "vae_path": model.vae_path,
                "base": model.base,
            },
            "sampler": v.sampler.value,
            "steps": int(v.steps),
            "guidance": float(v.guidance),
            "strength": float(v.strength),
            "seed": int(v.seed),
            "random_seed": bool(v.random_seed),
            "batch_size": int(v.batch_size),
            "resolution": v.resolution.value,
            "padding": int(v.padding),
            "mask_blur": int(v.mask_blur),
            "workflow": v.workflow.value if v.workflow is not None else None,
            "loras": [[path, float(weight), bool(on)] for path, weight, on in v.loras],
            "recent_prompts": [list(pair) for pair in self.recent_prompts],
        }

    def from_state(self, generation_state: Mapping[str, Any] | None) -> bool:
        """Take a document's saved ``generation_state`` (a session state, or an old generate
        panel dict, migrated). Values it lacks stay as they are; so does the model, which is a
        choice of this machine's library. False (logged) when there was nothing usable."""
        if not generation_state:
            return False
        state = generation_state.get(STATE_KEY)
        if not isinstance(state, Mapping):
            legacy = generation_state.get(LEGACY_STATE_KEY)
            if not isinstance(legacy, Mapping):
                return False
            state = migrate_panel_state(legacy)
        version = state.get("version", STATE_VERSION)
        if not isinstance(version, int) or version > STATE_VERSION:
            log.warning("ignoring a generation state of an unknown version: %r", version)
            return False
        try:
            values = _values_from_state(state, self._values)
        except (ValueError, TypeError, KeyError) as error:
            log.warning("ignoring a saved generation state: %s", error)
            return False
        old = self._values
        changed = frozenset(n for n in VALUE_NAMES if getattr(values, n) != getattr(old, n))
        self._values = values
        self.merge_recent(state.get("recent_prompts"))
        self._write_through()
        if changed:
            self.changed.emit(changed)
        return True

    def _write_through(self) -> None:
        doc = self.doc
        if doc is not None:
            doc.generation_state.pop(LEGACY_STATE_KEY, None)  # migrated: one format in the file
            doc.generation_state[STATE_KEY] = self.to_state()


def migrate_panel_state(panel: Mapping[str, Any]) -> dict[str, Any]:
    """The generate panel's saved dict (before sessions) as a version-1 session state."""
    state = dict(panel)
    state["version"] = 1
    if "lora_rows" in panel and isinstance(panel["lora_rows"], list):
        state["loras"] = panel["lora_rows"]  # rows with their on/off box; "loras" had the on ones
    elif "loras" in panel:
        state["loras"] = [[path, weight, True] for path, weight in recipe_loras(panel["loras"])]
    else:
        state.pop("loras", None)  # saved before LoRAs: the list stays as it is
    state.pop("model", None)  # the panel saved the model's name here; the model is not restored
    return state


def _values_from_state(state: Mapping[str, Any], base: SessionValues) -> SessionValues:
    workflow = base.workflow
    if "workflow" in state:
        workflow = Workflow(state["workflow"]) if state["workflow"] else None
    sampler = base.sampler
    if state.get("sampler"):
        sampler = Sampler.parse(str(state["sampler"]))
    loras = base.loras
    if "loras" in state:
        loras = tuple(_lora_rows(state["loras"]))
    seed = int(state.get("seed", base.seed))
    if not 0 <= seed < 2**32:
        raise ValueError(f"seed {seed} out of range")
    return replace(
        base,
        prompt=str(state.get("prompt", base.prompt)),
        negative_prompt=str(state.get("negative_prompt", base.negative_prompt)),
        sampler=sampler,
        steps=int(state.get("steps", base.steps)),
        guidance=float(state.get("guidance", base.guidance)),
        strength=float(state.get("strength", base.strength)),
        seed=min(seed, MAX_SEED),
        random_seed=bool(state.get("random_seed", base.random_seed)),
        batch_size=int(state.get("batch_size", base.batch_size)),
        resolution=ResolutionPolicy(state.get("resolution", base.resolution.value)),
        padding=int(state.get("padding", base.padding)),
        mask_blur=int(state.get("mask_blur", base.mask_blur)),
        workflow=workflow,
        loras=loras,
    )


def _lora_rows(items: Any) -> Iterable[LoraRow]:
    if not isinstance(items, list | tuple):
        return
    for item in items:
        if not isinstance(item, list | tuple) or len(item) < 2:
            continue
        try:
            path, weight = str(item[0]), float(item[1])
        except (TypeError, ValueError):
            continue
        if path and math.isfinite(weight):
            yield (path, weight, bool(item[2]) if len(item) > 2 else True)


def model_choice(entry: Any, vae_path: str | None = None) -> ModelChoice:
    """A library entry (``app.library.ModelEntry``) as the session's model choice."""
    from app.library import native_size

    base: Any = getattr(entry, "base", None)
    return ModelChoice(
        path=entry.path,
        name=entry.display_name or entry.path.rsplit("/", 1)[-1],
        hash=entry.hash,
        native_size=native_size(base),
        vae_path=vae_path,
        base=str(base.value) if hasattr(base, "value") else base,
    )


class GenerationSessions(QObject):
    """Hands out one session per document (and one for "no document").

    A document seen for the first time gets a session that starts from the current one's
    values (as the panel used to keep its fields when another picture was opened), then from the
    state saved in the document."""

    current_changed = Signal(object)  # GenerationSession

    def __init__(
        self,
        jobs: JobController,
        *,
        library: ModelLibrary | None = None,
        store: SettingsStore | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.jobs = jobs
        self.library = library
        self.store = store
        self._sessions: weakref.WeakKeyDictionary[Document, GenerationSession] = (
            weakref.WeakKeyDictionary()
        )
        self._none = self._make(None, None)
        self.current: GenerationSession = self._none

    def for_document(self, doc: Document | None) -> GenerationSession:
        if doc is None:
            return self._none
        session = self._sessions.get(doc)
        if session is None:
            session = self._sessions[doc] = self._make(doc, self.current)
        return session

    def activate(self, doc: Document | None) -> GenerationSession:
        """The session of ``doc``, now the current one."""
        session = self.for_document(doc)
        if session is not self.current:
            self.current = session
            self.current_changed.emit(session)
        return session

    def _make(self, doc: Document | None, template: GenerationSession | None) -> GenerationSession:
        values = template.values if template is not None else None
        recent = template.recent_prompts if template is not None else ()
        session = GenerationSession(
            None, self.jobs, library=self.library, store=self.store, values=values,
            recent_prompts=recent,
        )  # fmt: skip
        if doc is not None:
            session._doc = weakref.ref(doc)
            session.from_state(doc.generation_state)
            session._write_through()
        return session
