# One image for the gateway, the normalizer and consumers; the command picks the service.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY espstream ./espstream
COPY gateway ./gateway
COPY normalizer ./normalizer
COPY schemas ./schemas
COPY consumers ./consumers
RUN pip install --no-cache-dir .
USER nobody
ENTRYPOINT ["espstream"]
