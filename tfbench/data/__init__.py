"""Data sources and the input pipeline — without a UI; TensorFlow is imported lazily.

`describe(spec)` tells what a source holds (no download where the source knows it);
`load(spec, seed)` gives the batched datasets a run trains on.
"""

from tfbench.data.info import DataBundle, DataInfo

__all__ = ["DataBundle", "DataInfo"]
