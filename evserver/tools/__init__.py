"""Commands that never run while serving: `stats`, `hash-password`, and the banner's QR code.

Each module is imported only by `__main__` when its command (or `--qr`) asks for it, so a
running server neither loads nor depends on them.
"""
