# syntax=docker/dockerfile:1
# One image build for every service: SERVICE names its folder under services/. Build from the repository
# root (the uv workspace and its lock file), e.g.
#   docker build --build-arg SERVICE=orders -t printfarm/orders .
# Each service has a stage of its own below, named after it, holding only what differs between the
# images: the Python module the container runs and, where a service needs them, its system packages
# (the slicer's OpenSCAD and PrusaSlicer, the printer gateway's ffmpeg). The final stage adds the
# service's code to that stage.
ARG SERVICE

FROM python:3.11-slim-bookworm AS build
ARG SERVICE
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN pip install --no-cache-dir uv==0.13.9
WORKDIR /app
COPY pyproject.toml uv.lock ./
COPY libs/ libs/
COPY services/ services/
COPY tools/ tools/
RUN uv sync --frozen --no-dev --package "printfarm-${SERVICE}"

# What every service's image has: no compiler and no uv, user 10001, /data for DATA_DIR.
FROM python:3.11-slim-bookworm AS runtime
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOST=0.0.0.0 \
    PORT=8080 \
    DATA_DIR=/data \
    MIGRATE_ON_START=false
RUN groupadd --system --gid 10001 printfarm \
    && useradd --system --uid 10001 --gid printfarm --no-create-home --shell /usr/sbin/nologin printfarm \
    && mkdir -p /data && chown printfarm:printfarm /data

# ---- one stage per service (the stage name is the SERVICE build argument)
FROM runtime AS skus
ENV SERVICE_MODULE=skus

FROM runtime AS orders
ENV SERVICE_MODULE=orders

FROM runtime AS queue
ENV SERVICE_MODULE=printqueue

# ffmpeg decodes X1/H2 cameras' H.264 (RTSPS) into the pictures the live view shows.
FROM runtime AS printer-gateway
ENV SERVICE_MODULE=printer_gateway
RUN apt-get update \
    && apt-get install -y --no-install-recommends ffmpeg=7:5.1.9-0+deb12u1 \
    && rm -rf /var/lib/apt/lists/*

FROM runtime AS api-gateway
ENV SERVICE_MODULE=api_gateway

# Debian's OpenSCAD and PrusaSlicer, the versions the pipeline is tested with. Headless use only: the
# CLIs need no display, and the recommended desktop packages are left out. PrusaSlicer keeps its own
# configuration under HOME, which is /tmp on a read-only root filesystem.
FROM runtime AS slicer
ENV SERVICE_MODULE=slicer \
    HOME=/tmp
RUN apt-get update \
    && apt-get install -y --no-install-recommends openscad=2021.01-6 prusa-slicer=2.5.0+dfsg-4 \
    && rm -rf /var/lib/apt/lists/*

# ---- the image: the service's stage, its virtual environment and its code
FROM ${SERVICE} AS service
ARG SERVICE
WORKDIR /app
COPY --from=build /app/.venv /app/.venv
COPY --from=build /app/libs /app/libs
COPY --from=build /app/services/${SERVICE} /app/services/${SERVICE}
USER 10001:10001
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('PORT', '8080') + '/health', timeout=4)"]
# `python -m <module> serve` by default; Kubernetes gives `migrate` or `wait-for-migrations` as args.
ENTRYPOINT ["/bin/sh", "-c", "exec python -m \"$SERVICE_MODULE\" \"$@\"", "--"]
CMD ["serve"]
