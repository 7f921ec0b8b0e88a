"""Safety for untrusted artifacts: paths kept inside the root, file contents sniffed, digests."""
