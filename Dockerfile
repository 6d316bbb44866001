# monitor in a container: `docker build -t monitor .`, then see compose.yaml (README, Operations: Docker).
# The config is mounted read-only at /config/config.yaml; the store lives on the /data volume (the config's
# `store:` must point there, e.g. `store: /data/monitor.db`: deploy/config.docker.yaml does).

# Any image with Python 3.11+ and its venv module (`--build-arg PYTHON_IMAGE=...` for a local mirror's).
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
RUN python3 -m venv /opt/monitor
COPY pyproject.toml README.md ./
COPY monitor ./monitor
RUN /opt/monitor/bin/pip install --no-cache-dir .

FROM ${PYTHON_IMAGE}
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/monitor/bin:$PATH \
    MONITOR_CONFIG=/config/config.yaml
# A system user with a fixed uid (chown the volume to it on the host if you bind-mount a directory).
RUN useradd --system --uid 10001 --user-group --home-dir /data --shell /usr/sbin/nologin monitor \
    && mkdir -p /data /config \
    && chown monitor:monitor /data
COPY --from=build /opt/monitor /opt/monitor
USER 10001:10001
WORKDIR /data
VOLUME ["/data"]
# Only used with `run --metrics 0.0.0.0:9108 --metrics-public` (compose.yaml does; publish it on loopback).
EXPOSE 9108
# Exit 1 when the daemon's heartbeat is older than 3 minutes, a source fails `health.failures` polls in a row,
# or an alert has waited over an hour: `docker ps` shows "unhealthy", and `docker inspect` the reasons.
HEALTHCHECK --interval=1m --timeout=30s --start-period=2m --retries=3 CMD ["monitor", "health"]
# SIGTERM stops the daemon within 10 s (compose's default grace period); SIGHUP reloads the config.
STOPSIGNAL SIGTERM
ENTRYPOINT ["monitor"]
CMD ["run"]
