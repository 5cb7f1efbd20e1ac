# klingwatch as a container: `klingwatch serve` (engine, callbacks, API, dashboard, /metrics).
# Several of these share one PostgreSQL ledger (KLINGWATCH_DB); see compose.yaml and the README's
# "Running it for a team".
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1

WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
# The postgres extra brings psycopg, the driver KLINGWATCH_DB=postgresql://... needs.
RUN pip install ".[postgres]" && rm -rf /src

# Never root: the process only needs its download folder.
RUN useradd --create-home --uid 10001 klingwatch \
    && mkdir -p /data/downloads && chown -R klingwatch /data
USER klingwatch
WORKDIR /data
ENV KLINGWATCH_DOWNLOAD_DIR=/data/downloads

EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"
CMD ["klingwatch", "serve", "--host", "0.0.0.0", "--port", "8000"]
