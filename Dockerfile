# One Dockerfile, one target per service (docker-compose.yml picks the target); build context: the repo root.

# The base of every stage: the pinned official image by default. Any Debian bookworm image with python3.11 as
# `python`, venv and ensurepip builds the same stages: where no registry is reachable, the one that
# deploy/base/make-base.sh makes from Debian's packages with debootstrap (`--build-arg BASE_IMAGE=...`).
ARG BASE_IMAGE=python:3.11.7-slim-bookworm

# --- shared build stage: the locked run-time dependencies and the generated protobuf code -------------------
FROM ${BASE_IMAGE} AS build
WORKDIR /app
RUN python -m venv /venv
COPY requirements.lock .
# Behind a TLS-intercepting proxy pip must trust the proxy's CA: EXTRA_CA_CERTS (PEM text, empty by default) is
# added to pip's bundle for this one command, in this build stage only. The service images copy /venv and
# gen/ from here and never see the argument or the certificate.
ARG EXTRA_CA_CERTS=""
RUN bundle=/tmp/pip-ca.pem \
    && if [ -n "$EXTRA_CA_CERTS" ]; then \
         { cat "$(/venv/bin/python -c 'import pip._vendor.certifi as c; print(c.where())')"; \
           printf '%s\n' "$EXTRA_CA_CERTS"; } > "$bundle"; \
         export PIP_CERT="$bundle"; \
       fi \
    && /venv/bin/pip install --no-cache-dir -r requirements.lock \
    && rm -f "$bundle"
COPY protos/ protos/
COPY tools/gen_protos.py tools/
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
RUN /venv/bin/python tools/gen_protos.py --out gen

# --- shared run-time base: non-root user, the venv, the generated code and the shared library ---------------
FROM ${BASE_IMAGE} AS runtime
RUN useradd --system --uid 10001 --home-dir /app toefl
WORKDIR /app
COPY --from=build /venv /venv
# The generated `toefl` package beside the shared library and the service: `python -m` runs from WORKDIR /app,
# which is then first on the import path, so nothing needs PYTHONPATH.
COPY --from=build /app/gen/toefl /app/toefl
COPY toefl_core/ toefl_core/
ENV PYTHONUNBUFFERED=1 \
    TOEFL_ENV=production

# --- item_service: the bank baked in at /app/item_bank.db, read-only; a new bank means a new image -----------
FROM runtime AS item_service
COPY item_service/ item_service/
COPY item_service/item_bank.db /app/item_bank.db
ENV DATABASE_URL=sqlite:////app/item_bank.db \
    ITEM_BANK_READ_ONLY=true \
    ITEM_SERVICE_ADDR=0.0.0.0:50051
USER 10001
EXPOSE 50051
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 \
    CMD ["/venv/bin/python", "-m", "toefl_core.healthprobe", "--grpc", "127.0.0.1:50051"]
CMD ["/venv/bin/python", "-m", "item_service", "serve"]

# --- session_service: student data on the volume at /app/data, never in the image; migrates at start --------
FROM runtime AS session_service
COPY session_service/ session_service/
RUN mkdir -p /app/data && chown toefl /app/data
ENV USER_DATABASE_URL=sqlite:////app/data/user_data.db \
    SESSION_SERVICE_ADDR=0.0.0.0:50052 \
    ITEM_SERVICE_ADDR=item_service:50051
USER 10001
VOLUME ["/app/data"]
EXPOSE 50052
HEALTHCHECK --interval=10s --timeout=5s --start-period=15s --retries=3 \
    CMD ["/venv/bin/python", "-m", "toefl_core.healthprobe", "--grpc", "127.0.0.1:50052"]
CMD ["/venv/bin/python", "-m", "session_service", "serve"]

# --- gateway: JSON/HTTP front, holds no data ----------------------------------------------------------------
FROM runtime AS gateway
COPY gateway/ gateway/
ENV GATEWAY_ADDR=0.0.0.0:8080 \
    ITEM_SERVICE_ADDR=item_service:50051 \
    SESSION_SERVICE_ADDR=session_service:50052
USER 10001
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 \
    CMD ["/venv/bin/python", "-m", "toefl_core.healthprobe", "--http", "http://127.0.0.1:8080/healthz"]
CMD ["/venv/bin/python", "-m", "gateway"]
