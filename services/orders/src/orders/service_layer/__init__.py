"""Use cases: handlers that load aggregates through the unit of work and emit contract messages."""
