#!/usr/bin/env bash
# Builds a Healthchecks server for `bench_ping.py --healthchecks DIR` (issue 18's "≥ 2×
# Healthchecks"). Healthchecks is on neither PyPI nor Debian, so this extracts a pinned
# revision from a git mirror, gives it its own venv with its requirements and uWSGI (the
# server its Docker image runs, docker/uwsgi.ini), configures it for SQLite with
# DEBUG=False, and runs its migrations.
#
#   bench/healthchecks_setup.sh [MIRROR] [TARGET]
#
# MIRROR: a bare git repository of healthchecks/healthchecks
#         (default /work/.mirror/healthchecks+healthchecks/repo).
# TARGET: where it goes (default /opt/healthchecks); its venv is TARGET/.venv.
# HC_REV overrides the revision; PYTHON the interpreter the venv is made from.
#
# The revision: ea43b2ec (2025-12-04), the last commit before "Upgrade to Django 6.0"
# (c6cdcdd3), so the newest whose requirements.txt (Django 5.2.8) installs on Python 3.11;
# it is v3.13 plus six small commits (none on the ping path).
set -euo pipefail

MIRROR=${1:-/work/.mirror/healthchecks+healthchecks/repo}
TARGET=${2:-/opt/healthchecks}
HC_REV=${HC_REV:-ea43b2ecb7ab2254a482f2fc70c5fc2c196124f2}
PYTHON=${PYTHON:-python3}
MARKER=.backwatch-bench-revision

say() { printf '== %s\n' "$*"; }

git --git-dir="$MIRROR" rev-parse --verify --quiet "$HC_REV^{commit}" >/dev/null ||
    { echo "revision $HC_REV not in $MIRROR" >&2; exit 1; }

# pycurl (in requirements.txt) builds against libcurl; uWSGI needs a C compiler.
if ! command -v curl-config >/dev/null || ! command -v gcc >/dev/null; then
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
        say "installing libcurl4-openssl-dev build-essential"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libcurl4-openssl-dev build-essential
    else
        echo "needs curl-config and gcc: apt-get install libcurl4-openssl-dev build-essential" >&2
        exit 1
    fi
fi

# Never write over a directory this script did not make.
if [[ -d $TARGET && -n $(ls -A "$TARGET") && ! -f $TARGET/$MARKER ]]; then
    echo "$TARGET exists and was not made by this script; give another TARGET" >&2
    exit 1
fi
mkdir -p "$TARGET"
say "extracting $HC_REV into $TARGET"
git --git-dir="$MIRROR" archive "$HC_REV" | tar -x -C "$TARGET"
echo "$HC_REV" >"$TARGET/$MARKER"

if [[ ! -x $TARGET/.venv/bin/python ]]; then
    say "making $TARGET/.venv with $("$PYTHON" --version)"
    "$PYTHON" -m venv "$TARGET/.venv"
fi
say "installing requirements.txt and uwsgi"
"$TARGET/.venv/bin/pip" install --quiet --upgrade pip
"$TARGET/.venv/bin/pip" install --quiet -r "$TARGET/requirements.txt" uwsgi

# Settings: hc/settings.py reads the environment and then hc/local_settings.py. SQLite is
# its default database (hc.sqlite in TARGET, or DB_NAME); SITE_ROOT is the environment's
# (bench_ping.py sets it to the port it picks).
if [[ ! -f $TARGET/hc/local_settings.py ]]; then
    secret=$("$TARGET/.venv/bin/python" -c 'import secrets; print(secrets.token_urlsafe(40))')
    cat >"$TARGET/hc/local_settings.py" <<EOF
# Written by backwatch's bench/healthchecks_setup.sh.
import os

DEBUG = False
SECRET_KEY = os.getenv("SECRET_KEY") or "$secret"
ALLOWED_HOSTS = os.getenv("ALLOWED_HOSTS", "127.0.0.1,localhost").split(",")
EOF
fi

export DB=sqlite DEBUG=False SITE_ROOT=${SITE_ROOT:-http://127.0.0.1:8000}
cd "$TARGET"
say "migrating $TARGET/hc.sqlite"
.venv/bin/python manage.py migrate --no-input -v 0
say "collecting static files (as the Docker image does)"
.venv/bin/python manage.py collectstatic --no-input -v 0
say "ready: $TARGET at $(cut -c1-8 "$MARKER"), $(.venv/bin/python --version)," \
    "Django $(.venv/bin/python -m django --version), uWSGI $(.venv/bin/uwsgi --version)"
