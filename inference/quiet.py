"""Keep the terminal quiet while models load, unless the user asked to see everything.

diffusers, transformers, huggingface_hub and torch announce themselves on every load: import-time
advice ("requires torchvision"), dtype notes, deprecation warnings and tqdm bars. None of it is
actionable for an Impasto user, so by default it is silenced; ``impasto --verbose`` (or
``IMPASTO_VERBOSE=1``) shows it. The environment variables must be set before those libraries are
imported (``app.main`` calls :func:`quiet_libraries` first thing); calling again after the import
sets their loggers too.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings

_ENV_DEFAULTS = {
    "TRANSFORMERS_VERBOSITY": "critical",  # "error" would still echo errors we report ourselves
    "DIFFUSERS_VERBOSITY": "critical",
    "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "TQDM_DISABLE": "1",
}
_NOISY_MODULES = r"(diffusers|transformers|torch|torchvision|huggingface_hub|peft|accelerate)(\.|$)"


def set_verbose(verbose: bool) -> None:
    os.environ["IMPASTO_VERBOSE"] = "1" if verbose else "0"


def is_verbose() -> bool:
    return os.environ.get("IMPASTO_VERBOSE") == "1"


def quiet_libraries(verbose: bool | None = None) -> None:
    """Silence the ML libraries' chatter (idempotent; nothing happens when verbose)."""
    if is_verbose() if verbose is None else verbose:
        return
    for name, value in _ENV_DEFAULTS.items():
        os.environ.setdefault(name, value)
    warnings.filterwarnings("ignore", module=_NOISY_MODULES)
    warnings.filterwarnings("ignore", message=r".*(kept in float32|torchvision|deprecat).*")
    for name in ("diffusers", "transformers", "huggingface_hub", "torch", "accelerate", "peft"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    if "diffusers" in sys.modules:
        import diffusers.utils.logging as diffusers_logging

        diffusers_logging.set_verbosity(logging.CRITICAL)
        diffusers_logging.disable_progress_bar()
    if "transformers" in sys.modules:
        import transformers.utils.logging as transformers_logging

        transformers_logging.set_verbosity(logging.CRITICAL)
        transformers_logging.disable_progress_bar()
