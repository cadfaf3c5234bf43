"""Load Kaggle "Digit Recognizer" CSV files (``train.csv`` / ``test.csv``).

Uses pandas + numpy only.  Everything that is wrong with a user's file is
reported as a :class:`DataError` whose message says *what* is wrong and
*where* (row number / column name or number), in words a student can act on.
No pandas, numpy, csv, zlib or Unicode exception is allowed to escape.

Format
------
``train.csv``: header ``label,pixel0,pixel1,...,pixel783`` then one row per
image.  ``test.csv``: the same without the ``label`` column.  Pixels are whole
numbers 0-255, labels whole numbers 0-9.

Decisions
---------
* **Sources**: a path (``str`` / ``os.PathLike``), ``bytes``/``bytearray``/
  ``memoryview``, or a binary file-like object with ``.read()`` (e.g.
  ``io.BytesIO`` or Streamlit's ``UploadedFile``).  A file-like object is
  rewound with ``seek(0)`` first when it is seekable, so an upload that was
  already read once still works.  A text-mode file object (``read()`` returns
  ``str``) is accepted and re-encoded as UTF-8.  Any other type is a
  programming error and raises ``TypeError`` (not ``DataError``).
* **Size**: at most ``max_bytes`` bytes are read (``max_bytes + 1`` to detect
  an overflow); a larger file is refused with its size and the limit.
* **gzip** (magic bytes ``1f 8b``) is accepted and decompressed with the same
  bound (at most ``max_bytes + 1`` output bytes are ever produced);
  concatenated gzip members are supported; a corrupt or truncated stream is a
  ``DataError``.  Other containers (ZIP/xlsx, xls, PNG, JPEG, GIF, PDF, bzip2,
  xz, zstd) are recognised by their magic bytes and refused with a message
  naming what they look like.  Kaggle's download is a ZIP archive: the message
  says to extract ``train.csv`` first.
* **Text**: the file must be UTF-8 (ASCII is fine).  A UTF-8 BOM is removed
  (note).  UTF-16 (BOM ``ff fe`` / ``fe ff``), NUL bytes or invalid UTF-8 mean
  "not a text CSV file".  Line endings ``\\n`` and ``\\r\\n`` are accepted as
  they are; lone ``\\r`` (old Mac) line endings are converted (note).
* **Blank lines** (only spaces/tabs) are skipped anywhere, like pandas does.
  Row numbers in messages count *data rows* (the header is not a row; blank
  lines are not counted), starting at 1.  Column numbers count from 1 at the
  left edge of the file, so in ``train.csv`` ``pixel4`` is column 6.
* **Delimiter** is chosen from the header line: ``,`` if it has one;
  otherwise ``;`` and then tab are accepted (note).  With ``;`` or tab as the
  delimiter, a comma in the data is taken as a decimal comma (``0,5``; note).
* **Header** is validated from the raw first non-blank line with the
  ``csv`` module (pandas would rename duplicates).  Names are compared after
  stripping surrounding whitespace.  Checks, in order: a line of numbers means
  the header is missing; duplicated names (which name, which columns); the
  label column must be first and is matched *case-insensitively* (``Label``
  is accepted with a note; the pixel names are matched exactly); a first
  column with another name (``digit``, ``class``, ``y``, ``target``...)
  followed by the pixel columns is refused, naming Kaggle's ``label``; an
  unnamed first column before ``label`` is reported as a saved row index;
  ``require_labels`` is applied; then the pixel columns must be exactly
  ``pixel0 ... pixel783`` in order (count and first misnamed column).
* **Rows**: every data row must have as many fields as the header (counted on
  the raw text, so a short row is reported as short, not as missing values).
  The first ragged row is reported; problems in cells of earlier rows are
  reported first.
* **Cells** (the first offending cell in reading order is reported): missing
  (empty, whitespace, ``nan``/``NA``/... as pandas reads them), not a number,
  pixel outside 0-255, pixel not a whole number, label not a whole number
  0-9.  Whole-number floats such as ``12.0`` are fine (for labels too).
* **Fractions**: if *all* pixels lie in [0, 1] and at least one is not a whole
  number, the pixels are taken as intensities in [0, 1], multiplied by 255 and
  rounded to the nearest integer (note).  A fraction in a file that also has
  pixels above 1 is an error naming both cells.
* **Memory**: the file is parsed with pandas' C engine in chunks of
  ``CHUNK_ROWS`` rows with per-column type inference (never ``dtype=object``
  for the whole file); each chunk is checked and written straight into a
  preallocated uint8 array, so no float64 copy of the whole file is made.
  Peak memory is roughly the file size plus the uint8 result plus one chunk.
"""

from __future__ import annotations

import codecs
import csv
import io
import os
import re
import warnings
import zlib
from dataclasses import dataclass

import numpy as np

__all__ = ["DataError", "CsvDigits", "MAX_CSV_BYTES", "load_csv"]

N_PIXELS = 784
PIXEL_NAMES = tuple(f"pixel{i}" for i in range(N_PIXELS))
MAX_CSV_BYTES = 200 * 1024 * 1024  # hard bound on (decompressed) bytes accepted
CHUNK_ROWS = 2000  # rows per pandas chunk (~40 MB of parser memory for Kaggle rows)
_READ_BLOCK = 8 * 1024 * 1024  # block size for reading file-like objects
MAX_HEADER_CHARS = 1_000_000  # a real header is ~7,000 characters

# Prefix of the safety-net message for errors this module did not foresee.
UNEXPECTED_PREFIX = "The file could not be read (unexpected problem"

_GZIP_MAGIC = b"\x1f\x8b"
_SIGNATURES = (
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

_BLANK_LINES = re.compile(rb"(?:[ \t]*\r?\n)*(?:[ \t]*\Z)?")
_BLANK_LINES_TAB = re.compile(rb"(?:[ ]*\r?\n)*(?:[ ]*\Z)?")  # tab is the delimiter
_ALL_WHITESPACE = re.compile(rb"\s*\Z")
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?\Z")
_PIXEL_LIKE = re.compile(r"pixel\d+\Z", re.IGNORECASE)
_DELIM_NAMES = {",": "comma", ";": "semicolon", "\t": "tab"}


class DataError(ValueError):
    """A file the user supplied cannot be used; the message says what and where."""


@dataclass(frozen=True)
class CsvDigits:
    X: np.ndarray  # (n, 784) uint8, C-contiguous
    y: np.ndarray | None  # (n,) uint8 labels 0-9, or None when the file has no label column
    notes: tuple[str, ...]  # human-readable notes about what was accepted/converted


# --------------------------------------------------------------------------- helpers


def _fmt_size(n: int) -> str:
    if n < 10 * 1024:
        return f"{n:,} bytes"
    if n < 1024 * 1024:
        return f"{n / 1024:.1f}".rstrip("0").rstrip(".") + " KB"
    return f"{n / (1024 * 1024):.1f}".rstrip("0").rstrip(".") + " MB"


def _fmt_num(v: float) -> str:
    v = float(v)
    if np.isnan(v):
        return "nan"
    if np.isinf(v):
        return "inf" if v > 0 else "-inf"
    if v == int(v) and abs(v) < 1e15:
        return str(int(v))
    return f"{v:.10g}"


def _fmt_text(s: object, limit: int = 40) -> str:
    s = str(s)
    if len(s) > limit:
        s = s[:limit] + "…"
    return repr(s)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _colname(j: int, has_label: bool) -> str:
    if has_label:
        return "label" if j == 0 else f"pixel{j - 1}"
    return f"pixel{j}"


def _too_big(size: int | None, max_bytes: int, what: str = "The file") -> DataError:
    if size is None:
        return DataError(f"{what} is larger than the limit of {_fmt_size(max_bytes)}.")
    return DataError(
        f"{what} is {_fmt_size(size)}, which is more than the limit of {_fmt_size(max_bytes)}."
    )


# --------------------------------------------------------------------------- reading


def _read_source(source, max_bytes: int) -> bytes:
    """Return at most max_bytes bytes of the source, or raise DataError."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        if len(data) > max_bytes:
            raise _too_big(len(data), max_bytes)
        return data

    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        if isinstance(path, bytes):
            path = os.fsdecode(path)
        try:
            size = os.path.getsize(path)
            if size > max_bytes:
                raise _too_big(size, max_bytes)
            with open(path, "rb") as fh:
                # read(n) allocates n bytes up front, so ask only for what is there (+1)
                data = fh.read(min(size, max_bytes) + 1)
                if len(data) > size and len(data) <= max_bytes:  # file grew meanwhile
                    data += fh.read(max_bytes + 1 - len(data))
        except FileNotFoundError:
            raise DataError(f"File not found: {path}") from None
        except IsADirectoryError:
            raise DataError(f"{path} is a folder, not a file.") from None
        except PermissionError:
            raise DataError(f"No permission to read {path}.") from None
        except (OSError, ValueError) as exc:  # ValueError: e.g. NUL in the path
            raise DataError(f"Could not read {path}: {exc}") from None
        if len(data) > max_bytes:  # the file grew while we looked at it
            raise _too_big(None, max_bytes)
        return data

    if hasattr(source, "read"):
        try:
            if getattr(source, "seekable", lambda: False)():
                source.seek(0)
        except (OSError, ValueError):
            pass
        try:
            data = _read_bounded(source, max_bytes + 1)
        except (OSError, ValueError) as exc:
            raise DataError(f"Could not read the file: {exc}") from None
        if data is None:
            data = b""
        if isinstance(data, str):
            data = data.encode("utf-8", errors="surrogateescape")
        elif not isinstance(data, bytes):
            try:
                data = bytes(data)
            except TypeError:
                raise TypeError("read() of the file object must return bytes") from None
        if len(data) > max_bytes:
            size = getattr(source, "size", None)
            if not isinstance(size, int):
                size = None
                try:
                    if source.seekable():
                        size = source.seek(0, io.SEEK_END)
                except (AttributeError, OSError, ValueError):
                    size = None
            raise _too_big(size if size and size > max_bytes else None, max_bytes)
        return data

    raise TypeError(
        "source must be a path (str or pathlib.Path), bytes, or a binary file-like object, "
        f"not {type(source).__name__}"
    )


def _read_bounded(fh, limit: int):
    """Read at most `limit` bytes (or str) from a file-like object without allocating
    `limit` bytes up front (read(n) does that for real files)."""
    if isinstance(fh, io.BytesIO):
        return fh.read(limit)
    parts = []
    total = 0
    while total < limit:
        part = fh.read(min(_READ_BLOCK, limit - total))
        if not part:
            break
        parts.append(part)
        total += len(part)
    if not parts:
        return b""
    if len(parts) == 1:
        return parts[0]
    return ("" if isinstance(parts[0], str) else b"").join(parts)


def _gunzip(data: bytes, max_bytes: int) -> bytes:
    """Decompress (possibly multi-member) gzip data, producing at most max_bytes+1 bytes."""
    parts: list[bytes] = []
    total = 0
    rest = data
    while True:
        d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            out = d.decompress(rest, max_bytes + 1 - total)
        except zlib.error as exc:
            raise DataError(
                f"The file starts like a gzip-compressed file but is corrupt ({exc}). "
                "Decompress it yourself or upload the plain CSV file."
            ) from None
        total += len(out)
        parts.append(out)
        if total > max_bytes:
            raise _too_big(None, max_bytes, "Decompressed, the file")
        if not d.eof:
            raise DataError(
                "The file starts like a gzip-compressed file but is truncated or corrupt "
                "(the compressed data ends too early). Upload the complete file or the plain CSV."
            )
        rest = d.unused_data
        if not rest.strip(b"\x00"):  # trailing zero padding is allowed (as the gzip module does)
            break
        if not rest.startswith(_GZIP_MAGIC):
            raise DataError(
                "The file is gzip-compressed but has unexpected data after the compressed "
                "content; it is corrupt. Upload the plain CSV file instead."
            )
    return b"".join(parts)


def _check_text(data: bytes, start: int) -> None:
    """Raise DataError unless data[start:] is plausible UTF-8 text."""
    nul = data.find(b"\x00", start)
    if nul >= 0:
        head = data[start:start + 4096]
        even, odd = head[:len(head) & ~1:2], head[1:len(head) & ~1:2]   # UTF-16 ASCII: every other byte NUL
        if len(head) >= 4 and any(not a.strip(b"\x00") and b"\x00" not in b for a, b in ((even, odd), (odd, even))):
            raise DataError("This is not a UTF-8 text CSV file: it is saved as UTF-16 text (without a byte "
                            "order mark). Save it again as 'CSV UTF-8'.")
        raise DataError(
            "This is not a text CSV file: it contains binary data "
            f"(a NUL byte at byte {nul + 1:,})."
        )
    if data.isascii():
        return
    dec = codecs.getincrementaldecoder("utf-8")()
    view = memoryview(data)
    block = 1 << 20
    pos = start
    try:
        while pos < len(data):
            end = min(pos + block, len(data))
            dec.decode(view[pos:end], final=end >= len(data))
            pos = end
        dec.decode(b"", final=True)
    except UnicodeDecodeError as exc:
        bad = pos + max(exc.start, 0)
        raise DataError(
            "This is not a text CSV file: it is not valid UTF-8 text "
            f"(the first bad byte is near byte {bad + 1:,}). If it is a CSV saved in another "
            "encoding, save it again as 'CSV UTF-8'."
        ) from None


# --------------------------------------------------------------------------- header


def _parse_header(header: str, delim: str) -> list[str]:
    try:
        rows = list(csv.reader([header], delimiter=delim))
    except csv.Error as exc:
        raise DataError(f"The header line (the first line) could not be read: {exc}.") from None
    fields = rows[0] if rows else []
    return [f.strip() for f in fields]


def _validate_header(names: list[str], header: str, delim: str,
                     require_labels: bool | None, notes: list[str]) -> bool:
    """Check the column names; return True when the first column is the label column."""
    expected_line = "'label,pixel0,pixel1,…,pixel783' (train.csv) or 'pixel0,…,pixel783' (test.csv)"
    nonempty = [n for n in names if n]
    if nonempty and all(_NUMBER.match(n) for n in nonempty):
        raise DataError(
            "The first line contains numbers, not column names: the header line is missing. "
            f"The first line must be the header {expected_line}."
        )

    if len(names) == 1 and delim in header:
        raise DataError(
            "The header line (the first line) could not be split into columns: it seems to "
            "have a stray quote character (\") that makes it one single value."
        )
    if len(names) == 1 and len(names[0]) > 20:
        raise DataError(
            "The header line (the first line) has no commas, semicolons or tabs, so it is a "
            f"single column named {_fmt_text(names[0])}. It must be {expected_line}."
        )

    # Duplicated names (pandas would silently rename them to 'x.1').
    seen: dict[str, list[int]] = {}
    for i, n in enumerate(names):
        if n:
            seen.setdefault(n, []).append(i + 1)
    for n, cols in seen.items():
        if len(cols) > 1:
            where = ", ".join(str(c) for c in cols[:5]) + (", …" if len(cols) > 5 else "")
            raise DataError(
                f"The column name {n!r} appears {len(cols)} times in the header "
                f"(columns {where}); each column name must appear once."
            )

    first = names[0]
    has_label = first.lower() == "label"
    if has_label:
        if first != "label":
            notes.append(f"the label column is named {first!r}; accepted as 'label'")
    else:
        lower = [n.lower() for n in names]
        if "label" in lower:
            k = lower.index("label")
            if k == 1 and first in ("", "Unnamed: 0", "index"):
                raise DataError(
                    f"Column 1 is {'unnamed' if not first else 'named ' + repr(first)} and "
                    "column 2 is 'label': the first column looks like a saved row index "
                    "(pandas' to_csv without index=False). Delete the first column."
                )
            raise DataError(
                f"The label column must be the first column, but {names[k]!r} is column {k + 1}."
            )
        if not _PIXEL_LIKE.match(first) and (
            len(names) == N_PIXELS + 1 or (len(names) > 1 and names[1] == "pixel0")
        ):
            what = "has no name" if not first else f"is named {first!r}"
            raise DataError(
                f"The first column {what}; Kaggle's train.csv calls the label column 'label'. "
                "Rename it to 'label' (or delete it if it is not the digit labels)."
            )

    if require_labels is True and not has_label:
        raise DataError(
            "This file has no label column (its first column is "
            f"{_fmt_text(first) if first else 'unnamed'}, like Kaggle's test.csv), but a file "
            "with labels is needed here: its first column must be 'label', like train.csv."
        )
    if require_labels is False and has_label:
        raise DataError(
            "This file has a label column (column 1, 'label', like Kaggle's train.csv), but a "
            "file without labels is expected here, like test.csv (pixel0 … pixel783 only)."
        )

    off = 1 if has_label else 0
    pix = names[off:]
    mismatch = next(
        (i for i, (got, want) in enumerate(zip(pix, PIXEL_NAMES)) if got != want), None
    )

    def describe(i: int) -> str:
        got = pix[i]
        return "has no name" if not got else f"is named {got!r}"

    if len(pix) != N_PIXELS:
        msg = (
            f"Expected {N_PIXELS} pixel columns (pixel0 … pixel783) but found {len(pix)}."
        )
        if mismatch is not None:
            msg += (
                f" The first difference is column {mismatch + off + 1}, which "
                f"{describe(mismatch)} where {PIXEL_NAMES[mismatch]!r} was expected."
            )
        elif len(pix) > N_PIXELS:
            extra = N_PIXELS + off
            msg += f" The extra columns start at column {extra + 1} ({names[extra]!r})."
            if names[-1] == "":
                msg += f" (Does the header line end with an extra {_DELIM_NAMES[delim]}?)"
        else:
            msg += f" The columns from {PIXEL_NAMES[len(pix)]!r} on are missing."
        raise DataError(msg)
    if mismatch is not None:
        raise DataError(
            f"Column {mismatch + off + 1} {describe(mismatch)}; "
            f"expected {PIXEL_NAMES[mismatch]!r}."
        )
    return has_label


# --------------------------------------------------------------------------- row structure


_UNCLOSED_QUOTE = "\x00unclosed quote"  # marker (NUL cannot occur in accepted text)


def _line_at(data: bytes, pos: int, limit: int = 200) -> str:
    end = data.find(b"\n", pos)
    if end < 0:
        end = len(data)
    return data[pos:min(end, pos + limit)].decode("utf-8", errors="replace")


def _ragged_error(row: int, nfields: int, ncols: int, delim: str, line: str | None,
                  trailing_delim: bool = False) -> DataError:
    msg = f"Row {row} has {_plural(nfields, 'field')}; the header has {ncols}."
    if line == _UNCLOSED_QUOTE:
        return DataError(
            msg + " A quote character (\") in this row seems never to be closed, so the "
            "following lines were read as part of it."
        )
    if nfields < ncols:
        msg += " The row is too short (values are missing at its end)."
        if nfields == 1 and line is not None:
            other = [d for d in (",", ";", "\t") if d != delim and d in line]
            if other:
                msg += (
                    f" It seems to be separated by {_DELIM_NAMES[other[0]]}s while the header "
                    f"uses {_DELIM_NAMES[delim]}s."
                )
    else:
        msg += " The row has too many values"
        msg += (
            f" (does it end with an extra {_DELIM_NAMES[delim]}?)."
            if trailing_delim and nfields == ncols + 1 else "."
        )
    return DataError(msg)


def _scan_plain(data: bytes, pos: int, delim: str, ncols: int):
    """Count fields per data row of a file without quote characters.

    Returns (rows, None) when every row has ncols fields, else
    (rows, (row, nfields, line_text)) for the first row that does not.
    """
    blank = _BLANK_LINES_TAB if delim == "\t" else _BLANK_LINES
    d = delim.encode()
    n = 0
    size = len(data)
    find, count, match = data.find, data.count, blank.match
    while True:
        pos = match(data, pos).end()
        if pos >= size:
            return n, None
        end = find(b"\n", pos)
        if end < 0:
            end = size
        nf = count(d, pos, end) + 1
        n += 1
        if nf != ncols:
            trailing = data[pos:end].rstrip(b"\r \t").endswith(d)
            return n, (n, nf, _line_at(data, pos), trailing)
        pos = end + 1


def _scan_quoted(data: bytes, pos: int, delim: str, ncols: int):
    """Like _scan_plain, with the csv module (handles quoted fields)."""
    ws = " " if delim == "\t" else " \t"
    text = data[pos:].decode("utf-8")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delim)
    n = 0
    try:
        for row in reader:
            if not row or (len(row) == 1 and row[0] and not row[0].strip(ws)):
                continue
            n += 1
            if len(row) != ncols:
                line = delim.join(row)[:200]
                if any("\n" in f or "\r" in f for f in row):
                    line = _UNCLOSED_QUOTE
                return n, (n, len(row), line, row[-1].strip() == "")
    except csv.Error as exc:
        raise DataError(f"Row {n + 1} could not be read as CSV: {exc}.") from None
    return n, None


# --------------------------------------------------------------------------- cells


class _State:
    """What has been seen so far, for the fractions-in-[0,1] decision."""

    def __init__(self) -> None:
        self.first_frac: tuple[int, str, float] | None = None  # row, column, value
        self.first_big: tuple[int, str, float] | None = None  # a pixel value > 1
        self.int_ranges: list[tuple[int, int]] = []  # rows stored unscaled


def _first_true(mask: np.ndarray) -> tuple[int, int]:
    flat = int(np.argmax(mask.ravel()))
    return divmod(flat, mask.shape[1])


def _chunk_to_float(df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray | None, dict]:
    """float64 values of one chunk; non-numbers become NaN and are flagged in `nonnum`."""
    import pandas as pd
    rows, ncols = df.shape
    kinds = [dt.kind for dt in df.dtypes]
    if all(k in "iuf" for k in kinds):
        return df.to_numpy(dtype=np.float64), None, {}
    vals = np.empty((rows, ncols), dtype=np.float64)
    nonnum = np.zeros((rows, ncols), dtype=bool)
    texts: dict[int, pd.Series] = {}
    for j in range(ncols):
        col = df.iloc[:, j]
        if kinds[j] in "iuf":
            vals[:, j] = col.to_numpy(dtype=np.float64)
            continue
        texts[j] = col
        if kinds[j] == "b":
            vals[:, j] = np.nan
            nonnum[:, j] = col.notna().to_numpy()
            continue
        num = pd.to_numeric(col, errors="coerce")
        v = np.asarray(num.to_numpy(dtype=np.float64, na_value=np.nan), dtype=np.float64)
        missing = col.isna().to_numpy() | col.astype("str").str.strip().eq("").to_numpy()
        vals[:, j] = v
        nonnum[:, j] = np.isnan(v) & ~missing
    return vals, nonnum, texts


def _process_chunk(df: pd.DataFrame, row0: int, has_label: bool, X: np.ndarray,
                   y: np.ndarray | None, state: _State) -> None:
    """Validate one chunk and write it into X[row0:...] (and y)."""
    rows = len(df)
    off = 1 if has_label else 0
    a, b = row0, row0 + rows

    if all(dt == np.int64 for dt in df.dtypes):  # fast path: the normal Kaggle file
        arr = df.to_numpy()
        pix = arr[:, off:]
        pmin, pmax = int(pix.min()), int(pix.max())
        ok = pmin >= 0 and pmax <= 255
        if has_label:
            lab = arr[:, 0]
            ok = ok and int(lab.min()) >= 0 and int(lab.max()) <= 9
        if ok:
            X[a:b] = pix
            if has_label:
                y[a:b] = arr[:, 0]
            if pmax > 1 and state.first_big is None:
                r, c = _first_true(pix > 1)
                state.first_big = (row0 + r + 1, f"pixel{c}", float(pix[r, c]))
            state.int_ranges.append((a, b))
            _check_conflict(state)
            return
        del arr, pix

    vals, nonnum, texts = _chunk_to_float(df)
    with np.errstate(invalid="ignore"):
        prob = np.isnan(vals)
        if has_label:
            lab = vals[:, 0]
            good = (lab >= 0) & (lab <= 9) & (lab == np.floor(lab))
            prob[:, 0] |= ~good
        p = vals[:, off:]
        frac = p != np.floor(p)  # NaN gives True here, but NaN is already a problem
        prob[:, off:] |= (p < 0) | (p > 255) | (frac & (p > 1))

    if prob.any():
        r, j = _first_true(prob)
        where = f"Row {row0 + r + 1}, column {_colname(j, has_label)}"
        v = vals[r, j]
        is_label = has_label and j == 0
        if nonnum is not None and nonnum[r, j]:
            text = texts[j].iloc[r]
            what = "is not a digit 0–9" if is_label else "is not a number"
            raise DataError(f"{where}: {_fmt_text(text)} {what}.")
        if np.isnan(v):
            raise DataError(f"{where}: the value is missing.")
        if is_label:
            raise DataError(f"{where}: {_fmt_num(v)} is not a digit 0–9.")
        if v < 0 or v > 255:
            raise DataError(f"{where}: {_fmt_num(v)} is outside 0–255.")
        raise DataError(
            f"{where}: {_fmt_num(v)} is not a whole number (pixels must be whole numbers "
            "0–255, or all fractions between 0 and 1)."
        )

    has_frac = bool(frac.any())
    if has_frac and state.first_frac is None:
        r, c = _first_true(frac)
        state.first_frac = (row0 + r + 1, f"pixel{c}", float(p[r, c]))
    big = p > 1
    if state.first_big is None and big.any():
        r, c = _first_true(big)
        state.first_big = (row0 + r + 1, f"pixel{c}", float(p[r, c]))
    _check_conflict(state)

    if has_frac:
        X[a:b] = np.rint(p * 255.0)
    else:
        X[a:b] = p
        state.int_ranges.append((a, b))
    if has_label:
        y[a:b] = vals[:, 0]


def _check_conflict(state: _State) -> None:
    if state.first_frac is not None and state.first_big is not None:
        fr, fc, fv = state.first_frac
        br, bc, bv = state.first_big
        raise DataError(
            f"Row {fr}, column {fc}: {_fmt_num(fv)} is not a whole number, but other pixels "
            f"are above 1 (e.g. row {br}, column {bc}: {_fmt_num(bv)}). Pixels must be all "
            "whole numbers 0–255, or all fractions between 0 and 1."
        )


def _read_cells(data: bytes, body: int, delim: str, decimal: str, ncols: int, nrows: int,
                has_label: bool) -> tuple[np.ndarray, np.ndarray | None, _State]:
    import pandas as pd   # here, not at the top: the training process (core/lab/run/worker.py) reads no CSV
    X = np.empty((nrows, N_PIXELS), dtype=np.uint8)
    y = np.empty(nrows, dtype=np.uint8) if has_label else None
    state = _State()
    if nrows == 0:
        return X, y, state
    bio = io.BytesIO(data)
    bio.seek(body)
    row0 = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            reader = pd.read_csv(
                bio, sep=delim, header=None, names=list(range(ncols)), index_col=False,
                engine="c", chunksize=CHUNK_ROWS, nrows=nrows, decimal=decimal,
                skip_blank_lines=True, encoding="utf-8", quotechar='"',
            )
            with reader:
                for df in reader:
                    if df.shape[1] != ncols or row0 + len(df) > nrows:
                        raise DataError(_inconsistent(row0 + 1))
                    _process_chunk(df, row0, has_label, X, y, state)
                    row0 += len(df)
        except DataError:
            raise
        except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError, csv.Error) as exc:
            text = str(exc).strip().replace("Error tokenizing data. ", "")
            if "EOF inside string" in text:
                raise DataError(
                    f"A quote character (\") after row {row0} is never closed; remove the "
                    "stray quote."
                    if row0 else
                    "A quote character (\") in the data is never closed; remove the stray quote."
                ) from None
            where = f"after row {row0}" if row0 else "of the data rows"
            raise DataError(f"Part {where} could not be read as CSV ({text}).") from None
    if row0 != nrows:
        raise DataError(_inconsistent(row0 + 1))
    return X, y, state


def _inconsistent(row: int) -> str:
    return (
        f"The rows of the file could not be worked out consistently near row {row} "
        "(look for stray quote characters or unusual line breaks)."
    )


# --------------------------------------------------------------------------- main


def load_csv(source, *, require_labels: bool | None = None,
             max_bytes: int = MAX_CSV_BYTES) -> CsvDigits:
    """Load a Kaggle Digit Recognizer CSV (train.csv or test.csv).

    source: a filesystem path (str or pathlib.Path), bytes, or a binary file-like object (e.g.
    io.BytesIO, or Streamlit's UploadedFile which is BytesIO-like and has a .name).
    require_labels=True: a file without a label column is an error; False: a label column is
    an error; None: either is fine.  Raises DataError for anything wrong with the file.
    """
    if max_bytes < 1:
        raise ValueError("max_bytes must be positive")
    import pandas as pd
    notes: list[str] = []
    data = _read_source(source, max_bytes)
    if data.startswith(_GZIP_MAGIC):
        data = _gunzip(data, max_bytes)
        notes.append("gzip-compressed; decompressed")
    try:
        return _parse(data, require_labels, notes)
    except DataError:
        raise
    except (ValueError, TypeError, IndexError, KeyError, OverflowError, ArithmeticError,
            csv.Error, pd.errors.ParserError, zlib.error) as exc:  # safety net: never leak
        raise DataError(f"{UNEXPECTED_PREFIX}: {type(exc).__name__}: {exc}).") from exc


def _parse(data: bytes, require_labels: bool | None, notes: list[str]) -> CsvDigits:
    for magic, what in _SIGNATURES:
        if data.startswith(magic):
            raise DataError(f"This is not a text CSV file: it looks like {what}.")
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise DataError(
            "This is not a UTF-8 text CSV file: it is saved as UTF-16 text. "
            "Save it again as 'CSV UTF-8'."
        )
    start = 0
    if data.startswith(codecs.BOM_UTF8):
        start = len(codecs.BOM_UTF8)
    if _ALL_WHITESPACE.match(data, start):
        raise DataError("The file is empty.")
    if start:
        notes.append("UTF-8 BOM removed")
    _check_text(data, start)

    n_cr = data.count(b"\r", start)
    if n_cr and data.count(b"\r\n", start) != n_cr:
        data = data[start:].replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        start = 0
        notes.append("carriage-return (old Mac) line endings converted")

    # ---- header line
    hstart = _BLANK_LINES.match(data, start).end()
    hend = data.find(b"\n", hstart)
    if hend < 0:
        hend = len(data)
    if hend - hstart > MAX_HEADER_CHARS:
        raise DataError(
            f"The first line is {hend - hstart:,} characters long; it should be the header "
            "'label,pixel0,…,pixel783' (about 7,000 characters). This is not a Kaggle digits CSV."
        )
    header = data[hstart:hend].decode("utf-8").rstrip("\r\n")
    if "," in header:
        delim = ","
    elif ";" in header:
        delim = ";"
        notes.append("semicolon-separated")
    elif "\t" in header:
        delim = "\t"
        notes.append("tab-separated")
    else:
        delim = ","
    names = _parse_header(header, delim)
    if not names or names == [""]:
        raise DataError("The file is empty.")  # unreachable: blank lines are skipped
    has_label = _validate_header(names, header, delim, require_labels, notes)
    ncols = len(names)

    body = min(hend + 1, len(data))
    decimal = "."
    if delim != "," and data.find(b",", body) >= 0:
        decimal = ","
        notes.append("decimal commas (0,5) read as decimal points")

    # ---- row structure (field counts), on the raw text
    if data.find(b'"', body) >= 0:
        nrows, bad = _scan_quoted(data, body, delim, ncols)
    else:
        nrows, bad = _scan_plain(data, body, delim, ncols)
    if bad is None and nrows == 0:
        raise DataError("The file has a header but no data rows.")
    good_rows = nrows if bad is None else bad[0] - 1

    # ---- cells (rows before the first ragged row are checked first)
    X, y, state = _read_cells(data, body, delim, decimal, ncols, good_rows, has_label)
    if bad is not None:
        raise _ragged_error(bad[0], bad[1], ncols, delim, bad[2], bad[3])

    if state.first_frac is not None:
        for a, b in state.int_ranges:  # only 0/1 there, since nothing is above 1
            X[a:b] *= 255
        notes.append("pixels were fractions in [0, 1]; scaled to 0–255")
    return CsvDigits(X=X, y=y, notes=tuple(notes))
