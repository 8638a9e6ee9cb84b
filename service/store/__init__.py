"""The job store: tables, database engines, the queue's statements and the ETA model."""
