"""The PostgreSQL backend of the `Store` Protocol (psycopg 3 with a connection pool)."""
