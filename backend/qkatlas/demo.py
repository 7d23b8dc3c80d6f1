"""`qkatlas demo`: serve at once, build the default atlases in a background process.

The build runs in steps, cheapest first (PCA 2-D of every default atlas, then PCA 3-D, then
UMAP, ...), each step writing heads as they finish, so the browser shows something within
seconds and the slower layouts appear as they are ready. A finished step is skipped on the
next start (the build is resumable).
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass

from .catalog import first_existing, get_model, local_candidates
from .layout import DIMS, parse_methods
from .settings import Settings

# (model, corpus, limit): real weights from shared/models when present...
REAL_DEFAULTS = [("minilm", "default", None), ("dinov2-small", "images", 40)]
# ...else random-init models that need nothing but the GPT-2 tokenizer or no tokenizer.
TINY_DEFAULTS = [("tiny-gpt2", "default", None), ("tiny-vit", "images", 40)]
# A real decoder LM, when its weights are local. Loading it de-quantises for ~35 s and it has
# 270 heads: it comes after the first atlases' cheapest layouts, so the first screen is not delayed.
LATE_DEFAULTS = [("smollm2", "default", None)]


@dataclass(frozen=True)
class Step:
    model: str
    corpus: str
    limit: int | None
    method: str
    dim: int


def _local(settings: Settings, atlases) -> bool:
    return all(first_existing(local_candidates(settings, get_model(settings, m).local)) for m, _, _ in atlases)


def default_atlases(settings: Settings) -> tuple[list, list]:
    """(atlases for the first screen, atlases built after their cheapest layouts)."""
    if settings.demo_models:
        return [(m.strip(), "default", None) for m in settings.demo_models.split(",") if m.strip()], []
    if not _local(settings, REAL_DEFAULTS):
        return TINY_DEFAULTS, []
    return REAL_DEFAULTS, LATE_DEFAULTS if _local(settings, LATE_DEFAULTS) else []


def plan(settings: Settings) -> list[Step]:
    """The cheapest method for the first atlases, then for the late ones, then every other
    method for all of them; 2-D before 3-D within each."""
    first, late = default_atlases(settings)
    cheapest, *others = parse_methods(settings.demo_methods)

    def steps(atlases, methods):
        return [Step(model, corpus, limit, method, dim) for method in methods for dim in DIMS
                for model, corpus, limit in atlases]

    return steps(first, [cheapest]) + steps(late, [cheapest]) + steps(first + late, others)


def build_all(settings: Settings) -> None:
    """Run every step in this process; a failing step is reported and the rest go on."""
    from .build import build
    from .errors import QkatlasError

    for step in plan(settings):
        print(f"[demo] {step.model} on {step.corpus}: {step.method} {step.dim}-D", flush=True)
        try:
            build(settings, step.model, step.corpus, step.limit, [step.method], [step.dim])
        except QkatlasError as e:
            print(f"[demo] skipped {step.model}: {e}", flush=True)


def run_demo(settings: Settings) -> None:
    from .build import sigterm_as_interrupt
    from .serve import check_port_free, serve

    check_port_free(settings)
    # The builder reads its settings from the environment: pass every one, so the flags given
    # to `qkatlas demo` (--data-dir, ...) reach it too.
    builder = subprocess.Popen([sys.executable, "-m", "qkatlas.demo"], env={**os.environ, **settings.to_env()})
    print(f"[demo] building default atlases in the background (pid {builder.pid}); "
          f"serving http://{settings.host}:{settings.port}", flush=True)
    try:
        # uvicorn shuts down on SIGTERM (`docker stop`), then raises it again: as an interrupt,
        # not the default instant exit, so that the builder below is stopped and not orphaned.
        with sigterm_as_interrupt():
            serve(settings)
    finally:
        builder.terminate()  # the builder stops its reduction workers on SIGTERM
        try:
            builder.wait(timeout=10)
        except subprocess.TimeoutExpired:
            builder.kill()
            builder.wait()


def run_builder() -> int:
    """The background builder's entry point. The demo stops it with SIGTERM, and Ctrl+C in a
    terminal reaches it too (same process group): either ends it on one line, not a traceback."""
    from .build import sigterm_as_interrupt

    try:
        with sigterm_as_interrupt():
            build_all(Settings.from_env())
    except KeyboardInterrupt:
        print("[demo] background build stopped; it continues where it stopped on the next start", flush=True)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(run_builder())
