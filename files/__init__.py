"""File safety: atomic writes, one writer at a time (locks), outputs that never replace an input, the cache
folder."""
