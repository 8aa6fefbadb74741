# kiln's container image: Bun, kiln and Python 3 (for Python blocks), entrypoint `kiln`.
#
#   docker build -t kiln .        (or podman build -t kiln .)
#   docker run --rm kiln --version
#   docker run -v "$PWD/my_project:/home/src/project" kiln start /home/src/project --instance-type web_server
#
# BASE_IMAGE is any Debian-like image with glibc; python3 and ca-certificates are installed with
# apt-get when the base lacks them (the tests pass a local Debian base that has them, since no
# image registry is reachable where they run). Bun comes from its npm package, checked against
# the sha512 below. `kiln` with no block image in executor_config runs Docker blocks in
# kiln:latest, so tag this build `kiln` (or set KILN_DOCKER_IMAGE).
ARG BASE_IMAGE=docker.io/library/debian:bookworm-slim
FROM ${BASE_IMAGE}

ARG BUN_VERSION=1.4.5
ARG BUN_SHA512_AMD64=sha512-IWX9BELoGHAUtMonkeSaNaZwXzRk+oDw6Mk+HBFXd3KHYIBNBsIGRupMZPcgNoDbJpLu6gAJjIoIVPZtt1aJ1g==
ARG BUN_SHA512_ARM64=sha512-4BXmsSKnjOrlGWqZV4x/oWa7AVoR+B6lCXddMzOAXBIm3t50eslg9wb66gmtW1AamEQ1l1CDvmmruysEhqOWMg==
# set by BuildKit and buildah for the platform being built; dpkg's answer otherwise
ARG TARGETARCH

RUN if ! command -v python3 >/dev/null || [ ! -s /etc/ssl/certs/ca-certificates.crt ]; then \
      apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3 ca-certificates \
      && rm -rf /var/lib/apt/lists/*; \
    fi

COPY docker/install-bun.py /tmp/install-bun.py
RUN arch="${TARGETARCH:-$(dpkg --print-architecture)}" \
    && if [ "$arch" = arm64 ]; then sum="$BUN_SHA512_ARM64"; else sum="$BUN_SHA512_AMD64"; fi \
    && python3 /tmp/install-bun.py "$BUN_VERSION" "$arch" "$sum" && rm /tmp/install-bun.py \
    && bun --version

# dependencies first, from the lockfile, so a change to kiln's sources reuses this layer
WORKDIR /opt/kiln
COPY package.json bun.lock bunfig.toml ./
COPY core/package.json core/
COPY node/package.json node/
COPY scheduler/package.json scheduler/
COPY server/package.json server/
COPY cli/package.json cli/
COPY worker/package.json worker/
COPY plugins/executor-cloud-run/package.json plugins/executor-cloud-run/
COPY plugins/executor-docker/package.json plugins/executor-docker/
COPY plugins/executor-ecs/package.json plugins/executor-ecs/
COPY plugins/executor-kubernetes/package.json plugins/executor-kubernetes/
COPY plugins/executor-local/package.json plugins/executor-local/
COPY plugins/executor-workflows/package.json plugins/executor-workflows/
# bun trusts the system's CA bundle (a registry behind a company proxy works when the base trusts it)
RUN NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt bun install --production --frozen-lockfile \
    && rm -rf /root/.bun/install/cache

COPY core core
COPY node node
COPY scheduler scheduler
COPY server server
COPY cli cli
COPY worker worker
COPY plugins plugins
RUN ln -s /opt/kiln/cli/src/main.ts /usr/local/bin/kiln \
    && kiln --version

# Mage's layout: the project is mounted (or copied) at /home/src/<project>
WORKDIR /home/src
ENV PYTHONUNBUFFERED=1
EXPOSE 6789
ENTRYPOINT ["kiln"]
CMD ["--help"]
