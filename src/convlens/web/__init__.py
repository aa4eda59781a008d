"""The explorer: a local web page over convlens's API (see app.py for the routes)."""
