"""The tracking store: MLflow, embedded (SQLite) or a server/database chosen by URI."""
