"""PostgreSQL tables, repositories, list queries and the SKU catalogue client."""
