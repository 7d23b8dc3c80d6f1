# qkatlas API + UI. CUDA comes with the torch wheel from PyPI; the host needs the NVIDIA
# container toolkit for `gpus`/`devices` in docker-compose.yml.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY backend ./backend
COPY frontend ./frontend
COPY models ./models
RUN pip install --no-cache-dir .
ENV QKATLAS_DATA_DIR=/data/atlases QKATLAS_HOST=0.0.0.0 HF_HOME=/data/hf \
    NUMBA_CACHE_DIR=/data/numba QKATLAS_SHARED_MODELS=/models
EXPOSE 8000
CMD ["qkatlas", "demo"]
