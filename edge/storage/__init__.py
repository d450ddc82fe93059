"""SQLite storage: schema migrations, records, print queue and outbox."""
