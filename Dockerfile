# syncd as a long-running container: `syncd run`, its config and its database on volumes.
#
#   docker build -t syncd .
#   docker run -d --name syncd -p 8080:8080 --env-file syncd.env \
#       -v syncd-data:/var/lib/syncd syncd                            # configured from SYNCD_* only
#   docker run -d --name syncd -p 8080:8080 -v syncd-data:/var/lib/syncd \
#       -v "$PWD/syncd.toml:/etc/syncd/syncd.toml:ro" syncd            # or from a file (+ SYNCD_*)
#
# Configuration: the TOML file named by SYNCD_CONFIG (/etc/syncd/syncd.toml), SYNCD_* variables
# overriding it key by key, or the variables alone. A missing file named by SYNCD_CONFIG is an
# error in syncd, so the entrypoint drops SYNCD_CONFIG when it still names the image's default
# and nothing is there; a path you set yourself, or something at the default path that is not a
# readable file (a mis-bound mount), still fails loudly.
# Database: the default `sqlite:///syncd.db` is relative to the working directory, the data
# volume /var/lib/syncd. (It is deliberately not set as SYNCD_DATABASE__URL here: a variable
# would override the `database.url` of a mounted config file.)
# Stopping: syncd finishes the syncs in flight and exits within ~10 s of SIGTERM; give it that
# (`docker stop -t 15`, compose `stop_grace_period: 15s`, k8s terminationGracePeriodSeconds).
FROM python:3.11-slim-bookworm

LABEL org.opencontainers.image.title="syncd" \
      org.opencontainers.image.description="Keeps loyalty-point balances equal between Wix and Square, as a ledger." \
      org.opencontainers.image.licenses="Apache-2.0"

# Build-time only: not part of the running container's environment.
ARG PIP_NO_CACHE_DIR=1
ARG PIP_DISABLE_PIP_VERSION_CHECK=1
ARG PIP_ROOT_USER_ACTION=ignore

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    SYNCD_CONFIG=/etc/syncd/syncd.toml \
    SYNCD_SERVER__HOST=0.0.0.0

# The unprivileged user (numeric, so runAsNonRoot can check it) and the two volume folders;
# only the data folder is writable by syncd, the config folder is read-only to it.
RUN groupadd --system --gid 10001 syncd \
    && useradd --system --uid 10001 --gid syncd --home-dir /var/lib/syncd --no-create-home \
       --shell /usr/sbin/nologin syncd \
    && mkdir -p /etc/syncd /var/lib/syncd \
    && chown syncd:syncd /var/lib/syncd \
    && chmod 0750 /var/lib/syncd

WORKDIR /usr/src/syncd

# Dependencies first, read from pyproject.toml alone: a change to the source reuses this layer.
COPY pyproject.toml ./
RUN python -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]))' > requirements.txt \
    && pip install -r requirements.txt

# Then syncd itself (README.md is the package's readme); `pip check` proves nothing is missing.
COPY README.md ./
COPY syncd ./syncd
COPY connectors ./connectors
RUN pip install --no-deps . && pip check

USER 10001:10001
WORKDIR /var/lib/syncd
VOLUME ["/etc/syncd", "/var/lib/syncd"]
EXPOSE 8080

# Liveness from inside the container, without curl: /healthz on the port syncd listens on
# (SYNCD_SERVER__PORT, else [server] port of the config file, else 8080).
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, sys, tomllib, urllib.request as r; c = os.environ.get('SYNCD_CONFIG', ''); t = tomllib.load(open(c, 'rb')) if os.path.isfile(c) else {}; p = os.environ.get('SYNCD_SERVER__PORT') or t.get('server', {}).get('port', 8080); sys.exit(r.urlopen(f'http://127.0.0.1:{p}/healthz', timeout=4).status != 200)"]

STOPSIGNAL SIGTERM
# No file at the default SYNCD_CONFIG: configuration from the environment alone. `exec` makes
# syncd PID 1, so SIGTERM reaches it directly.
ENTRYPOINT ["/bin/sh", "-c", "if [ \"${SYNCD_CONFIG:-}\" = /etc/syncd/syncd.toml ] && [ ! -e /etc/syncd/syncd.toml ]; then unset SYNCD_CONFIG; fi; exec \"$@\"", "syncd-entrypoint"]
CMD ["syncd", "run"]
