"""Tables as files people open elsewhere: CSV and Parquet bytes (API downloads, `qkatlas stats`)."""

from __future__ import annotations

import io

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

FORMATS = {"csv": "text/csv; charset=utf-8", "parquet": "application/vnd.apache.parquet"}


def table_bytes(table: pa.Table, fmt: str) -> bytes:
    """`table` as a CSV file (a header row; nulls as empty cells) or a Parquet file."""
    sink = io.BytesIO()
    if fmt == "csv":
        pacsv.write_csv(table, sink)
    else:
        pq.write_table(table, sink)
    return sink.getvalue()
