"""Persistence: SQLAlchemy models, the database handle, repositories (all SQL lives here), migrations."""
