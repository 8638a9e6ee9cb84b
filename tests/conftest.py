"""Shared fixtures. Each test gets its own data directory; nothing touches the user's home."""
