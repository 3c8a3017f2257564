"""Text START and REPORT lines read column-wise, straight from the Arrow text buffer of the messages.

The bulk path of :func:`swlab.analysis.logs.parse_log_events`: a million REPORT lines are read with
numpy and Arrow kernels over the message column's text buffer, a piece of :data:`_PIECE_ROWS` lines at
a time, into numeric columns (only the request ids are copied). Lines not in AWS's layout fall back to
the one-line grammar of :mod:`swlab.analysis.log_lines`, which stays the reference for what a line means.

Public API: :func:`text_reports`, :func:`text_starts`.
"""

from __future__ import annotations

import functools
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from swlab.analysis.log_lines import parse_report_line

_FIXED_FIELDS = (  # the first five tab-separated REPORT fields, always in this order: prefix, column, unit, type
    ("REPORT RequestId: ", "request_id", 0, None),
    ("Duration: ", "duration_ms", 3, pa.float64()),
    ("Billed Duration: ", "billed_duration_ms", 3, pa.int64()),
    ("Memory Size: ", "memory_size_mb", 3, pa.int64()),
    ("Max Memory Used: ", "max_memory_used_mb", 3, pa.int64()),
)
_OPTIONAL_FIELDS = (  # fields that may follow, in any order (of a repeated one, the last wins)
    ("Init Duration: ", "init_duration_ms", 3, pa.float64()),
    ("Status: ", "status", 0, None),
    ("Error Type: ", "error_type", 0, None),
)
_PIECE_ROWS = 1 << 16  # lines read at once: a piece's scratch stays a few MB whatever the input's size
_WHITESPACE = np.zeros(256, bool)
_WHITESPACE[[9, 10, 11, 12, 13, 28, 29, 30, 31, 32]] = True  # the ASCII that utf8_rtrim_whitespace trims


def text_reports(df: pd.DataFrame, msgs: pa.ChunkedArray, mask: pa.ChunkedArray) -> pd.DataFrame:
    """Tab-separated REPORT lines, column-wise, one piece of the message column at a time.

    In a piece the tabs are found once (numpy over the Arrow text buffer); each field is then checked
    for its prefix and read as an Arrow view into that same buffer (new offsets, no copy of the text),
    which Arrow casts to numbers. Only the request ids are copied. Lines not in AWS's layout (fewer than
    five tab-separated fields, a field without its prefix, non-ASCII text) and the lines of a piece
    with a value that does not convert go through the regex one by one.
    """
    # Each piece's values go straight into columns sized for every REPORT line (no second copy to join);
    # the lines read are kept per piece, and only when not all of the piece's (no list of a million rows).
    count = int(pc.sum(mask).as_py() or 0)
    cols: dict[str, np.ndarray] = {
        name: np.empty(count, typ.to_pandas_dtype()) for _, name, _, typ in _FIXED_FIELDS[1:]
    }
    cols["init_duration_ms"] = np.full(count, np.nan)
    few: dict[str, tuple[list, list]] = {"status": ([], []), "error_type": ([], [])}  # fields on few lines
    ids: list[pa.Array] = []
    good: list[tuple[int, int, np.ndarray | None]] = []  # (first row, rows, the rows read or None for all)
    bad: list[np.ndarray] = []
    n = base = 0
    for piece in _pieces(msgs):
        sel = np.flatnonzero(mask.slice(base, len(piece)).to_numpy(zero_copy_only=False))
        if len(sel):
            part, read, left = _report_piece(piece, sel)
            for name, values in part.items():
                if name == "request_id":
                    ids.append(values)
                elif isinstance(values, tuple):  # (lines, values) of a field on few lines
                    if values[1] is not None:
                        few[name][0].append(values[0] + n)
                        few[name][1].append(values[1])
                else:
                    cols[name][n : n + len(read)] = values
            good.append((base, len(piece), None if len(read) == len(piece) else read))
            bad.append(left + base)
            n += len(read)
        base += len(piece)
    out = _report_frame(df, good, ids, {k: v[:n] for k, v in cols.items()}, few) if n else pd.DataFrame()
    left_rows = np.concatenate(bad) if bad else np.zeros(0, np.int64)
    if len(left_rows) == 0:
        return out
    return pd.concat([f for f in (out, _regex_reports(df, msgs, left_rows)) if len(f)], ignore_index=True)


def _pieces(msgs: pa.ChunkedArray | pa.Array) -> Iterable[pa.Array]:
    for chunk in msgs.chunks if isinstance(msgs, pa.ChunkedArray) else [msgs]:
        for lo in range(0, len(chunk), _PIECE_ROWS):
            yield chunk.slice(lo, _PIECE_ROWS)


def _report_frame(df: pd.DataFrame, good: list, ids: list[pa.Array], cols: dict, few: dict) -> pd.DataFrame:
    """The read lines' columns; function and log stream are the input's own when every line was read.

    ``few`` holds, per field on few lines, the lines that have it and its values: status becomes a
    categorical column ("success" where absent), error_type a ``str`` column (missing where absent).
    log_format is a categorical of one value.
    """
    n = len(cols["duration_ms"])
    every = n == len(df)  # the lines read are unique rows: then every row, in order (no row list needed)
    rows = np.zeros(0, np.int64)
    if not every:
        rows = np.concatenate([base + (np.arange(size) if read is None else read) for base, size, read in good])
    lines, values = few["error_type"]
    if lines:
        error_type = np.full(n, None, object)
        for at, v in zip(lines, values):
            error_type[at] = v
    return pd.DataFrame(
        {
            "function": (df["function"] if every else _take(df["function"], rows)).array,
            "log_stream": (df["log_stream"] if every else _take(df["log_stream"], rows)).array,
            "end_time": df["timestamp"] if every else df["timestamp"].to_numpy()[rows],  # the input's own
            "request_id": pd.array(pa.chunked_array(ids, pa.large_string()), dtype="str"),
            **cols,
            "status": _categorical(n, "success", *few["status"]),
            "error_type": pd.array(error_type, dtype="str") if lines else _missing_strings(n),
            "log_format": _categorical(n, "text"),
        },
        copy=False,
    )


def _missing_strings(n: int, rows: int = 1 << 16) -> pd.api.extensions.ExtensionArray:
    """A ``str`` column of ``n`` missing values whose Arrow chunks are one all-null block repeated.

    Arrow arrays are immutable, so the chunks can share their buffers: half a MB whatever ``n`` (a column
    of ``None`` was 8 bytes a row, a null ``large_string`` array its 8-byte offsets a row); pandas writes
    to it by building a new array, as to any ``str`` column.
    """
    block = pa.nulls(min(n, rows), pa.large_string())
    chunks = [block] * (n // rows) + ([block.slice(0, n % rows)] if n % rows else [])
    return pd.array(pa.chunked_array(chunks, pa.large_string()), dtype="str")


def _categorical(
    n: int, default: str, lines: Sequence[np.ndarray] = (), values: Sequence[np.ndarray] = ()
) -> pd.Categorical:
    """``n`` values ``default`` except ``values[k]`` at ``lines[k]``, as a categorical (1 byte a row, not 8 or 12).

    Categories sorted, whatever the lines' order: two parses of the same lines give equal columns.
    """
    cats = sorted({default, *(v for part in values for v in part)})
    codes = np.full(n, cats.index(default), np.int8 if len(cats) < 128 else np.int32)
    for at, part in zip(lines, values):
        codes[at] = pd.Index(cats).get_indexer(part)
    return pd.Categorical.from_codes(codes, pd.Index(cats, dtype="str"))


def _report_piece(piece: pa.Array, rows: np.ndarray) -> tuple[dict, np.ndarray, np.ndarray]:
    """The REPORT lines ``rows`` of one piece → (their columns, the rows read, the rows left to the regex)."""
    offsets, text = piece.buffers()[1:3]
    off = np.frombuffer(offsets, np.int64)[piece.offset : piece.offset + len(piece) + 1]
    data = np.frombuffer(text, np.uint8)
    lo, hi = int(off[0]), int(off[-1])
    tabs = _tabs(data, lo, hi)
    s, e = off[rows], off[rows + 1]
    first = np.searchsorted(tabs[:-1], s)
    ntabs = np.searchsorted(tabs[:-1], e) - first
    ok = ntabs >= len(_FIXED_FIELDS) - 1
    # Non-ASCII text: trimming (Unicode whitespace) and cutting units (code points) by Arrow's kernels.
    trim = _Trim(text, data, unicode=hi > lo and int(data[lo:hi].max()) >= 0x80)
    words = np.ndarray((max(len(data) - 7, 0),), "<u8", text, 0, (1,))  # the 8 bytes from each position
    first, ntabs, s, e = first[ok], ntabs[ok], s[ok], e[ok]
    fields, valid = [], np.ones(len(s), bool)
    for k, (prefix, *_) in enumerate(_FIXED_FIELDS):
        start = s if k == 0 else tabs[first + k - 1] + 1
        end = trim.rtrim(start, np.where(ntabs > k, tabs[first + k], e))
        # the line starts with the first prefix: only trailing whitespace can have been cut into it
        valid &= (end - start >= len(prefix)) if k == 0 else _starts_with(words, start, end, prefix)
        fields.append((start, end))
    read = rows[ok][valid]
    left = np.setdiff1d(rows, read, assume_unique=True)
    try:
        cols = {
            name: _values(trim, start[valid], end[valid], prefix, unit, typ)
            for (start, end), (prefix, name, unit, typ) in zip(fields, _FIXED_FIELDS)
        }
        cols.update(_optional_fields(trim, words, tabs, first[valid], ntabs[valid], e[valid]))
    except pa.ArrowInvalid:  # a value that does not convert: the regex judges every line of the piece
        return {}, rows[:0], rows
    return cols, read, left


def _tabs(data: np.ndarray, lo: int, hi: int, block: int = 1 << 20) -> np.ndarray:
    """Where the tabs of ``data[lo:hi]`` are, then ``hi`` (a sentinel after the last tab); found a block at
    a time (a bool per byte of the whole piece was the piece's biggest scratch: ~9 MB in 64k lines)."""
    parts = [np.flatnonzero(data[a : min(a + block, hi)] == 9) + a for a in range(lo, hi, block)]
    return np.concatenate([*parts, np.array([hi], np.int64)])


def _optional_fields(trim: _Trim, words: np.ndarray, tabs, first, ntabs, e) -> dict:
    """The fields after the fifth (Init Duration, Status, Error Type), wherever they are.

    Init Duration as a column; Status and Error Type, on few lines, as (lines, values).
    """
    n = len(first)
    extra = ntabs - (len(_FIXED_FIELDS) - 1)  # fields after the fifth, the empty one after a trailing tab too
    line = np.repeat(np.arange(n), extra)
    k = len(_FIXED_FIELDS) + np.arange(len(line)) - np.repeat(np.cumsum(extra) - extra, extra)
    start = tabs[first[line] + k - 1] + 1
    end = trim.rtrim(start, np.where(k < ntabs[line], tabs[first[line] + k], e[line]))
    cols: dict[str, Any] = {"init_duration_ms": np.full(n, np.nan)}
    for prefix, name, unit, typ in _OPTIONAL_FIELDS:
        hit = _starts_with(words, start, end, prefix)
        vals = _values(trim, start[hit], end[hit], prefix, unit, typ) if hit.any() else None
        if typ is not None:
            if vals is not None:
                cols[name][line[hit]] = vals
        else:
            cols[name] = (line[hit], vals.to_numpy(zero_copy_only=False) if vals is not None else None)
    return cols


class _Trim:
    """Field ends in one piece's text: trailing whitespace trimmed, units cut (bytes when it is all ASCII)."""

    def __init__(self, text: pa.Buffer, data: np.ndarray, unicode: bool):
        self.text, self.data, self.unicode = text, data, unicode

    def rtrim(self, start: np.ndarray, end: np.ndarray) -> np.ndarray:
        if self.unicode:
            return start + _even(pc.binary_length(pc.utf8_rtrim_whitespace(_view(self.text, start, end))))
        end = end.copy()
        live = np.flatnonzero(end > start)
        while len(live):
            live = live[_WHITESPACE[self.data[end[live] - 1]]]
            end[live] -= 1
            live = live[end[live] > start[live]]
        return end

    def cut(self, begin: np.ndarray, end: np.ndarray, unit: int) -> np.ndarray:
        """The end of each value once its last ``unit`` characters are cut (never before ``begin``)."""
        if self.unicode and unit:
            return begin + _even(pc.binary_length(pc.utf8_slice_codeunits(_view(self.text, begin, end), 0, -unit)))
        return np.maximum(end - unit, begin)


def _even(lengths: pa.Array) -> np.ndarray:
    """The values at even slots of an int64 array made from a :func:`_view` (the odd slots are null)."""
    return np.frombuffer(lengths.buffers()[1], np.int64, len(lengths), lengths.offset * 8)[::2]


def _starts_with(words: np.ndarray, start: np.ndarray, end: np.ndarray, prefix: str) -> np.ndarray:
    """Which fields start with ``prefix`` (8 to 24 ASCII characters), compared 8 bytes at a time."""
    raw = prefix.encode()
    hit = end - start >= len(raw)
    at = np.where(hit, start, 0)
    for d in sorted({0, min(8, len(raw) - 8), len(raw) - 8}):  # overlapping words cover the prefix
        hit &= words[at + d] == int.from_bytes(raw[d : d + 8], "little")
    return hit


def _values(trim: _Trim, start: np.ndarray, end: np.ndarray, prefix: str, unit: int, typ) -> Any:
    """Each field without its prefix and its last ``unit`` characters: numbers (``typ``) or strings."""
    begin = start + len(prefix)
    view = _view(trim.text, begin, trim.cut(begin, end, unit))
    if typ is None:
        return pc.drop_null(view, memory_pool=_kept_pool())
    got = pc.cast(view, typ)  # null slots (the text between the values) are not parsed
    return np.frombuffer(got.buffers()[1], typ.to_pandas_dtype(), len(got), got.offset * 8)[::2].copy()


@functools.cache
def _kept_pool() -> pa.MemoryPool | None:
    """Where the strings a parse keeps (the request ids) are allocated: jemalloc, if the default is mimalloc.

    Arrow's default pool (mimalloc) kept about 14 MB a million lines of the pieces' freed scratch around
    the ids it held (``scripts/bench-analysis``: ``parse_1m_peak_mb``); with the ids in a pool of their
    own, the scratch is given back. None (the default pool) where pyarrow is built without jemalloc or
    another default was chosen (``ARROW_DEFAULT_MEMORY_POOL``).
    """
    if pa.default_memory_pool().backend_name != "mimalloc":
        return None
    try:
        return pa.jemalloc_memory_pool()
    except NotImplementedError:
        return None


def _view(text: pa.Buffer, begin: np.ndarray, end: np.ndarray) -> pa.Array:
    """Strings ``text[begin[i]:end[i]]`` without copying the text: value, gap, value, gap, … (gaps null)."""
    n = len(begin)
    offsets = np.empty(2 * n + 1, np.int64)
    offsets[0:-1:2], offsets[1::2] = begin, end
    offsets[-1] = end[-1] if n else 0
    valid = np.full((2 * n + 7) // 8, 0x55, np.uint8)  # bits 0, 2, 4, …: the values
    return pa.LargeStringArray.from_buffers(2 * n, pa.py_buffer(offsets), text, pa.py_buffer(valid), n)


def _take(col: pd.Series, sel: np.ndarray) -> pd.Series:
    """``col.iloc[sel]`` for ascending ``sel``; a ``str`` column chunk by chunk (Arrow's take would first
    join the chunks: a transient copy of the whole column)."""
    if col.dtype != "str":
        return col.iloc[sel].reset_index(drop=True)
    whole = pa.array(col, type=pa.large_string())
    chunks = whole.chunks if isinstance(whole, pa.ChunkedArray) else [whole]
    bounds = np.cumsum([0] + [len(c) for c in chunks])
    cut = np.searchsorted(sel, bounds)
    parts = [c.take(pa.array(sel[cut[i] : cut[i + 1]] - bounds[i])) for i, c in enumerate(chunks)]
    return pd.Series(pd.array(pa.chunked_array(parts, pa.large_string()), dtype=col.dtype), copy=False)


def _regex_reports(df: pd.DataFrame, msgs: pa.Array, sel: np.ndarray) -> pd.DataFrame:
    """REPORT lines that are not tab-separated (e.g. copied with spaces): one regex each."""
    rows = []
    for i in sel:
        rep = parse_report_line(msgs[int(i)].as_py())
        if rep:
            rows.append(
                {
                    **rep,
                    "function": df["function"].iat[i],
                    "log_stream": df["log_stream"].iat[i],
                    "end_time": df["timestamp"].iat[i],
                    "log_format": "text",
                }
            )
    return pd.DataFrame(rows).drop(columns=["cold"], errors="ignore")


def text_starts(df: pd.DataFrame, msgs: pa.Array, mask: pa.Array) -> pd.DataFrame:
    sel = np.flatnonzero(mask.to_numpy(zero_copy_only=False))
    words = pc.split_pattern(msgs.filter(mask) if len(sel) else msgs[:0], " ", max_splits=3)
    rid = pc.utf8_trim_whitespace(pc.list_element(words, 2))
    return pd.DataFrame(
        {
            "function": _take(df["function"], sel),
            "request_id": pd.array(rid, dtype="str"),
            "start_time": df["timestamp"].to_numpy()[sel],
        }
    )
