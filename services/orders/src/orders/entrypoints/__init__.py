"""HTTP routes and bus consumers."""
