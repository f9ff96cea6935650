# The sandbox node image from a public Python base image, for hosts that reach a registry. Same layout as the image
# `ponder toolserver build-image` makes offline from Debian packages. Build from the repository root:
#   docker build -f docker/node.Dockerfile -t ponder-node:latest src/ponder/toolserver/node
# `python3` resolves to the base image's /usr/local/bin/python3 (first on PATH), which has the data stack from pip;
# the command-line tools are the same Debian packages as the offline build's (ponder/toolserver/_image.py).
FROM python:3.11-slim-bookworm
RUN apt-get update \
 && apt-get install -y --no-install-recommends coq procps psmisc lsof file bc jq tree zip unzip xz-utils bzip2 \
      sqlite3 git less nano vim-tiny curl wget patch make gawk ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && pip install --no-cache-dir numpy pandas scipy matplotlib sympy openpyxl pyyaml requests beautifulsoup4 \
 && groupadd --gid 1000 sandbox \
 && useradd --uid 1000 --gid 1000 --home-dir /workspace --no-create-home --shell /bin/bash sandbox \
 && mkdir -p /workspace /opt/ponder \
 && chown sandbox:sandbox /workspace \
 && find / -xdev -type f -perm /6000 -exec chmod a-s {} +
COPY runner.py /opt/ponder/runner.py
ENV HOME=/workspace PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 LANG=C.UTF-8 MPLBACKEND=Agg MPLCONFIGDIR=/tmp/matplotlib
USER 1000:1000
WORKDIR /workspace
CMD ["python3", "/opt/ponder/runner.py", "init"]
