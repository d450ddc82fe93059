"""The staff web page and the HTTP API."""
