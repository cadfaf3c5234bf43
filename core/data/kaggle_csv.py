"""Load Kaggle "Digit Recognizer" CSV files (train.csv, test.csv) as uint8 arrays.

train.csv is a header ``label,pixel0,…,pixel783`` then one image per row; test.csv has no
label column. pandas' C parser reads the rows CHUNK_ROWS at a time (bounded memory); each chunk
is checked with a few vectorised comparisons and written into the result. Only when something
is wrong does a second, slower pass walk the raw rows, to say exactly where: rows count data
rows from 1 (neither the header nor blank lines count), columns are named (label, pixel0, …) or
numbered from 1 at the left edge of the file.

Accepted, with a note: gzip (the decompressed size is bounded while it is read), a UTF-8 BOM,
old-Mac CR line ends, ';' or tab separators (then ',' is a decimal comma), a label column named
'Label', and pixels that are all fractions in [0, 1] (scaled to 0–255). Anything else is a
DataError in words a student can act on; no pandas, csv, zlib or Unicode error escapes.
"""
from __future__ import annotations

import codecs
import csv
import gzip
import io
import os
import re
import zlib
from collections import Counter
from dataclasses import dataclass

import numpy as np

from core.engine.network import N_PIXELS

__all__ = ["DataError", "CsvDigits", "MAX_CSV_BYTES", "load_csv"]

PIXEL_NAMES = tuple(f"pixel{i}" for i in range(N_PIXELS))
MAX_CSV_BYTES = 200 * 1024 * 1024  # bound on the bytes accepted, decompressed ones too
CHUNK_ROWS = 2000  # rows per pandas chunk: ~12 MB of int64 for Kaggle's 785 columns
MAX_HEADER_CHARS = 1_000_000  # a real header is ~7,000 characters
UNEXPECTED_PREFIX = "The file could not be read (unexpected problem"  # the safety net's message

_SIGNATURES = (  # what a file that is not text looks like, by its first bytes
    (b"PK\x03\x04", "a ZIP archive (or an Excel .xlsx workbook). Kaggle's download is a ZIP: "
                    "extract train.csv / test.csv from it and upload the CSV file"),
    (b"PK\x05\x06", "an empty ZIP archive"),
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"%PDF-", "a PDF document"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an old-style Excel .xls (or other Office) file; "
                                         "save it as CSV first"),
    (b"BZh91AY&SY", "a bzip2-compressed file (only gzip compression is supported)"),
    (b"\xfd7zXZ\x00", "an xz-compressed file (only gzip compression is supported)"),
    (b"\x28\xb5\x2f\xfd", "a zstd-compressed file (only gzip compression is supported)"),
)
_UTF16 = "This is not a UTF-8 text CSV file: it is saved as UTF-16 text. Save it again as 'CSV UTF-8'."
_BLANK_LINES = re.compile(rb"(?:[ \t]*\r?\n)*")
_ALL_WHITESPACE = re.compile(rb"\s*\Z")
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?\Z")
_PIXEL_LIKE = re.compile(r"pixel\d+\Z", re.IGNORECASE)
_DELIM_NAMES = {",": "comma", ";": "semicolon", "\t": "tab"}
_EXPECTED = "'label,pixel0,pixel1,…,pixel783' (train.csv) or 'pixel0,…,pixel783' (test.csv)"


class DataError(ValueError):
    """A file the user supplied cannot be used; the message says what and where."""


@dataclass(frozen=True)
class CsvDigits:
    X: np.ndarray  # (n, 784) uint8, C-contiguous
    y: np.ndarray | None  # (n,) uint8 labels 0-9, or None when the file has no label column
    notes: tuple[str, ...]  # what was accepted or converted, for the user


def load_csv(source, *, require_labels: bool | None = None,
             max_bytes: int = MAX_CSV_BYTES) -> CsvDigits:
    """Load a Kaggle Digit Recognizer CSV (train.csv or test.csv, plain or gzip).

    source: a path, bytes, or a binary or text file object (e.g. Streamlit's UploadedFile; it is
    rewound first). require_labels: True needs a label column, False refuses one, None takes
    either. Raises DataError for anything wrong with the file, TypeError for another source type.
    """
    if max_bytes < 1:
        raise ValueError("max_bytes must be positive")
    notes: list[str] = []
    data = _read_source(source, max_bytes)
    if data.startswith(b"\x1f\x8b"):
        data = _gunzip(data, max_bytes)
        notes.append("gzip-compressed; decompressed")
    try:
        return _parse(data, require_labels, notes)
    except DataError:
        raise
    except (ValueError, TypeError, IndexError, KeyError, OverflowError, ArithmeticError,
            csv.Error) as exc:  # the safety net (pandas' errors are ValueErrors)
        raise DataError(f"{UNEXPECTED_PREFIX}: {type(exc).__name__}: {exc}).") from exc


# --------------------------------------------------------------------------- bytes


def _read_source(source, max_bytes: int) -> bytes:
    size = None  # of the whole file, for the message when it is too big
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        size = len(data)
    elif isinstance(source, (str, os.PathLike)):
        path = os.fsdecode(source)
        try:
            with open(path, "rb") as fh:
                size = os.fstat(fh.fileno()).st_size  # a file that is too big is not read
                data = _read_bounded(fh, max_bytes + 1) if size <= max_bytes else None
        except FileNotFoundError:
            raise DataError(f"File not found: {path}") from None
        except IsADirectoryError:
            raise DataError(f"{path} is a folder, not a file.") from None
        except (OSError, ValueError) as exc:  # ValueError: e.g. a NUL in the path
            raise DataError(f"Could not read {path}: {exc}") from None
    elif hasattr(source, "read"):
        try:
            if getattr(source, "seekable", lambda: False)():
                source.seek(0)  # an upload that was read once already
            data = _read_bounded(source, max_bytes + 1)
        except (OSError, ValueError) as exc:
            raise DataError(f"Could not read the file: {exc}") from None
        if not isinstance(data, bytes):
            data = data.encode("utf-8", "surrogateescape") if isinstance(data, str) else bytes(data)
    else:
        raise TypeError("source must be a path (str or pathlib.Path), bytes, or a file object, "
                        f"not {type(source).__name__}")
    if data is None or len(data) > max_bytes:
        raise _too_big(_size_of(source) if size is None else size, max_bytes)
    return data


def _read_bounded(fh, limit: int):
    """Read to the end, but at most `limit` bytes (or characters): a stream may return less."""
    parts, total = [], 0
    while total < limit:
        part = fh.read(limit - total)
        if not part:
            break
        parts.append(part)
        total += len(part)
    return parts[0] if len(parts) == 1 else (parts[0][:0] if parts else b"").join(parts)


def _size_of(fh) -> int | None:
    size = getattr(fh, "size", None)  # Streamlit's UploadedFile has it
    if isinstance(size, int):
        return size
    try:
        return fh.seek(0, io.SEEK_END) if fh.seekable() else None
    except (AttributeError, OSError, ValueError):
        return None


def _gunzip(data: bytes, max_bytes: int) -> bytes:
    try:  # gzip reads member after member, and never more than asked for: a bomb stops at the limit
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as gz:
            out = _read_bounded(gz, max_bytes + 1)
    except (OSError, EOFError, zlib.error) as exc:  # gzip.BadGzipFile is an OSError
        raise DataError(f"The file starts like a gzip-compressed file but is corrupt or truncated "
                        f"({exc}). Decompress it yourself or upload the plain CSV file.") from None
    if len(out) > max_bytes:
        raise _too_big(None, max_bytes, "Decompressed, the file")
    return out


def _too_big(size: int | None, max_bytes: int, what: str = "The file") -> DataError:
    if size is None or size <= max_bytes:
        return DataError(f"{what} is larger than the limit of {_fmt_size(max_bytes)}.")
    return DataError(f"{what} is {_fmt_size(size)}, which is more than the limit of "
                     f"{_fmt_size(max_bytes)}.")


def _text_start(data: bytes, notes: list[str]) -> int:
    """Where the UTF-8 text starts (after a BOM); DataError when the bytes are not text."""
    for magic, what in _SIGNATURES:
        if data.startswith(magic):
            raise DataError(f"This is not a text CSV file: it looks like {what}.")
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise DataError(_UTF16)
    start = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
    if _ALL_WHITESPACE.match(data, start):
        raise DataError("The file is empty.")
    if start:
        notes.append("UTF-8 BOM removed")
    nul = data.find(b"\x00", start)
    if nul >= 0:
        head = data[start:start + 4000]
        for zeros, chars in ((head[1::2], head[0::2]), (head[0::2], head[1::2])):
            if zeros.count(0) == len(zeros) >= 2 and 0 not in chars and chars.isascii():
                raise DataError(_UTF16)  # without a BOM: ASCII text with a NUL after or before each
        raise DataError(f"This is not a text CSV file: it contains binary data (a NUL byte at byte "
                        f"{nul + 1:,}).")
    if not data.isascii():  # check the UTF-8 a megabyte at a time, not in one decoded copy
        decoder, block = codecs.getincrementaldecoder("utf-8")(), 1 << 20
        for pos in range(start, len(data), block):
            try:
                decoder.decode(data[pos:pos + block], final=pos + block >= len(data))
            except UnicodeDecodeError as exc:
                raise DataError(
                    "This is not a text CSV file: it is not valid UTF-8 text (the first bad byte "
                    f"is near byte {pos + max(exc.start, 0) + 1:,}). If it is a CSV saved in another "
                    "encoding, save it again as 'CSV UTF-8'.") from None
    return start


# --------------------------------------------------------------------------- header


def _parse(data: bytes, require_labels: bool | None, notes: list[str]) -> CsvDigits:
    start = _text_start(data, notes)
    n_cr = data.count(b"\r", start)
    if n_cr and data.count(b"\r\n", start) != n_cr:  # so that a row is a line, for the second pass
        data, start = data[start:].replace(b"\r\n", b"\n").replace(b"\r", b"\n"), 0
        notes.append("carriage-return (old Mac) line endings converted")
    head = _BLANK_LINES.match(data, start).end()
    end = data.find(b"\n", head)
    end = len(data) if end < 0 else end
    if end - head > MAX_HEADER_CHARS:
        raise DataError(f"The first line is {end - head:,} characters long; it should be the header "
                        f"{_EXPECTED}. This is not a Kaggle digits CSV.")
    header = data[head:end].decode("utf-8").rstrip("\r")
    delim = next((d for d in ",;\t" if d in header), ",")
    if delim != ",":
        notes.append(f"{_DELIM_NAMES[delim]}-separated")
    try:  # the csv module, not pandas: pandas would rename a duplicated name
        names = [name.strip() for name in next(csv.reader([header], delimiter=delim))]
    except csv.Error as exc:
        raise DataError(f"The header line (the first line) could not be read: {exc}.") from None
    has_label = _check_header(names, header, delim, require_labels, notes)

    body = min(end + 1, len(data))
    if _ALL_WHITESPACE.match(data, body):
        raise DataError("The file has a header but no data rows.")
    decimal = "."
    if delim != "," and data.find(b",", body) >= 0:
        decimal = ","
        notes.append("decimal commas (0,5) read as decimal points")
    rows = _Rows(data, body, delim, decimal, len(names), has_label)
    ragged = rows.find_ragged(last=1)  # pandas would drop the extra values of row 1, with a warning
    if ragged:
        raise ragged[1]
    X, y = rows.read()
    if rows.first_frac is not None:
        notes.append("pixels were fractions in [0, 1]; scaled to 0–255")
    return CsvDigits(X=X, y=y, notes=tuple(notes))


def _check_header(names: list[str], header: str, delim: str, require_labels: bool | None,
                  notes: list[str]) -> bool:
    """Check the column names; return whether the first column is the label column."""
    if all(_NUMBER.match(n) for n in names if n) and any(names):
        raise DataError("The first line contains numbers, not column names: the header line is "
                        f"missing. The first line must be the header {_EXPECTED}.")
    if len(names) == 1 and delim in header:
        raise DataError("The header line (the first line) could not be split into columns: it seems "
                        "to have a stray quote character (\") that makes it one single value.")
    if len(names) == 1 and len(names[0]) > 20:
        raise DataError("The header line (the first line) has no commas, semicolons or tabs, so it "
                        f"is a single column named {_fmt_text(names[0])}. It must be {_EXPECTED}.")
    twice = next((n for n, count in Counter(filter(None, names)).items() if count > 1), None)
    if twice is not None:
        cols = [i + 1 for i, n in enumerate(names) if n == twice]
        where = ", ".join(map(str, cols[:5])) + (", …" if len(cols) > 5 else "")
        raise DataError(f"The column name {twice!r} appears {len(cols)} times in the header "
                        f"(columns {where}); each column name must appear once.")
    first, lower = names[0], [n.lower() for n in names]
    has_label = lower[0] == "label"
    if has_label:
        if first != "label":
            notes.append(f"the label column is named {first!r}; accepted as 'label'")
    elif "label" in lower:
        k = lower.index("label")
        if k == 1 and first in ("", "Unnamed: 0", "index"):
            raise DataError(f"Column 1 is {'unnamed' if not first else 'named ' + repr(first)} and "
                            "column 2 is 'label': the first column looks like a saved row index "
                            "(pandas' to_csv without index=False). Delete the first column.")
        raise DataError(f"The label column must be the first column, but {names[k]!r} is column "
                        f"{k + 1}.")
    elif not _PIXEL_LIKE.match(first) and (
            len(names) == N_PIXELS + 1 or (len(names) > 1 and names[1] == "pixel0")):
        what = "has no name" if not first else f"is named {first!r}"
        raise DataError(f"The first column {what}; Kaggle's train.csv calls the label column "
                        "'label'. Rename it to 'label' (or delete it if it is not the digit labels).")
    if require_labels is True and not has_label:
        raise DataError("This file has no label column (its first column is "
                        f"{_fmt_text(first) if first else 'unnamed'}, like Kaggle's test.csv), but a "
                        "file with labels is needed here: its first column must be 'label', like "
                        "train.csv.")
    if require_labels is False and has_label:
        raise DataError("This file has a label column (column 1, 'label', like Kaggle's train.csv), "
                        "but a file without labels is expected here, like test.csv (pixel0 … "
                        "pixel783 only).")
    off = int(has_label)
    pix = names[off:]
    diff = next((i for i, (got, want) in enumerate(zip(pix, PIXEL_NAMES)) if got != want), None)
    named = (lambda i: "has no name" if not pix[i] else f"is named {pix[i]!r}")
    if len(pix) != N_PIXELS:
        msg = f"Expected {N_PIXELS} pixel columns (pixel0 … pixel783) but found {len(pix)}."
        if diff is not None:
            msg += (f" The first difference is column {diff + off + 1}, which {named(diff)} where "
                    f"{PIXEL_NAMES[diff]!r} was expected.")
        elif len(pix) > N_PIXELS:
            msg += f" The extra columns start at column {N_PIXELS + off + 1} ({names[N_PIXELS + off]!r})."
            if names[-1] == "":
                msg += f" (Does the header line end with an extra {_DELIM_NAMES[delim]}?)"
        else:
            msg += f" The columns from {PIXEL_NAMES[len(pix)]!r} on are missing."
        raise DataError(msg)
    if diff is not None:
        raise DataError(f"Column {diff + off + 1} {named(diff)}; expected {PIXEL_NAMES[diff]!r}.")
    return has_label


# --------------------------------------------------------------------------- rows


class _Rows:
    """The rows after the header: read by pandas in chunks, and walked one by one with the csv
    module (or line by line) only to say where something is wrong."""

    def __init__(self, data: bytes, body: int, delim: str, decimal: str, ncols: int,
                 has_label: bool) -> None:
        self.data, self.body, self.delim, self.decimal = data, body, delim, decimal
        self.ncols, self.has_label = ncols, has_label
        self.first_frac = self.first_big = None  # (row, column, value): a fraction, a pixel > 1

    def read(self, nrows: int | None = None) -> tuple[np.ndarray, np.ndarray | None]:
        """X and y of all rows (or the first nrows), or DataError naming the first bad one."""
        import pandas as pd  # here, not at the top: the training process reads no CSV, starts fast
        # at most one row per line, and a good row takes ncols - 1 delimiters and its line end
        bound = min(self.data.count(b"\n", self.body) + (not self.data.endswith(b"\n")),
                    (len(self.data) - self.body) // self.ncols + 1)
        self.X, self.y = np.empty((bound, N_PIXELS), np.uint8), np.empty(bound, np.uint8)
        self.whole = []  # (a, b): rows stored as they are, to scale if fractions turn up later
        self.first_frac = self.first_big = None
        source, n = io.BytesIO(self.data), 0
        source.seek(self.body)
        try:
            with pd.read_csv(source, sep=self.delim, decimal=self.decimal, header=None,
                             names=range(self.ncols), index_col=False, engine="c", encoding="utf-8",
                             chunksize=CHUNK_ROWS, nrows=nrows, low_memory=False) as chunks:
                for df in chunks:  # low_memory=False: one block per chunk, so no DtypeWarning
                    n = self._store(df, n)
                    del df  # before pandas parses the next chunk
        except pd.errors.ParserError as exc:  # a row with too many values, or a quote never closed
            ragged = self.find_ragged()
            if ragged is None:
                text = str(exc).strip().replace("Error tokenizing data. C error: ", "")
                if "EOF inside string" in text:  # at the end: it took in whatever followed it
                    last = sum(1 for _ in self._rows())
                    raise DataError(f"A quote character (\") in or after row {last} is never closed; "
                                    "remove the stray quote.") from None
                raise DataError(f"The rows after row {n} could not be read as CSV ({text}).") from None
            if ragged[0] > 1 and nrows is None:
                self.read(nrows=ragged[0] - 1)  # a bad value before the ragged row comes first
            raise ragged[1] from None
        if n == 0:
            raise DataError("The file has a header but no data rows.")
        X, y = self.X, self.y
        if self.first_frac is not None:
            for a, b in self.whole:  # only 0 and 1 there, since no pixel was above 1
                X[a:b] *= 255
        if n < bound:
            X, y = X[:n].copy(), y[:n].copy()
        return X, (y if self.has_label else None)

    def _store(self, df, a: int) -> int:
        """Check the chunk of rows a+1, a+2, … and write it into X and y; return the next row."""
        vals, text = _numbers(df)
        bad = _first_bad(vals, self.has_label)
        if bad is not None:
            r, j = bad
            ragged = self.find_ragged(last=a + r + 1)  # a short row's missing values are its fault
            if ragged:
                raise ragged[1]
            col = "label" if self.has_label and j == 0 else f"pixel{j - self.has_label}"
            shown = df.iat[r, j] if text is not None and text[r, j] else None
            raise DataError(f"Row {a + r + 1}, column {col}: "
                            f"{_cell_problem(vals[r, j], shown, col == 'label')}.")
        b, p = a + len(df), vals[:, int(self.has_label):]
        frac = p != np.floor(p) if p.dtype.kind == "f" else None
        if frac is not None and frac.any():
            self.first_frac = self.first_frac or _first(frac, p, a)
            self.X[a:b] = np.rint(p * 255)
        else:
            self.X[a:b] = p
            self.whole.append((a, b))
        if self.first_big is None and (p > 1).any():
            self.first_big = _first(p > 1, p, a)
        if self.first_frac and self.first_big:
            (fr, fc, fv), (br, bc, bv) = self.first_frac, self.first_big
            raise DataError(f"Row {fr}, column {fc}: {_fmt_num(fv)} is not a whole number, but other "
                            f"pixels are above 1 (e.g. row {br}, column {bc}: {_fmt_num(bv)}). Pixels "
                            "must be all whole numbers 0–255, or all fractions between 0 and 1.")
        if self.has_label:
            self.y[a:b] = vals[:, 0]
        return b

    def find_ragged(self, last: int | None = None) -> tuple[int, DataError] | None:
        """The first row (up to row `last`) that is not ncols fields on one line, and why."""
        n = 0
        try:
            for n, (nfields, line, multiline) in enumerate(self._rows(), 1):
                if nfields != self.ncols or multiline:
                    return n, _ragged_error(n, nfields, self.ncols, self.delim, line, multiline)
                if n == last:
                    return None
        except csv.Error as exc:
            return n + 1, DataError(f"Row {n + 1} could not be read as CSV ({exc}); look for a "
                                    "stray quote character (\").")
        return None

    def _rows(self):
        """(number of fields, text, whether a quoted value spans lines) of each non-blank row."""
        ws = " \r\n" if self.delim == "\t" else " \t\r\n"
        source = io.BytesIO(self.data)
        source.seek(self.body)
        if self.data.find(b'"', self.body) < 0:  # no quotes: a row is a line; count its fields
            delim, blank = self.delim.encode(), ws.encode()
            for line in source:
                if line.strip(blank):
                    yield line.count(delim) + 1, line.decode("utf-8").rstrip("\r\n"), False
        else:
            for row in csv.reader(io.TextIOWrapper(source, "utf-8", newline=""), delimiter=self.delim):
                if len(row) > 1 or (row and row[0].strip(ws)):
                    yield len(row), self.delim.join(row), any("\n" in f or "\r" in f for f in row)


# --------------------------------------------------------------------------- cells


def _numbers(df) -> tuple[np.ndarray, np.ndarray | None]:
    """A chunk's cells as numbers (NaN where missing or text), and where a cell holds text."""
    import pandas as pd
    if all(dt.kind in "iuf" for dt in df.dtypes):  # a normal file: int64 throughout
        return df.to_numpy(), None
    vals, text = np.empty(df.shape), np.zeros(df.shape, bool)
    for j, (_, col) in enumerate(df.items()):
        if col.dtype.kind in "iuf":
            vals[:, j] = col.to_numpy(np.float64)
            continue
        words = col.astype(str)  # a column of True/False stays text, not 1 and 0
        vals[:, j] = pd.to_numeric(words, errors="coerce").to_numpy(np.float64, na_value=np.nan)
        missing = col.isna().to_numpy() | words.str.strip().eq("").to_numpy()
        text[:, j] = np.isnan(vals[:, j]) & ~missing
    return vals, text


def _first_bad(vals: np.ndarray, has_label: bool) -> tuple[int, int] | None:
    """(row, column) in the chunk of the first value that is not a pixel (or label)."""
    off = int(has_label)
    p = vals[:, off:]
    bad = np.zeros(vals.shape, bool)
    with np.errstate(invalid="ignore"):
        bad[:, off:] = (p < 0) | (p > 255)
        if vals.dtype.kind == "f":
            bad |= np.isnan(vals)
            bad[:, off:] |= (p > 1) & (p != np.floor(p))
        if has_label:
            lab = vals[:, 0]
            bad[:, 0] |= (lab < 0) | (lab > 9) | (lab != np.floor(lab))
    if not bad.any():
        return None
    return divmod(int(np.argmax(bad)), bad.shape[1])


def _cell_problem(v: float, text: object, is_label: bool) -> str:
    if text is not None:
        return f"{_fmt_text(text)} is not {'a digit 0–9' if is_label else 'a number'}"
    if np.isnan(v):
        return "the value is missing"
    if is_label:
        return f"{_fmt_num(v)} is not a digit 0–9"
    if v < 0 or v > 255:
        return f"{_fmt_num(v)} is outside 0–255"
    return (f"{_fmt_num(v)} is not a whole number (pixels must be whole numbers 0–255, or all "
            "fractions between 0 and 1)")


def _first(mask: np.ndarray, p: np.ndarray, row0: int) -> tuple[int, str, float]:
    r, c = divmod(int(np.argmax(mask)), mask.shape[1])
    return row0 + r + 1, f"pixel{c}", float(p[r, c])


def _ragged_error(row: int, nfields: int, ncols: int, delim: str, line: str,
                  multiline: bool) -> DataError:
    has = f"Row {row} has {_plural(nfields, 'field')}; the header has {ncols}."
    if multiline:
        return DataError(f"{has if nfields != ncols else f'Row {row}:'} A quote character (\") in "
                         "this row is never closed on its line, so the lines after it were read as "
                         "part of the row.")
    if nfields > ncols:
        extra = line.rstrip(" \t" if delim != "\t" else " ").endswith(delim) and nfields == ncols + 1
        return DataError(f"{has} The row has too many values"
                         + (f" (does it end with an extra {_DELIM_NAMES[delim]}?)." if extra else "."))
    other = [d for d in ",;\t" if d != delim and d in line] if nfields == 1 else []
    return DataError(f"{has} The row is too short (values are missing at its end)." + (
        f" It seems to be separated by {_DELIM_NAMES[other[0]]}s while the header uses "
        f"{_DELIM_NAMES[delim]}s." if other else ""))


# --------------------------------------------------------------------------- wording


def _fmt_size(n: int) -> str:
    if n < 10 * 1024:
        return f"{n:,} bytes"
    unit, scale = ("KB", 1024) if n < 1024 * 1024 else ("MB", 1024 * 1024)
    return f"{n / scale:.1f}".rstrip("0").rstrip(".") + " " + unit


def _fmt_num(v: float) -> str:
    v = float(v)
    if np.isnan(v) or np.isinf(v):
        return str(v)  # nan, inf, -inf
    return str(int(v)) if v == int(v) and abs(v) < 1e15 else f"{v:.10g}"


def _fmt_text(s: object, limit: int = 40) -> str:
    s = str(s)
    return repr(s[:limit] + "…" if len(s) > limit else s)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"
