"""Mage's FileIO: data frames loaded from and exported to files (CSV, JSON; Parquet where pyarrow
is installed), the format inferred from the extension unless given. Needs pandas, as Mage's does."""

import os

_FORMATS = {".csv": "csv", ".json": "json", ".parquet": "parquet", ".pq": "parquet"}


def _pandas():
    try:
        import pandas
    except ImportError as error:
        raise ImportError("mage_ai.io.file.FileIO needs pandas installed for the block's python interpreter") from error
    return pandas


def _format_of(filepath, format):
    if format is not None:
        name = getattr(format, "value", format)
        name = str(name).lower()
    else:
        name = _FORMATS.get(os.path.splitext(str(filepath))[1].lower())
    if name not in ("csv", "json", "parquet"):
        raise ValueError(f"FileIO: {filepath}: kiln reads and writes csv, json and parquet files (got format {name!r})")
    if name == "parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError as error:
            raise ImportError("FileIO: parquet files need pyarrow installed for the block's python interpreter") from error
    return name


class FileIO:
    """Loads and exports data frames on the local file system."""

    def __init__(self, verbose=False, **kwargs):
        self.verbose = verbose

    def load(self, filepath=None, format=None, file_directories=None, **kwargs):
        """A DataFrame read from `filepath`, or the rows of every file under `file_directories`."""
        pd = _pandas()
        if file_directories:
            paths = []
            for directory in file_directories:
                for folder, _, names in os.walk(directory):
                    paths += [os.path.join(folder, n) for n in sorted(names)]
            frames = [self._read(pd, p, format, kwargs) for p in sorted(paths)]
            return pd.concat(frames, axis=0, ignore_index=True)
        return self._read(pd, filepath, format, kwargs)

    def _read(self, pd, filepath, format, kwargs):
        name = _format_of(filepath, format)
        if self.verbose:
            print(f"Loading data frame from '{filepath}'")
        return {"csv": pd.read_csv, "json": pd.read_json, "parquet": pd.read_parquet}[name](filepath, **kwargs)

    def export(self, df, filepath, format=None, **kwargs):
        """Writes `df` to `filepath` (parent folders are not created, as in Mage)."""
        name = _format_of(filepath, format)
        if self.verbose:
            print(f"Exporting data frame to '{filepath}'")
        if name == "csv":
            df.to_csv(filepath, **kwargs)
        elif name == "json":
            df.to_json(filepath, **kwargs)
        else:
            kwargs.setdefault("coerce_timestamps", "ms")
            kwargs.setdefault("allow_truncated_timestamps", True)
            df.to_parquet(filepath, **kwargs)

    def exists(self, filepath):
        return os.path.exists(filepath)
