"""Pure domain code: values in, values out. No I/O, no clock (``now`` is always given)."""
