"""The webhook gateway (FastAPI)."""
