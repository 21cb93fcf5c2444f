"""evserver: a static-file HTTP/1.1 server on one selectors event loop, stdlib only."""

__version__ = "0.1.0"
