# syntax=docker/dockerfile:1
# One image for every storywatch service in docker-compose.yml (init, worker, beat, flower).
# Build: docker build -t storywatch:local .   Nothing here runs as root after the build.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    STORYWATCH_CONFIG_DIR=/app/config \
    STORYWATCH_DATA_DIR=/data

# A fixed, unprivileged uid/gid so volume ownership is predictable across rebuilds.
RUN groupadd --system --gid 10001 storywatch \
 && useradd --system --uid 10001 --gid storywatch --home-dir /data --no-create-home \
    --shell /usr/sbin/nologin storywatch

WORKDIR /app

# Every dependency ships manylinux wheels (psycopg[binary], lxml, numpy), so the slim image
# needs no compiler. The extras add the Apprise destination and the Flower dashboard.
COPY pyproject.toml README.md ./
COPY worker ./worker
RUN pip install ".[apprise,flower]"

# Default domain configuration; docker-compose.yml mounts ./config over it, read-only.
COPY config ./config

# The code stays root-owned and read-only for the service user; only /data is writable
# (SQLite, beat schedule, JSONL alerts).
RUN mkdir -p /data && chown storywatch:storywatch /data
USER storywatch
VOLUME ["/data"]

CMD ["storywatch", "run"]
