# qkatlas server image: a builder stage installs qkatlas into a virtual environment, the runtime
# stage copies that environment onto a clean base and runs it as a non-root user.
#
#   docker build -t qkatlas:cuda .                               # CUDA torch from PyPI (GPU hosts)
#   docker build --build-arg TORCH_VARIANT=cpu -t qkatlas:cpu .  # CPU-only torch, a fraction of the size
#
# docker-compose.yml runs it; docs/deploy.md covers volumes, the token, and building offline or
# behind a proxy (a base image with your CA bundle and pip.conf, named by BASE_IMAGE; a wheels/
# folder pip reads besides the index).
ARG BASE_IMAGE=python:3.11-slim-bookworm

FROM ${BASE_IMAGE} AS builder
# cuda: torch as PyPI ships it for Linux (CUDA libraries as pip wheels; the host gives the driver).
# cpu: torch from PyTorch's CPU index. TORCH_INDEX names another index (a CUDA version of
# download.pytorch.org, a mirror), TORCH_SPEC pins versions.
ARG TORCH_VARIANT=cuda
ARG TORCH_INDEX=
ARG TORCH_SPEC="torch torchvision"
# Marks the builder stage's image, which the classic builder keeps untagged after each build:
# `docker image prune --filter label=org.qkatlas.builder` removes the stale ones.
LABEL org.qkatlas.builder=$TORCH_VARIANT
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore PATH=/opt/venv/bin:$PATH
# wheels/ is optional and not in git. COPY needs one match, so the glob also names pyproject.toml,
# which the dependency step reads.
COPY pyproject.toml wheel[s] /tmp/build/
RUN case "$TORCH_VARIANT" in \
      cuda) index=$TORCH_INDEX ;; \
      cpu) index=${TORCH_INDEX:-https://download.pytorch.org/whl/cpu} ;; \
      *) echo "TORCH_VARIANT must be cuda or cpu, not '$TORCH_VARIANT'" >&2; exit 2 ;; \
    esac \
 && python -m venv /opt/venv \
 && pip install --find-links /tmp/build ${index:+--index-url "$index"} $TORCH_SPEC
# The dependencies alone, from pyproject.toml: this layer survives edits to the code. With the
# cluster extra (Dask), so that the image also runs the scheduler and workers of compose's
# `cluster` profile.
RUN python -c "import tomllib; p = tomllib.load(open('/tmp/build/pyproject.toml', 'rb'))['project']; print('\n'.join(p['dependencies'] + p['optional-dependencies']['cluster']))" \
      > /tmp/build/requirements.txt \
 && pip install --find-links /tmp/build -r /tmp/build/requirements.txt
# .dockerignore admits only what the package needs. A regular (not editable) install: the front
# end and the model catalog ship inside the package. An install that cannot start the server (a
# subpackage left out of pyproject.toml, a torchvision built for another torch) fails here rather
# than in a restart loop.
COPY . /src/
RUN pip install --find-links /tmp/build /src && qkatlas --version \
 && python -c "import torchvision, qkatlas.serve, qkatlas.build"

FROM ${BASE_IMAGE} AS runtime
# Named volumes start as copies of these folders, so they belong to the app user too.
RUN useradd --system --uid 10001 --user-group --create-home --home-dir /home/qkatlas qkatlas \
 && mkdir -p /data/atlases /data/cache /models \
 && chown qkatlas:qkatlas /data/atlases /data/cache
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 \
    QKATLAS_HOST=0.0.0.0 QKATLAS_PORT=8000 \
    QKATLAS_DATA_DIR=/data/atlases QKATLAS_SHARED_MODELS=/models \
    XDG_CACHE_HOME=/data/cache HF_HOME=/data/cache/huggingface \
    QKATLAS_CACHE_DIR=/data/cache/qkatlas NUMBA_CACHE_DIR=/data/cache/numba
USER qkatlas
WORKDIR /home/qkatlas
EXPOSE 8000
# Liveness only (/readyz waits for a first atlas, minutes on a fresh volume). The start period
# covers the server's start: importing torch and loading the models of the atlases present.
HEALTHCHECK --interval=30s --timeout=10s --start-period=5m --retries=3 \
  CMD python -c "import os, urllib.request as u; u.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('QKATLAS_PORT', '8000'), timeout=8)"
# uvicorn finishes the requests in flight on SIGTERM; `qkatlas demo` then stops its builder.
STOPSIGNAL SIGTERM
CMD ["qkatlas", "demo"]
# Last, after the settings: with a copying storage driver (vfs) every later step would copy it.
COPY --from=builder /opt/venv /opt/venv
