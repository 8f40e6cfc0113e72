"""Alembic environment: runs on the connection electro.migrate hands over (async engines)."""

from alembic import context

from electro import models  # noqa: F401 - registers the tables
from electro.db import Base
from electro.migrate import include_name

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copying
    compare_type=True,
    include_name=include_name,  # the search index has no ORM model (0002)
)
with context.begin_transaction():
    context.run_migrations()
