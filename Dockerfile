# One image for the gateway, the normalizer and consumers; the command picks the service.
# The packages are installed at the versions of constraints.txt, the ones the tests ran with.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md constraints.txt ./
COPY espstream ./espstream
COPY gateway ./gateway
COPY normalizer ./normalizer
COPY schemas ./schemas
COPY consumers ./consumers
COPY plumbing ./plumbing
COPY registry ./registry
RUN pip install --no-cache-dir -c constraints.txt .
USER nobody
# The gateway's webhook port, then the metrics (and /healthz, /readyz) ports of the gateway,
# the normalizer and a consumer, as docker-compose.yml sets them.
EXPOSE 8000 9100 9101 9102
# The gateway's readiness by default; a service on another port sets ESPSTREAM_HEALTHCHECK_URL
# (the slim image has no curl: Python asks).
ENV ESPSTREAM_HEALTHCHECK_URL=http://127.0.0.1:8000/readyz
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(os.environ['ESPSTREAM_HEALTHCHECK_URL'], timeout=4)"]
ENTRYPOINT ["espstream"]
