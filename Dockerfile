# syncd as a long-running container: `syncd run` with its config and database on volumes.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    SYNCD_CONFIG=/etc/syncd/syncd.toml SYNCD_DATABASE__URL=sqlite:////var/lib/syncd/syncd.db

WORKDIR /app
COPY pyproject.toml README.md ./
COPY syncd ./syncd
COPY connectors ./connectors
RUN pip install . && useradd --system --uid 10001 --home /var/lib/syncd syncd \
    && mkdir -p /etc/syncd /var/lib/syncd && chown syncd /var/lib/syncd

USER syncd
VOLUME ["/etc/syncd", "/var/lib/syncd"]
EXPOSE 8080
CMD ["syncd", "check-config", "--connect"]
