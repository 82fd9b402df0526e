"""The bottom layer: plumbing with no knowledge of models or tasks.

``atomic`` (files written whole, inside their target), ``threads`` (CPU thread counts), ``cpu`` (the
CPU's kind, and speed defaults keyed on it), ``heap`` (large CPU tensors reuse the heap's pages),
``sharding`` (rows shared out over ``torchrun`` ranks).
"""
