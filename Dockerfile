# syntax=docker/dockerfile:1
# Multi-stage: build a virtualenv with the bot, then copy it into a slim runtime image.
# BASE_IMAGE defaults to the official slim Python image; on machines without a registry,
# pass a local Debian+python3 image (see README, "Container").
ARG BASE_IMAGE=python:3.12-slim

FROM ${BASE_IMAGE} AS build
# Only used by RUN steps (a TLS-intercepting proxy's CA bundle); not kept in the image config.
ARG PIP_CERT
RUN python3 -m venv /opt/venv
COPY pyproject.toml README.md /src/
COPY bot /src/bot
RUN /opt/venv/bin/pip install --no-cache-dir --upgrade pip \
 && /opt/venv/bin/pip install --no-cache-dir /src

FROM ${BASE_IMAGE}
COPY --from=build /opt/venv /opt/venv
COPY manifest.yml /app/manifest.yml
RUN useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin mlchatops \
 && mkdir -p /app/state && chown -R mlchatops /app
USER 10001
WORKDIR /app
ENV PATH="/opt/venv/bin:${PATH}" \
    PYTHONUNBUFFERED=1 \
    ML_CHATOPS_STATE=sqlite:////app/state/ml-chatops.db \
    PORT=3000
EXPOSE 3000
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s --retries=3 \
  CMD ["python3", "-c", "import os,urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT','3000'), timeout=2); sys.exit(0)"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["ml-chatops"]
CMD ["serve"]
