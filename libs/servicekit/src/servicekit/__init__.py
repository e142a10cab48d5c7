"""Plumbing every printfarm service shares: settings, database, outbox/inbox, bus, problems, health."""
