# edgelog container image: the `edgelog` program (the agent, `edgelog run`,
# and every maintenance command), the Python package with the library it
# was built with, and the example inference service of docker-compose.yml.
#
#   docker build -t edgelog .
#   docker build -t edgelog --build-arg BASE=my-debian12 --build-arg RUNTIME_BASE=my-debian12 .
#
# Two stages: build on Debian 12 with the -dev packages and a compiler;
# run on a slim Debian 12 with only the runtime libraries, as the
# unprivileged user `edgelog` (uid 10001). The buffer lives in the volume
# /data: BUFFER_DB_PATH=/data/prediction_buffer.db (the old variable) or
# EDGELOG_DIR=/data/edgelog chooses the directory inside it.
#
# Without a registry (CI here) the bases come from deploy/base-image.sh
# (debootstrap + docker import); build with --network host when the daemon
# has no bridge network.

ARG BASE=debian:12
ARG RUNTIME_BASE=debian:12-slim

FROM ${BASE} AS build
# A C compiler only (the project is C11): gcc, not build-essential.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
    gcc libc6-dev make cmake pkg-config zlib1g-dev libcurl4-openssl-dev libdeflate-dev \
    libmsgpack-dev libxxhash-dev libjansson-dev libmicrohttpd-dev ca-certificates \
    python3 python3-pip python3-setuptools python3-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# The whole tree (.dockerignore leaves out .git, build trees and local
# data), so a folder the build comes to need is never missing here.
COPY . .
# Release build without tests or benchmarks; the programs link the library
# statically (edgelog-dev serves `edgelog sink` for the compose receiver), the Python package carries its own copy of libedgelog.so.
RUN cmake -S . -B /build -DCMAKE_BUILD_TYPE=Release -DEDGELOG_BUILD_TESTS=OFF \
      -DEDGELOG_BUILD_BENCH=OFF -DCMAKE_INSTALL_PREFIX=/usr/local \
 && cmake --build /build -j"$(nproc)" \
 && mkdir -p /out/bin /out/python \
 && cp -P /build/tools/edgelog /build/tools/edgelog-dev /build/tools/segdump \
      /build/tools/segtail /out/bin/ \
 && strip /out/bin/edgelog /out/bin/edgelog-dev \
 && EDGELOG_BUILD_DIR=/build python3 -m pip install --no-build-isolation --no-index \
      --no-deps --target /out/python ./python \
 && cp python/examples/inference_service.py /out/

FROM ${RUNTIME_BASE}
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
    libcurl4 libdeflate0 libmsgpackc2 libxxhash0 libjansson4 zlib1g libmicrohttpd12 \
    ca-certificates python3 python3-msgpack \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --home-dir /data --no-create-home \
      --shell /usr/sbin/nologin edgelog \
 && mkdir -p /data && chown edgelog:edgelog /data && chmod 0700 /data
COPY --from=build /out/bin/ /usr/local/bin/
COPY --from=build /out/python/ /usr/local/lib/edgelog/python/
COPY --from=build /out/inference_service.py /usr/local/share/edgelog/inference_service.py
ENV PYTHONPATH=/usr/local/lib/edgelog/python \
    PYTHONUNBUFFERED=1
USER edgelog
WORKDIR /data
VOLUME ["/data"]
# Healthy while an engine holds the buffer directory and keeps its status
# snapshot fresh (rewritten at least every 30 s): `edgelog status --json`
# says "source":"live". The directory comes from the same variables the
# engine reads (BUFFER_DB_PATH, EDGELOG_DIR; default ./edgelog-data).
HEALTHCHECK --interval=15s --timeout=5s --start-period=10s --retries=3 \
  CMD ["/bin/sh", "-c", "edgelog status --json | grep -q '\"source\":\"live\"'"]
# The agent: JSON lines on stdin (docker run -i ... < predictions.jsonl).
ENTRYPOINT ["edgelog"]
CMD ["run"]
