"""The HTTP side: app factory, routes, auth, rate limits, error rendering."""
