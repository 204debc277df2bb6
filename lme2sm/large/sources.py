"""Where the rows live: a Dask DataFrame, a polars LazyFrame, or Parquet files.

Every source offers the same two things to the passes over the data: a few rows
(:meth:`Source.head`, for column names and types) and :meth:`Source.map_reduce`, which
applies a function to each partition as a pandas DataFrame and adds the small results
up. Where that happens depends on the source:

* Dask: on the Dask scheduler that is active (a ``dask.distributed`` cluster's workers,
  or local threads); partial sums are combined on the workers, in groups, and only the
  combined results come back to the calling process.
* polars: ``LazyFrame.collect_batches`` (the streaming engine), one batch at a time.
* Parquet: ``pyarrow.parquet.ParquetFile.iter_batches``, one batch at a time, file by
  file. (Not ``pyarrow.dataset``'s ``to_batches``, which reads ahead without limit when
  the consumer is slower than the disk.)
"""

from __future__ import annotations

import glob
import importlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pandas as pd

from lme2sm.errors import DataError
from lme2sm.large._extras import require
from lme2sm.large.progress import Progress

__all__ = ["Source", "DaskSource", "PolarsSource", "ParquetSource", "as_source"]

BATCH_ROWS = 1_000_000
"""Rows per batch read from Parquet or polars (a few hundred MB at most)."""
FAN_IN = 8
"""Partial results combined per task on Dask workers."""


def _numeric(arrow_type) -> bool:
    """An integer or floating Arrow type (a column stored as int64 in one Parquet file and
    double in another is read as numbers either way)."""
    import pyarrow.types as pat

    return pat.is_integer(arrow_type) or pat.is_floating(arrow_type)


def _combine(results: list, combine: Callable) -> Any:
    out = None
    for r in results:
        if r is None:
            continue
        out = r if out is None else combine(out, r)
    return out


class Source:
    """Rows in partitions; see the module docstring."""

    def __getstate__(self) -> dict:
        # the modules a source keeps (pyarrow.parquet, polars, dask) do not pickle:
        # their names do, and they are imported again when the source is loaded
        state = {k: v for k, v in self.__dict__.items() if not isinstance(v, ModuleType)}
        state["_module_names"] = {
            k: v.__name__ for k, v in self.__dict__.items() if isinstance(v, ModuleType)
        }
        return state

    def __setstate__(self, state: dict) -> None:
        state = dict(state)
        modules = state.pop("_module_names", {})
        self.__dict__.update(state)
        for attr, module in modules.items():
            setattr(self, attr, importlib.import_module(module))

    kind = "source"

    def head(self, n: int = 20) -> pd.DataFrame:
        raise NotImplementedError

    def map_reduce(
        self,
        fn: Callable[[pd.DataFrame], Any],
        combine: Callable[[Any, Any], Any],
        columns: list[str],
        progress: Progress,
    ) -> Any:
        raise NotImplementedError

    def describe(self) -> str:
        return self.kind


class _BatchSource(Source):
    """Sources read one batch at a time in the calling process."""

    def batches(self, columns: list[str]) -> Iterator[pd.DataFrame]:
        raise NotImplementedError

    def n_batches(self) -> int | None:
        return None

    def numbered_batches(self, columns: list[str]) -> Iterator[pd.DataFrame]:
        """:meth:`batches` indexed by row position in the source (0, 1, ... overall)."""
        start = 0
        for df in self.batches(columns):
            df.index = pd.RangeIndex(start, start + len(df))
            start += len(df)
            yield df

    def map_reduce(self, fn, combine, columns, progress):
        progress.total = self.n_batches()
        out = None
        for df in self.numbered_batches(columns):
            r = fn(df)
            progress.update(1, len(df))
            if r is not None:
                out = r if out is None else combine(out, r)
        progress.close()
        return out


class ParquetSource(_BatchSource):
    """One Parquet file, a directory of them, or a glob, streamed batch by batch."""

    kind = "parquet"

    def __init__(self, path: str | os.PathLike, batch_rows: int = BATCH_ROWS):
        self.pq = require("pyarrow.parquet", "parquet", "reading Parquet files")
        self.path = str(path)
        self.batch_rows = batch_rows
        p = Path(self.path)
        if p.is_dir():
            files = sorted(str(f) for f in p.rglob("*.parquet"))
        elif any(ch in self.path for ch in "*?["):
            files = sorted(glob.glob(self.path, recursive=True))
        else:
            files = [self.path] if p.exists() else []
        if not files:
            raise DataError(f"no Parquet files found at {self.path!r}")
        self.files = files

    def _file(self, path: str):
        """pyarrow's ParquetFile, or a DataError saying the file is not one."""
        pa = require("pyarrow", "parquet", "reading Parquet files")
        try:
            return self.pq.ParquetFile(path)
        except (pa.ArrowException, OSError) as exc:
            raise DataError(f"cannot read {path!r} as a Parquet file: {exc}") from None

    def head(self, n: int = 20) -> pd.DataFrame:
        f = self._file(self.files[0])
        for batch in f.iter_batches(batch_size=n):
            return batch.to_pandas()
        return f.schema_arrow.empty_table().to_pandas()

    def n_batches(self) -> int:
        total = 0
        for path in self.files:
            rows = self._file(path).metadata.num_rows
            total += max(1, -(-rows // self.batch_rows))
        return total

    def _check_schema(self, f, path: str, columns: list[str]) -> None:
        """The model's columns in file ``path``, of the first file's types (the formula
        was checked against the first file)."""
        first = self._file(self.files[0]).schema_arrow
        schema = f.schema_arrow
        missing = [c for c in columns if c not in schema.names]
        if missing:
            raise DataError(
                f"the Parquet file {path!r} has no column {', '.join(map(repr, missing))}, "
                f"which {self.files[0]!r} has: every file must hold the model's columns"
            )
        for c in columns:
            a, b = first.field(c).type, schema.field(c).type
            if a != b and not (_numeric(a) and _numeric(b)):
                raise DataError(
                    f"the column {c!r} is {b} in the Parquet file {path!r} but {a} in "
                    f"{self.files[0]!r}: every file must store it as the same type"
                )

    def batches(self, columns):
        for path in self.files:
            f = self._file(path)
            self._check_schema(f, path, columns)
            for batch in f.iter_batches(batch_size=self.batch_rows, columns=columns):
                yield batch.to_pandas()

    def describe(self) -> str:
        return f"Parquet ({len(self.files)} file{'s' if len(self.files) > 1 else ''})"


class PolarsSource(_BatchSource):
    """A polars LazyFrame, collected in batches by polars' streaming engine."""

    kind = "polars"

    def __init__(self, frame, batch_rows: int = BATCH_ROWS):
        self.pl = require("polars", "polars", "a polars LazyFrame")
        require("pyarrow", "polars", "converting polars batches to pandas")
        self.frame = frame
        self.batch_rows = batch_rows

    def head(self, n: int = 20) -> pd.DataFrame:
        return self.frame.head(n).collect().to_pandas()

    def batches(self, columns):
        # by position: polars reads a column named "*" or "^...$" as a pattern
        names = list(self.frame.collect_schema().names())
        lazy = self.frame.select(self.pl.nth([names.index(c) for c in columns]))
        if hasattr(lazy, "collect_batches"):
            batches = lazy.collect_batches(chunk_size=self.batch_rows)
        else:  # polars before collect_batches: one streaming collect, sliced
            try:
                whole = lazy.collect(engine="streaming")
            except TypeError:  # polars before engine=
                whole = lazy.collect(streaming=True)
            batches = whole.iter_slices(self.batch_rows)
        for batch in batches:
            yield batch.to_pandas()

    def describe(self) -> str:
        return "polars LazyFrame"


class DaskSource(Source):
    """A Dask DataFrame; the passes run as tasks on its scheduler."""

    kind = "dask"

    def __init__(self, frame):
        self.dask = require("dask", "dask", "a Dask DataFrame")
        self.frame = frame

    def head(self, n: int = 20) -> pd.DataFrame:
        import warnings

        with warnings.catch_warnings():  # a first partition shorter than n is fine
            warnings.simplefilter("ignore")
            return self.frame.head(n, npartitions=1)

    def _client(self):
        try:
            from distributed import default_client

            return default_client()
        except (ImportError, ValueError):
            return None

    def map_reduce(self, fn, combine, columns, progress):
        delayed = self.dask.delayed
        parts = self.frame[columns].to_delayed()
        mapped = [delayed(fn, pure=False)(p) for p in parts]
        # combine on the workers in groups of FAN_IN: only the sums come back
        groups = [
            delayed(_combine, pure=False)(mapped[i : i + FAN_IN], combine)
            for i in range(0, len(mapped), FAN_IN)
        ]
        progress.total = len(parts)
        client = self._client()
        out = None
        if client is not None:
            from distributed import as_completed

            sizes = [len(mapped[i : i + FAN_IN]) for i in range(0, len(mapped), FAN_IN)]
            futures = client.compute(groups)
            index = {f.key: k for k, f in enumerate(futures)}
            for fut in as_completed(futures):
                r = fut.result()
                progress.update(sizes[index[fut.key]])
                if r is not None:
                    out = r if out is None else combine(out, r)
                fut.release()
        else:
            results = self.dask.compute(*groups)
            progress.update(len(parts))
            out = _combine(list(results), combine)
        progress.close()
        return out

    def describe(self) -> str:
        n = self.frame.npartitions
        client = self._client()
        where = f"Dask cluster {client.scheduler.address}" if client else "Dask (local)"
        return f"{where}, {n} partitions"


def as_source(data, batch_rows: int = BATCH_ROWS) -> Source:
    """The :class:`Source` for ``data`` (a Dask DataFrame, polars LazyFrame or Parquet
    path/directory/glob); a DataError for anything else."""
    if isinstance(data, Source):
        return data
    if isinstance(data, str | os.PathLike):
        return ParquetSource(data, batch_rows)
    module = type(data).__module__.split(".")[0]
    if module in ("dask", "dask_expr"):
        return DaskSource(data)
    if module == "polars":
        pl = require("polars", "polars", "a polars frame")
        if isinstance(data, pl.DataFrame):
            data = data.lazy()
        return PolarsSource(data, batch_rows)
    if isinstance(data, pd.DataFrame):
        raise DataError("a pandas DataFrame is fitted in memory: use lme2sm.lmer(formula, data)")
    raise DataError(
        "data must be a pandas DataFrame, a Dask DataFrame, a polars LazyFrame or the "
        f"path of Parquet files, not {type(data).__name__}"
    )
