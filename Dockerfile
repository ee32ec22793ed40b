# One image for every Ratatouille service in docker-compose.yml: the Dagster code server,
# webserver and daemon, Streamlit, JupyterLab and the one-shot preflight and setup steps.
# Settings and secrets come from the environment at run time; nothing secret is baked in
# (.dockerignore keeps .env out of the build context).
# Python 3.11, the version requirements.txt is pinned and measured for, at a fixed patch release.
FROM python:3.11.17-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DAGSTER_HOME=/opt/dagster/home

# A fixed uid, so the named volumes keep one owner across rebuilds. A real shell: JupyterLab's
# terminals start the user's login shell.
RUN groupadd --gid 10001 ratatouille \
    && useradd --uid 10001 --gid ratatouille --create-home --shell /bin/bash ratatouille

# Debian's nginx: the `proxy` service's login gate in front of the app (auth_request).
# Unpinned on purpose: bookworm-security replaces old versions, so a pin would break builds.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends nginx \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app

# The pinned requirements first: a code change then rebuilds only the layers below.
COPY requirements.txt ./
RUN pip install --no-cache-dir -r requirements.txt

COPY --chown=ratatouille:ratatouille . .
# Editable, as `make run` installs it: Settings' relative defaults (pipelines/models,
# notebooks/steps) and pipelines/instance.py's deploy/dagster templates resolve inside /app.
# The state and Dagster home folders exist owned by the app user, so the empty named volumes
# compose mounts there start with that owner (the models and notebooks volumes start as a copy
# of these folders).
RUN pip install --no-cache-dir --no-deps -e . \
    && mkdir -p /app/.ratatouille "$DAGSTER_HOME" \
    && chown ratatouille:ratatouille /app/.ratatouille "$DAGSTER_HOME"

# By number: Kubernetes' runAsNonRoot and hosts without this user in /etc/passwd check the uid.
USER 10001:10001

# Streamlit (or the login gate in front of it), Dagster webserver, code server (gRPC), JupyterLab.
EXPOSE 8501 3000 4266 8888

CMD ["ratatouille", "--help"]
