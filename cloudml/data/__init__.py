"""The data layer: HDF5 schema and checks, synthetic generator, splits, Dataset, DataModule.

Knows nothing of models or losses. Importing this package is cheap (no torch): the
torch-based `dataset` and `datamodule` modules are imported where they are used.
"""
