"""The `qkatlas` command: thin click commands over the library.

Every QkatlasError becomes one line on stderr and exit status 2, here and nowhere else.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from . import __version__
from .errors import InvalidInput, QkatlasError
from .settings import Settings


class _Group(click.Group):
    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except QkatlasError as e:
            click.echo(f"error: {e}", err=True)
            sys.exit(2)
        except KeyboardInterrupt:
            click.echo("interrupted; run the same command again to continue where it stopped", err=True)
            sys.exit(130)


@click.group(cls=_Group)
@click.version_option(__version__, prog_name="qkatlas")
@click.option("--data-dir", type=click.Path(path_type=Path), default=None, help="Atlas folder (QKATLAS_DATA_DIR).")
@click.pass_context
def main(ctx, data_dir):
    """qkatlas: see what every attention head looks for."""
    ctx.obj = Settings.from_env(data_dir=data_dir)


def _settings(ctx, **overrides) -> Settings:
    return ctx.obj.with_(**overrides)


_gguf_file = click.option("--gguf-file", default=None,
                          help="With a model folder: the GGUF file in it to load (de-quantised once, then cached).")


@main.command()
@click.option("--model", "model_id", required=True,
              help="Catalog model id (see `qkatlas models`), a model folder, or a .gguf file.")
@_gguf_file
@click.option("--corpus", "corpus", default="default", show_default=True,
              help="'default', 'images', or a .txt/.jsonl/.csv file or a folder of images.")
@click.option("--limit", type=int, default=None, help="Use only the first N items of the corpus.")
@click.option("--methods", default="pca", show_default=True, help="Comma-separated: pca,umap,tsne.")
@click.option("--dims", default="2,3", show_default=True, help="Comma-separated: 2,3.")
@click.option("--device", default=None, help="auto, cpu or cuda (QKATLAS_DEVICE; default auto).")
@click.option("--layers", default=None, help="Reduce only these layers, e.g. 0,5.")
@click.option("--workers", type=int, default=None, help="Reduction processes (default: one per core).")
@click.option("--scheduler", default=None,
              help="Reduce on the Dask cluster of this scheduler, e.g. tcp://HOST:8786 (QKATLAS_SCHEDULER); "
                   "the data dir must be at the same path on every worker.")
@click.option("--batch-size", type=int, default=None, help="Items per forward pass.")
@click.option("--joint", default=None,
              help="How each head's joint space is chosen: qkatlas (distance agrees with attention), attentionviz "
                   "or raw (QKATLAS_JOINT; default qkatlas). Another choice than the atlas's builds a new version.")
@click.option("--data-dir", type=click.Path(path_type=Path), default=None)
@click.pass_context
def build(ctx, model_id, gguf_file, corpus, limit, methods, dims, device, layers, workers, scheduler, batch_size,
          joint, data_dir):
    """Capture a model's queries/keys on a corpus and reduce every head."""
    from .build import build as run_build
    from .catalog import get_model
    from .layout import parse_dims, parse_methods
    from .cli_progress import RichReporter

    settings = _settings(ctx, data_dir=data_dir, workers=workers, scheduler=scheduler, batch_size=batch_size,
                         joint=joint)
    model = get_model(settings, model_id, gguf_file).spec  # one string for the builder: an id or a path
    method_list, dim_list = parse_methods(methods), parse_dims(dims)
    with RichReporter() as reporter:
        path = run_build(settings, model, corpus, limit, method_list, dim_list, device, layers, reporter)
    click.echo(f"atlas {path.name!r} is ready in {path}", err=True)
    click.echo(str(path))


@main.command()
@click.argument("atlas")
@click.option("--layer", type=int, default=None, help="With --head: show only that head's layouts.")
@click.option("--head", type=int, default=None, help="With --layer.")
@click.pass_context
def info(ctx, atlas, layer, head):
    """Print an atlas's id, manifest and what has been computed as JSON (or one head's layouts)."""
    from .info import atlas_info, head_info

    if (layer is None) != (head is None):
        raise InvalidInput("--layer and --head go together: give both to see one head, or neither")
    answer = atlas_info(ctx.obj, atlas) if layer is None else head_info(ctx.obj, atlas, layer, head)
    click.echo(json.dumps(answer, indent=2))


@main.command()
@click.argument("model_id")
@_gguf_file
@click.option("--corpus", default="default", show_default=True)
@click.option("--limit", type=int, default=8, show_default=True)
@click.option("--tolerance", type=float, default=1e-4, show_default=True)
@click.option("--device", default="cpu", show_default=True)
@click.pass_context
def verify(ctx, model_id, gguf_file, corpus, limit, tolerance, device):
    """Rebuild attention from captured q/k and compare with the model's own (one JSON line).

    MODEL_ID: a catalog id, a model folder, or a .gguf file.
    """
    from .capture.inputs import prepare
    from .capture.loader import load_model
    from .capture.verify import verify as run_verify
    from .catalog import get_model
    from .cli_progress import RichReporter
    from .corpus import load_corpus

    entry = get_model(ctx.obj, model_id, gguf_file)
    items = load_corpus(corpus, entry.modality, limit).items
    with RichReporter() as reporter:
        loaded = load_model(entry, ctx.obj, device, reporter)
    result = run_verify(loaded, prepare(loaded, list(items)))
    result["tolerance"] = tolerance
    result["ok"] = result["max_abs_err"] <= tolerance
    click.echo(json.dumps(result))
    if not result["ok"]:
        sys.exit(1)


@main.command()
@click.pass_context
def models(ctx):
    """List the model catalog."""
    from .catalog import load_catalog

    for entry in load_catalog(ctx.obj).values():
        click.echo(f"{entry.id:24s} {entry.modality:5s} {entry.display_label}")


def _server_command(fn):
    """A command that serves the app: --host/--port, and a clear error when the port is taken."""
    fn = click.option("--port", type=int, default=None, help="Port (QKATLAS_PORT, default 8000).")(fn)
    fn = click.option("--host", default=None, help="Interface (QKATLAS_HOST, default 127.0.0.1).")(fn)
    return main.command()(click.pass_context(fn))


@_server_command
def serve(ctx, host, port):
    """Serve the atlases in the data dir: API + browser UI."""
    from .serve import serve as run_serve

    run_serve(_settings(ctx, host=host, port=port))


@_server_command
def demo(ctx, host, port):
    """Serve at once and build the default atlases in the background (PCA first, then UMAP)."""
    from .demo import run_demo

    run_demo(_settings(ctx, host=host, port=port))


@main.command(context_settings={"ignore_unknown_options": True})
@click.argument("scheduler", required=False)
@click.option("--nworkers", type=int, default=None,
              help="Worker processes; 0: one per core (default: one per core; 1 with --gpu).")
@click.option("--gpu", is_flag=True, help="Declare a GPU (Dask resource GPU=1): the batched fits run here.")
@click.argument("dask_args", nargs=-1, type=click.UNPROCESSED)
@click.pass_context
def worker(ctx, scheduler, nworkers, gpu, dask_args):
    """Join the Dask cluster of SCHEDULER (or QKATLAS_SCHEDULER) as a reduce worker.

    Runs `dask worker` from this Python, where qkatlas is installed, with one thread per
    process; other options go to `dask worker` as they are (e.g. --memory-limit 8GB).
    """
    from .reduce.cluster import worker_command

    argv = worker_command(scheduler or ctx.obj.scheduler, nworkers, gpu, list(dask_args))
    os.execv(argv[0], argv)  # the worker's signals and exit status are dask's own


@main.command()
@click.argument("atlas")
@click.option("--format", "fmt", type=click.Choice(["csv", "parquet"]), default="csv", show_default=True)
@click.option("--output", type=click.Path(path_type=Path), default=None,
              help="File to write; default: CSV to standard output, Parquet to ATLAS-stats.parquet here.")
@click.pass_context
def stats(ctx, atlas, fmt, output):
    """Every head's statistics and label as CSV or Parquet (docs/stats.md), computed first if missing.

    ATLAS: an atlas id in the data dir (as `qkatlas build` prints it) or an atlas folder.
    """
    from .cli_progress import RichReporter
    from .errors import StorageError
    from .export import table_bytes
    from .files import atomic_path
    from .stats_run import open_with_stats

    with RichReporter() as reporter:
        found = open_with_stats(ctx.obj, atlas, reporter)
    table = found.stats_table()
    body = table_bytes(table, fmt)
    if output is None and fmt == "csv":
        sys.stdout.buffer.write(body)
        return
    output = output or Path(f"{found.id}-stats.{fmt}")
    try:
        with atomic_path(output) as tmp:
            tmp.write_bytes(body)
    except OSError as e:
        raise StorageError(f"cannot write {str(output)!r}: {e.strerror or e}") from None
    click.echo(f"statistics of {table.num_rows} heads of atlas {found.id!r} written to {output}", err=True)
