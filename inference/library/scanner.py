"""Walk model folders and list what is there, robustly and off any UI thread.

Nothing here loads weights: safetensors headers and diffusers config files are enough. Every
problem (unreadable folder, truncated file, symlink loop, a file vanishing mid-scan) becomes an
entry with a ``problem`` and the walk goes on.
"""

from __future__ import annotations

import errno
import logging
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from inference.library.classify import (
    Classification,
    classify_component_folder,
    classify_pipeline_folder,
    classify_tensors,
    classify_transformers_folder,
    has_weights,
    read_json,
)
from inference.library.entry import PICKLE_PROBLEM, Base, ModelEntry, ModelFormat, ModelKind
from inference.library.folders import IGNORED_MODEL_FOLDERS, app_model_roots, role_of
from inference.library.hashing import (
    CancelFlag,
    HashCancelled,
    HashFunction,
    LibraryCache,
    sha256_file,
    short_hash,
)
from inference.library.header import HeaderError, read_header

log = logging.getLogger(__name__)

CLASSIFIER_VERSION = 3  # bump when classify.py changes so cached classifications are redone
SAFETENSORS_SUFFIXES = (".safetensors", ".sft")
PICKLE_SUFFIXES = (".ckpt", ".pt", ".pth", ".bin")
SKIPPED_DIRS = {"__pycache__", "node_modules", "venv", ".venv", "site-packages"}
DEFAULT_MAX_DEPTH = 12
_KIND_ORDER = {kind: index for index, kind in enumerate(ModelKind)}
PROGRESS_INTERVAL_S = 0.1


@dataclass(frozen=True)
class ScanProgress:
    phase: str  # "scan" (walking folders) or "hash" (hashing files)
    done: int  # scan: folders and files looked at; hash: bytes hashed
    total: int | None  # hash: bytes to hash; scan: unknown
    models: int  # entries found so far (scan) or files hashed (hash)
    current: str  # the path being looked at


ProgressCallback = Callable[[ScanProgress], None]


@dataclass(frozen=True)
class ScanResult:
    entries: tuple[ModelEntry, ...]
    cancelled: bool = False


def scan_folders(
    folders: Iterable[str | os.PathLike[str]],
    *,
    extra_files: Iterable[str | os.PathLike[str]] = (),
    cache: LibraryCache | None = None,
    cancel: CancelFlag | None = None,
    progress: ProgressCallback | None = None,
    max_depth: int = DEFAULT_MAX_DEPTH,
) -> ScanResult:
    """List every model under ``folders`` (and the ``extra_files``); hashes come from the cache.

    Call ``fill_hashes`` afterwards (in the background) for the hashes the cache lacks."""
    walker = _Walker(cache, cancel, progress, max_depth)
    for folder in folders:
        if walker.cancelled:
            break
        walker.walk_root(Path(folder).expanduser())
    for file in extra_files:
        if walker.cancelled:
            break
        walker.add_file(Path(file).expanduser(), role=None, name=None)
    if cache is not None:
        cache.save()
    entries = sorted(
        walker.entries,
        key=lambda e: (_KIND_ORDER[e.kind], e.display_name.lower(), e.path),
    )
    return ScanResult(tuple(entries), cancelled=walker.cancelled)


def inspect_path(path: str | os.PathLike[str], cache: LibraryCache | None = None) -> ModelEntry:
    """One file or model folder, e.g. a ``.safetensors`` dropped on the window."""
    result = scan_folders([path], cache=cache, max_depth=0)
    path_text = os.path.abspath(os.fspath(path))
    for entry in result.entries:
        if entry.path == path_text:
            return entry
    if result.entries:
        return result.entries[0]
    return ModelEntry(
        path_text,
        ModelKind.UNKNOWN,
        display_name=Path(path_text).name,
        problem="not a model file or model folder",
        format=ModelFormat.FOLDER if os.path.isdir(path_text) else ModelFormat.MISSING,
    )


def fill_hashes(
    entries: Sequence[ModelEntry],
    *,
    cache: LibraryCache | None = None,
    cancel: CancelFlag | None = None,
    progress: ProgressCallback | None = None,
    on_entry: Callable[[ModelEntry], None] | None = None,
    hash_function: HashFunction = sha256_file,
) -> list[ModelEntry]:
    """Compute the hashes still unknown, store them in the cache, and return the updated list.

    ``on_entry`` gets each entry as soon as its hash is known. Stops early on cancel."""
    todo = [
        e for e in entries if e.hashable and e.hash is None and e.problem in (None, PICKLE_PROBLEM)
    ]
    total = sum(e.size for e in todo)
    done_bytes = 0
    updated: dict[str, ModelEntry] = {}
    for index, entry in enumerate(todo):
        if cancel is not None and cancel.cancelled:
            break

        def on_bytes(count: int, _entry: ModelEntry = entry, _index: int = index) -> None:
            nonlocal done_bytes
            done_bytes += count
            if progress is not None:
                progress(ScanProgress("hash", done_bytes, total, _index, _entry.path))

        try:
            real = os.path.realpath(entry.path)
            before = os.stat(real)
            sha = hash_function(real, cancel=cancel, on_bytes=on_bytes)
            after = os.stat(real)
        except HashCancelled:
            break
        except OSError as exc:
            log.warning("cannot hash %s: %s", entry.path, exc)
            continue
        if (before.st_size, before.st_mtime_ns) != (after.st_size, after.st_mtime_ns):
            log.info("%s changed while hashing; will hash again next scan", entry.path)
            continue
        if cache is not None:
            cache.put(real, after.st_size, after.st_mtime_ns, sha256=sha)
            cache.save()
        new_entry = replace(entry, hash=short_hash(sha), sha256=sha)
        updated[entry.path] = new_entry
        if on_entry is not None:
            on_entry(new_entry)
    return [updated.get(e.path, e) for e in entries]


# ---- the walk ------------------------------------------------------------------------------


def _problem_from_oserror(exc: OSError) -> str:
    if isinstance(exc, FileNotFoundError):
        return "disappeared during the scan (or is a broken link)"
    if isinstance(exc, PermissionError):
        return "permission denied"
    if exc.errno == errno.ELOOP:
        return "symlink loop"
    return exc.strerror or str(exc)


class _Walker:
    def __init__(
        self,
        cache: LibraryCache | None,
        cancel: CancelFlag | None,
        progress: ProgressCallback | None,
        max_depth: int,
    ) -> None:
        self.cache = cache
        self.cancel = cancel
        self.progress = progress
        self.max_depth = max_depth
        self.entries: list[ModelEntry] = []
        self.seen: set[str] = set()  # real paths already listed (one model reachable twice)
        self.looked_at = 0
        self._last_report = 0.0

    @property
    def cancelled(self) -> bool:
        return self.cancel is not None and self.cancel.cancelled

    def _report(self, current: Path, force: bool = False) -> None:
        self.looked_at += 1
        if self.progress is None:
            return
        now = time.monotonic()
        if force or now - self._last_report >= PROGRESS_INTERVAL_S:
            self._last_report = now
            self.progress(
                ScanProgress("scan", self.looked_at, None, len(self.entries), str(current))
            )

    def _add(self, entry: ModelEntry) -> None:
        self.entries.append(entry)

    def _bad(
        self,
        path: Path,
        problem: str,
        fmt: ModelFormat = ModelFormat.FOLDER,
        name: str | None = None,
    ) -> None:
        self._add(
            ModelEntry(
                os.path.abspath(path),
                ModelKind.UNKNOWN,
                display_name=name or path.name or str(path),
                problem=problem,
                format=fmt,
            )
        )

    # -- roots

    def walk_root(self, root: Path) -> None:
        try:
            if root.is_file():
                self.add_file(root, role=role_of(root.parent), name=None)
                return
            if not root.is_dir():
                problem = "folder does not exist" if not root.is_symlink() else "broken link"
                self._bad(root, problem, ModelFormat.MISSING)
                return
        except OSError as exc:
            self._bad(root, _problem_from_oserror(exc))
            return
        for sub_root in app_model_roots(root) or [root]:
            self._walk(sub_root, anchor=sub_root.parent)

    def _walk(self, top: Path, anchor: Path) -> None:
        # Explicit stack: no recursion limit however deep or wide the tree is.
        stack: list[tuple[Path, int, tuple[tuple[int, int], ...], str | None]] = [
            (top, 0, (), None)
        ]
        while stack and not self.cancelled:
            folder, depth, ancestors, hf_name = stack.pop()
            try:
                info = folder.stat()
            except OSError as exc:
                self._bad(folder, _problem_from_oserror(exc))
                continue
            identity = (info.st_dev, info.st_ino)
            if identity in ancestors:
                self._bad(folder, f"symlink loop (points back to {os.path.realpath(folder)})")
                continue
            real = os.path.realpath(folder)
            if real in self.seen:
                continue
            self.seen.add(real)
            self._report(folder)
            try:
                if self._model_folder(folder, hf_name, anchor):
                    continue
            except Exception as exc:  # one hostile folder must not end the scan
                log.debug("listing %s failed", folder, exc_info=True)
                self._bad(folder, f"could not be read ({str(exc)[:200] or type(exc).__name__})")
                continue
            try:
                with os.scandir(folder) as iterator:
                    children = sorted(iterator, key=lambda d: d.name)
            except OSError as exc:
                self._bad(folder, f"cannot list folder: {_problem_from_oserror(exc)}")
                continue
            subfolders: list[tuple[Path, int, tuple[tuple[int, int], ...], str | None]] = []
            for child in children:
                if self.cancelled:
                    return
                path = Path(child.path)
                try:
                    is_dir = child.is_dir()
                except OSError:
                    is_dir = False
                if is_dir:
                    if child.name.startswith(".") or child.name in SKIPPED_DIRS:
                        continue
                    if child.name.startswith(("datasets--", "spaces--")) or child.name == "blobs":
                        continue
                    if _is_sidecar_config(path):
                        continue
                    if folder.name == "models" and child.name.lower() in IGNORED_MODEL_FOLDERS:
                        continue  # upscalers, text encoders...: nothing a picker could offer
                    if child.name.startswith("models--"):
                        snapshot = _hf_snapshot(path)
                        if snapshot is not None:
                            name = child.name.removeprefix("models--").replace("--", "/")
                            subfolders.append((snapshot, depth + 1, (*ancestors, identity), name))
                        continue
                    if depth < self.max_depth:
                        subfolders.append(
                            (path, depth + 1, (*ancestors, identity), _join(hf_name, child.name))
                        )
                    elif self.max_depth > 0:
                        self._bad(path, f"not scanned: more than {self.max_depth} folders deep")
                    continue
                self._report(path)
                if child.name.lower().endswith(SAFETENSORS_SUFFIXES + PICKLE_SUFFIXES) or (
                    child.is_symlink() and not path.exists()
                ):
                    role = (
                        role_of(path.parent.relative_to(anchor))
                        if path.is_relative_to(anchor)
                        else None
                    )
                    file_name = _join(hf_name, Path(child.name).stem) if hf_name else None
                    self.add_file(path, role=role, name=file_name)
            stack.extend(reversed(subfolders))

    # -- model folders

    def _model_folder(self, folder: Path, hf_name: str | None, anchor: Path) -> bool:
        """If ``folder`` is one model (diffusers pipeline or component), list it and say True."""
        name = hf_name or folder.name
        if (folder / "model_index.json").is_file():
            found = classify_pipeline_folder(folder)
            self._add_folder_entry(folder, found, name)
            self._top_level_files(folder, hf_name, anchor)
            return True
        config_path = folder / "config.json"
        if config_path.is_file():
            try:
                config = read_json(config_path)
            except (OSError, ValueError) as exc:
                if has_weights(folder):
                    self._add_folder_entry(
                        folder, Classification(ModelKind.UNKNOWN, problem=str(exc)), name
                    )
                    return True
                return False
            if "_class_name" in config:
                self._add_folder_entry(folder, classify_component_folder(folder, config), name)
                return True
            encoder = classify_transformers_folder(folder, config)
            if encoder is not None:
                self._add_folder_entry(folder, encoder, name)
                return True
            if "architectures" in config and hf_name is not None:
                problem = "a transformers model, not a diffusion model"
                self._add_folder_entry(
                    folder, Classification(ModelKind.UNKNOWN, problem=problem), name
                )
                return True
        if (folder / "unet" / "config.json").is_file() and (folder / "vae").is_dir():
            problem = "looks like a diffusers pipeline but has no model_index.json"
            self._add_folder_entry(
                folder, Classification(ModelKind.CHECKPOINT, problem=problem), name
            )
            return True
        return False

    def _top_level_files(self, folder: Path, hf_name: str | None, anchor: Path) -> None:
        """Single-file checkpoints that repos ship beside their diffusers folders."""
        try:
            files = sorted(
                p for p in folder.iterdir() if p.name.lower().endswith(SAFETENSORS_SUFFIXES)
            )
        except OSError:
            return
        for path in files:
            self.add_file(path, role=None, name=_join(hf_name, path.stem) if hf_name else None)

    def _add_folder_entry(self, folder: Path, found: Classification, name: str) -> None:
        self._add(
            ModelEntry(
                os.path.abspath(folder),
                found.kind,
                found.base,
                found.inpaint,
                size=_folder_size(folder),
                display_name=name,
                problem=found.problem,
                format=ModelFormat.DIFFUSERS,
            )
        )
        self._report(folder, force=True)

    # -- files

    def add_file(self, path: Path, role: ModelKind | None, name: str | None) -> None:
        """List one file. Whatever goes wrong with it becomes its entry's problem: one bad
        file never ends the scan."""
        try:
            self._add_file(path, role, name)
        except Exception as exc:  # one hostile file must not hide the rest
            log.debug("listing %s failed", path, exc_info=True)
            reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
            display = name or path.stem
            self._bad(path, f"could not be read ({reason})", ModelFormat.SAFETENSORS, display)

    def _add_file(self, path: Path, role: ModelKind | None, name: str | None) -> None:
        self._report(path, force=True)  # before reading: a listener may see the file vanish
        display = name or path.stem
        abspath = os.path.abspath(path)
        try:
            real = os.path.realpath(path)
            info = os.stat(real)
        except OSError as exc:
            self._bad(path, _problem_from_oserror(exc), ModelFormat.MISSING, display)
            return
        if real in self.seen:
            return
        self.seen.add(real)
        cached = self._cached(real, info, "sha256")
        cached_sha = cached if isinstance(cached, str) else None
        lower = path.name.lower()
        if lower.endswith(PICKLE_SUFFIXES):
            kind = role or _kind_from_name(lower)
            if kind is ModelKind.TAESD and "taesd" not in lower:
                return  # A1111's VAE-approx/model.pt is its own tiny approximation, not TAESD
            if kind is None:
                if not lower.endswith(".ckpt"):
                    return  # a .bin/.pt outside any model folder: most likely not a model
                kind = ModelKind.CHECKPOINT
            base = _base_from_name(lower)
            if kind is ModelKind.TAESD and base is Base.UNKNOWN:
                base = Base.SD1  # taesd_decoder: SD1/SD2 latents (taesdxl says xl)
            self._add(
                ModelEntry(
                    abspath,
                    kind,
                    base,
                    "inpaint" in lower,
                    size=info.st_size,
                    hash=short_hash(cached_sha) if cached_sha else None,
                    display_name=display,
                    problem=PICKLE_PROBLEM,
                    format=ModelFormat.PICKLE,
                    sha256=cached_sha,
                    mtime_ns=info.st_mtime_ns,
                )
            )
            return
        found = self._classification(path, real, info)
        self._add(
            ModelEntry(
                abspath,
                found.kind,
                found.base,
                found.inpaint,
                size=info.st_size,
                hash=short_hash(cached_sha) if cached_sha and found.problem is None else None,
                display_name=display,
                problem=found.problem,
                format=ModelFormat.SAFETENSORS,
                sha256=cached_sha if found.problem is None else None,
                mtime_ns=info.st_mtime_ns,
            )
        )

    def _cached(self, real: str, info: os.stat_result, field: str) -> object:
        if self.cache is None:
            return None
        return self.cache.get(real, info.st_size, info.st_mtime_ns, field)

    def _classification(self, path: Path, real: str, info: os.stat_result) -> Classification:
        cached = self._cached(real, info, "classification")
        if isinstance(cached, dict) and cached.get("version") == CLASSIFIER_VERSION:
            try:
                return Classification(
                    ModelKind(cached["kind"]),
                    Base(cached["base"]),
                    bool(cached["inpaint"]),
                    cached.get("problem"),
                )
            except (KeyError, ValueError):
                pass
        try:
            header = read_header(real)
        except HeaderError as exc:
            found = Classification(ModelKind.UNKNOWN, problem=str(exc))
        except OSError as exc:
            return Classification(ModelKind.UNKNOWN, problem=_problem_from_oserror(exc))
        else:
            shapes = {name: t.shape for name, t in header.tensors.items()}
            found = classify_tensors(shapes, name_hint=path.name)
        if self.cache is not None:
            record = {
                "version": CLASSIFIER_VERSION,
                "kind": found.kind.value,
                "base": found.base.value,
                "inpaint": found.inpaint,
                "problem": found.problem,
            }
            self.cache.put(real, info.st_size, info.st_mtime_ns, classification=record)
        return found


def _is_sidecar_config(folder: Path) -> bool:
    """``model.config/`` beside ``model.safetensors``: the config the engine loads it with."""
    if not folder.name.endswith(".config"):
        return False
    stem = folder.name.removesuffix(".config")
    suffixes = SAFETENSORS_SUFFIXES + PICKLE_SUFFIXES
    return any((folder.parent / (stem + suffix)).exists() for suffix in suffixes)


def _join(prefix: str | None, name: str) -> str | None:
    return None if prefix is None else f"{prefix}/{name}"


def _hf_snapshot(repo: Path) -> Path | None:
    """The snapshot ``refs/main`` points to, else the newest one."""
    try:
        ref = (repo / "refs" / "main").read_text(encoding="utf-8").strip()
        if ref and (repo / "snapshots" / ref).is_dir():
            return repo / "snapshots" / ref
    except OSError:
        pass
    try:
        snapshots = [p for p in (repo / "snapshots").iterdir() if p.is_dir()]
    except OSError:
        return None
    return max(snapshots, key=_mtime, default=None)


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _folder_size(folder: Path, limit: int = 10_000) -> int:
    total = 0
    count = 0
    for dirpath, _dirnames, filenames in os.walk(folder):
        for filename in filenames:
            count += 1
            if count > limit:
                return total
            try:
                total += os.stat(os.path.join(dirpath, filename)).st_size
            except OSError:
                continue
    return total


def _kind_from_name(lower_name: str) -> ModelKind | None:
    if "taesd" in lower_name:
        return ModelKind.TAESD
    if "control" in lower_name:
        return ModelKind.CONTROLNET
    if "lora" in lower_name or "lyco" in lower_name:
        return ModelKind.LORA
    if "vae" in lower_name:
        return ModelKind.VAE
    return None


def _base_from_name(lower_name: str) -> Base:
    if "xl" in lower_name:
        return Base.SDXL
    if any(tag in lower_name for tag in ("sd15", "sd-1", "sd_1", "v1-5", "v1-4", "sd14", "1.5")):
        return Base.SD1
    if any(tag in lower_name for tag in ("sd21", "v2-1", "sd2", "768-v", "2.1")):
        return Base.SD2
    return Base.UNKNOWN
