"""The store: plain-SQL migrations, the store mode, and maintenance (retention, partitions)."""
