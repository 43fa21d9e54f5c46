# One image for the gateway, the normalizer and consumers; the command picks the service.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY espstream ./espstream
COPY gateway ./gateway
COPY normalizer ./normalizer
COPY schemas ./schemas
COPY consumers ./consumers
COPY plumbing ./plumbing
COPY registry ./registry
RUN pip install --no-cache-dir .
USER nobody
ENTRYPOINT ["espstream"]
