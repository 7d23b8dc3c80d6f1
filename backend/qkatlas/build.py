"""Builds an atlas: corpus -> capture -> joint -> reduce -> statistics -> store, resumably.

Capture is skipped when the atlas already holds vectors for the same model and corpus;
reductions skip every (head, method, dim) already written. Methods run cheapest first.
SIGTERM stops a build as Ctrl+C does: workers ended, every file whole, the next run resumes.
"""

from __future__ import annotations

import datetime as dt
import errno
import importlib.metadata as md
import signal
import threading
import time
from contextlib import closing, contextmanager, nullcontext
from pathlib import Path

import numpy as np
import pyarrow as pa

from . import __version__
from .agreement import contexts
from .build_status import BuildStatus
from .catalog import ModelEntry, get_model
from .corpus import Corpus, ImageItem, load_corpus
from .errors import InvalidInput, StorageError
from .joint import joint_transforms
from .progress import Reporter, Silent
from .layout import layouts
from .manifest import CorpusBlock, ImageBlock, Manifest, ModelBlock, manifest_exists, read_manifest
from .reduce.knn import drop_graphs
from .reduce.run import heads_of, pending_heads, reduce_layout
from .settings import Settings
from .stats_run import measure_induction, stats_stage
from .store import Atlas, AtlasWriter, atlas_id, ensure_writable
from .versions import build_lock, live_version, new_version, publish, sweep


def parse_layers(text: str | None, layers: int) -> list[int] | None:
    if not text:
        return None
    try:
        chosen = sorted({int(x) for x in text.split(",") if x.strip()})
    except ValueError:
        raise InvalidInput(f"--layers must be comma-separated layer numbers, got {text!r}") from None
    bad = [x for x in chosen if not 0 <= x < layers]
    if bad:
        raise InvalidInput(f"layer {bad[0]} does not exist; this model has layers 0..{layers - 1}")
    return chosen


def versions() -> dict:
    out = {"qkatlas": __version__}
    for pkg in ("torch", "transformers", "timm", "numpy", "scikit-learn", "umap-learn", "openTSNE"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            pass
    return out


def atlas_path(settings: Settings, model_id: str, corpus_id: str, limit: int | None) -> Path:
    return Path(settings.data_dir) / atlas_id(model_id, corpus_id, limit)


def _capture_is_current(path: Path, entry: ModelEntry, corpus: Corpus, joint: str) -> bool:
    if not manifest_exists(path):
        return False
    m = read_manifest(path)
    # source too: two user folders of the same name are two models; another joint choice means
    # other joint spaces and layouts, so a new version rather than a mix of the two
    return (m.stages.get("capture") == "done" and m.model.id == entry.id and m.model.source == entry.source
            and m.corpus.hash == corpus.hash and m.joint == joint)


def _joint_changed(path: Path, joint: str) -> str | None:
    """A line saying why the atlas is built again when only its joint choice differs, else None."""
    if not manifest_exists(path):
        return None
    stored = read_manifest(path).joint
    return None if stored == joint else (f"joint spaces were chosen by {stored!r}, this build asks for {joint!r}: "
                                         "capturing into a new version (the old one serves until it is done)")


def capture_stage(settings: Settings, loaded, corpus: Corpus, name: str, path: Path, reporter: Reporter) -> None:
    """Capture into `path`, a new version folder of atlas `name`; the manifest is written last."""
    from .capture.inputs import prepare
    from .capture.run import capture

    entry = loaded.entry
    writer = AtlasWriter(path)
    prepared = prepare(loaded, list(corpus.items))
    reporter.stage("capture", len(corpus.items))
    t0 = time.perf_counter()
    captured = capture(loaded, prepared, batch_size=settings.batch_size, progress=reporter.advance,
                       dtype=np.float32)  # the store decides what precision each layer needs
    seconds = time.perf_counter() - t0

    writer.write_tokens(pa.table({"token": np.arange(prepared.n_tokens), **prepared.token_rows}))
    writer.write_items(_items_table(corpus))
    for i, png in enumerate(prepared.pngs or []):
        writer.write_image(i, png)
    reporter.stage("joint", loaded.layers)
    ctx = contexts(prepared.offsets, loaded.causal, seed=settings.seed)  # the pairs agreement is scored on
    joints = []
    for layer in range(loaded.layers):
        writer.write_vectors(layer, captured.q[layer], captured.k[layer], captured.scaling[layer])
        joints.append(joint_transforms(captured.q[layer], captured.k[layer], ctx, settings.joint))
        reporter.advance()
    writer.write_joint(**{name: np.stack([getattr(j, name) for j in joints])  # (layers, heads, ...)
                          for name in ("translation", "scale", "agreement", "raw_agreement")})
    if loaded.causal and loaded.image is None:  # while the model is loaded: induction needs its own input
        reporter.stage("induction probe", 1)
        writer.write_induction(measure_induction(loaded, settings.batch_size))
        reporter.advance()
    image = loaded.image
    writer.write_manifest(Manifest(
        atlas=name,
        model=ModelBlock(**entry.summary(), weights=loaded.source, revision=loaded.revision),
        corpus=CorpusBlock(id=corpus.id, modality=corpus.modality, hash=corpus.hash, items=len(corpus.items),
                           source=corpus.source),
        layers=loaded.layers,
        heads=loaded.heads,
        head_dim=loaded.head_dim,
        kv_heads=loaded.kv_heads,
        tokens=prepared.n_tokens,
        causal=loaded.causal,
        scaling=captured.scaling,
        image=None if image is None else ImageBlock(size=image.size, patch=image.patch, grid=image.grid,
                                                    prefix_tokens=image.prefix_tokens),
        device=str(loaded.device),
        capture_seconds=round(seconds, 3),
        created=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        versions=versions(),
        seed=settings.seed,
        joint=settings.joint,
        stages={"capture": "done"},
    ))


def _items_table(corpus: Corpus) -> pa.Table:
    is_image = corpus.modality == "image"
    return pa.table({
        "item": [it.item for it in corpus.items],
        "text": ["" if is_image else it.text for it in corpus.items],
        "image": [f"images/{it.item:05d}.png" if isinstance(it, ImageItem) else "" for it in corpus.items],
        "label": [it.label for it in corpus.items],
    })


def reduce_stage(settings: Settings, path: Path, methods: list[str], dims: list[int], layers: list[int] | None,
                 reporter: Reporter, device: str = "cpu", cluster=None) -> None:
    """Every layout of every head of `layers`, here or on `cluster` (reduce/cluster.py); the
    manifest records each layout from this process only, whoever wrote its heads."""
    writer = AtlasWriter(path)
    heads = heads_of(Atlas(path), layers)
    for layout in layouts(methods, dims):
        reporter.stage(layout.title, len(pending_heads(Atlas(path), layout, heads)))
        reduce_layout(path, layout, heads, device=device, workers=settings.workers, seed=settings.seed,
                      on_done=lambda _summary: reporter.advance(), cluster=cluster)
        writer.record_layout(layout, settings.seed)
    drop_graphs(path)  # the kNN graphs the layouts shared: nothing reads them once all are written


def cluster_for(settings: Settings, reporter: Reporter):
    """The Dask cluster of `settings.scheduler`, connected before the capture so that an
    unreachable scheduler is said at once; none (a null context) when no scheduler is set."""
    if not settings.scheduler:
        return nullcontext()
    from .reduce.cluster import connect

    return connect(settings.scheduler, reporter)


@contextmanager
def sigterm_as_interrupt():
    """Within the block, SIGTERM raises KeyboardInterrupt as Ctrl+C does, so `kill` and service
    managers stop a build as cleanly as a person does. Only the main thread receives signals."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _interrupt(signum, frame):
    raise KeyboardInterrupt(f"stopped by signal {signum}")


def build(settings: Settings, model_id: str, corpus_spec: str = "default", limit: int | None = None,
          methods: list[str] = ("pca",), dims: list[int] = (2, 3), device: str | None = None,
          layers: str | None = None, reporter: Reporter | None = None) -> Path:
    """Build (or finish) the atlas of `model_id` on `corpus_spec`; returns its folder."""
    reporter = reporter or Silent()
    entry = get_model(settings, model_id)
    corpus = load_corpus(corpus_spec, entry.modality, limit)
    ensure_writable(Path(settings.data_dir))
    path = atlas_path(settings, entry.id, corpus.id, limit)
    from .capture.loader import load_model, pick_device

    data_dir, name = Path(settings.data_dir), path.name
    status = BuildStatus(data_dir, name, entry.id, entry.display_label, reporter)
    with (sigterm_as_interrupt(), build_lock(data_dir, name), closing(status), storage_errors(name),
          cluster_for(settings, status) as cluster):
        sweep(data_dir, name)
        if _capture_is_current(path, entry, corpus, settings.joint):
            status.message(f"capture already done in {path}")
            version = live_version(data_dir, name)
            chosen_layers = parse_layers(layers, Atlas(version).layers)
        else:  # a new version beside the live one, published once its capture is complete
            if changed := _joint_changed(path, settings.joint):
                status.message(changed)
            status.stage("loading model", 1)
            status.message(f"loading {entry.display_label}")
            loaded = load_model(entry, settings, device, status)
            chosen_layers = parse_layers(layers, loaded.layers)  # before the expensive part
            version = new_version(data_dir, name)
            capture_stage(settings, loaded, corpus, name, version, status)
            publish(data_dir, name, version)

        reduce_stage(settings, version, list(methods), list(dims), chosen_layers, status,
                     str(pick_device(device or settings.device)), cluster)
        # after the layouts, so the first screen is not kept waiting; cheap (docs/stats.md)
        stats_stage(settings, version, status)
    return path


@contextmanager
def storage_errors(atlas: str):
    """A full disk (or a data dir gone read-only) mid-build is one clear error, not a traceback;
    what was written stays valid (atomic files) and the next run resumes."""
    try:
        yield
    except OSError as e:
        if e.errno not in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM):
            raise
        raise StorageError(f"cannot write atlas {atlas!r}: {e.strerror}; free space (or fix the data dir) "
                           "and run the same command again to continue") from None
