"""The process: start-up, the workers and their supervisor, signals, memory locking."""
