"""The SQL the package runs (DuckDB dialect), read with importlib.resources (extract.load_sql)."""
