# syntax=docker/dockerfile:1
# ml-chatops: build a virtualenv with the bot in one stage, copy only that venv into the
# runtime stage (no compilers, no build caches, no source tree), run as a non-root user.
#
# BASE_IMAGE defaults to the official slim Python image, pinned by the digest of its
# multi-arch index, so a rebuild gets the same base until someone moves the pin on purpose.
# To update it (docs/containers.md, "Updating the base image"):
#   docker buildx imagetools inspect python:3.12-slim   # the "Digest:" line
#   (or: skopeo inspect --format '{{.Digest}}' docker://docker.io/library/python:3.12-slim)
# then replace the sha256 below, rebuild, and run `pytest -m container`.
# Where no registry is reachable, pass a local Debian + python3 + python3-venv image
# (docs/containers.md). Both stages use the same base, so the venv's interpreter symlink
# points at the same python3 in each.
ARG BASE_IMAGE=python:3.12-slim@sha256:78387bc3881b8273120a12ebe6c1ab22b018ccc2c9adf565ae1ac9b536e184ea

FROM ${BASE_IMAGE} AS build
# A TLS-intercepting proxy's CA bundle for pip, if any. An ARG is visible to RUN as an
# environment variable and is not kept in the final image's config.
ARG PIP_CERT
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python3 -m venv /opt/venv
# Dependencies first (from pyproject only), so code edits reuse this layer.
COPY pyproject.toml README.md /src/
RUN mkdir -p /src/bot && touch /src/bot/__init__.py \
 && /opt/venv/bin/pip install /src \
 && /opt/venv/bin/pip uninstall --yes ml-chatops
COPY bot /src/bot
RUN /opt/venv/bin/pip install --no-deps /src \
 && /opt/venv/bin/pip uninstall --yes pip \
 && /opt/venv/bin/python -c "import bot.cli"

FROM ${BASE_IMAGE}
LABEL org.opencontainers.image.title="ml-chatops" \
      org.opencontainers.image.description="Slack bot that stops Elasticsearch ML deployments safely"
# A named group with the same id as the user (10001:10001, as USER says), and an ordinary
# account: uid 10001 is outside the system range, so `--system` would only make useradd warn.
RUN groupadd --gid 10001 mlchatops \
 && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /app \
      --shell /usr/sbin/nologin mlchatops \
 && mkdir -p /app/state \
 && chown -R 10001:10001 /app
COPY --from=build /opt/venv /opt/venv
USER 10001:10001
WORKDIR /app
ENV PATH="/opt/venv/bin:${PATH}" \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    ML_CHATOPS_STATE=sqlite:////app/state/ml-chatops.db \
    PORT=3000
VOLUME ["/app/state"]
EXPOSE 3000
# Liveness only (no Elasticsearch or Slack call): /readyz is for the load balancer.
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s --retries=3 \
  CMD ["python3", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '3000'), timeout=2)"]
# `serve` drains running stops on SIGTERM (up to 60 s): give `docker stop -t` / podman
# `--stop-timeout` / terminationGracePeriodSeconds at least 70 s.
STOPSIGNAL SIGTERM
ENTRYPOINT ["ml-chatops"]
CMD ["serve"]
