"""Storage of user_data.db: the only package of session_service that imports SQLAlchemy or Alembic."""
