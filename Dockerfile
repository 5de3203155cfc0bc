# backwatch's container image: `make image` builds it as localhost/backwatch:dev (see
# packaging/build-image.sh and docs/deploy.md#container). Plain `docker build .` works too.
#
# BASE is any Debian-like image with python3 >= 3.11 and its venv module: python:3.12-slim by
# default, or a Debian bookworm root file system made by debootstrap where no registry is
# reachable (its python3 is 3.11). Every stage uses it, so the venv's interpreter is there.
ARG BASE=python:3.12-slim

FROM ${BASE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python3 -m venv /opt/backwatch
COPY pyproject.toml README.md LICENSE /src/
COPY src /src/src
# A machine whose egress re-signs TLS passes its CA bundle as the build secret "ca"
# (--secret id=ca,src=...); without it pip trusts its own bundle.
RUN --mount=type=secret,id=ca \
    if [ -s /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi \
    && /opt/backwatch/bin/pip install /src \
    && /opt/backwatch/bin/pip uninstall --yes pip setuptools \
    && /opt/backwatch/bin/backwatch --version

FROM ${BASE}
ARG DEBIAN_FRONTEND=noninteractive
# restic, borg, rsync and zstd: the runner's jobs run inside the image; tzdata: TZ;
# ca-certificates: notifications over https; tini: PID 1 that reaps the jobs' orphans.
# Versions come with the base's Debian release, so they are not pinned here.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        borgbackup ca-certificates restic rsync tini tzdata zstd \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --no-log-init --uid 10001 --user-group --home-dir /data --no-create-home \
        --shell /usr/sbin/nologin backwatch \
    && install -d -m 0700 -o backwatch -g backwatch /data

COPY --from=build /opt/backwatch /opt/backwatch

# BACKWATCH_DATA_DIR: `docker exec … backwatch token create` finds the server's database.
# HOME=/data keeps borg's and restic's caches and borg's security files in the volume.
# [auth] read = "token": a server bound to 0.0.0.0 shows nothing without a token unless told
# otherwise (BACKWATCH_AUTH__READ=open); the first start writes the token to /data/token.
ENV PATH=/opt/backwatch/bin:$PATH \
    BACKWATCH_DATA_DIR=/data \
    BACKWATCH_AUTH__READ=token \
    HOME=/data \
    TZ=Etc/UTC \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1

USER 10001:10001
WORKDIR /data
VOLUME ["/data"]
EXPOSE 5001

# /readyz: 200 once reports can be stored (database up, schema current, disk not full).
# Python's urllib, so the image needs no curl; no proxy, whatever the environment says.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["/opt/backwatch/bin/python", "-c", "import urllib.request as u; u.build_opener(u.ProxyHandler({})).open('http://127.0.0.1:5001/readyz', timeout=4)"]

ENTRYPOINT ["tini", "--", "backwatch"]
CMD ["serve", "--host", "0.0.0.0", "--port", "5001", "--data-dir", "/data"]
