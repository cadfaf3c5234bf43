"""Tests for core.data.kaggle_csv (Kaggle Digit Recognizer CSV loader).

All CSV content is generated here; no real Kaggle file is needed.
"""

from __future__ import annotations

import gzip
import io
import re
import warnings
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.data import kaggle_csv as csv_data
from core.data.kaggle_csv import MAX_CSV_BYTES, CsvDigits, DataError, load_csv

PIXELS = [f"pixel{i}" for i in range(784)]
TRAIN_NAMES = ["label", *PIXELS]
TEST_NAMES = list(PIXELS)


# --------------------------------------------------------------------------- helpers


def make_data(n: int = 3, label: bool = True, seed: int = 0):
    """Random pixels/labels and the matching cell strings (list of rows of str)."""
    rng = np.random.default_rng(seed)
    X = rng.integers(0, 256, size=(n, 784), dtype=np.uint8)
    y = rng.integers(0, 10, size=n, dtype=np.uint8) if label else None
    rows = []
    for i in range(n):
        cells = [str(v) for v in X[i]]
        if label:
            cells.insert(0, str(y[i]))
        rows.append(cells)
    return rows, X, y


def render(names, rows, sep=",", nl="\n", final_newline=True) -> bytes:
    lines = [sep.join(names)] + [sep.join(r) for r in rows]
    text = nl.join(lines) + (nl if final_newline else "")
    return text.encode("utf-8")


def make_csv(n: int = 3, label: bool = True, seed: int = 0, **kw):
    rows, X, y = make_data(n, label, seed)
    names = TRAIN_NAMES if label else TEST_NAMES
    return render(names, rows, **kw), X, y


def with_cell(n: int, row: int, col: str, value: str, label: bool = True, seed: int = 0) -> bytes:
    """A valid CSV with data row `row` (1-based), column `col` replaced by `value`."""
    rows, _, _ = make_data(n, label, seed)
    names = TRAIN_NAMES if label else TEST_NAMES
    rows[row - 1][names.index(col)] = value
    return render(names, rows)


def assert_valid(res: CsvDigits, X, y):
    assert isinstance(res, CsvDigits)
    assert res.X.dtype == np.uint8 and res.X.shape == X.shape
    assert res.X.flags["C_CONTIGUOUS"]
    np.testing.assert_array_equal(res.X, X)
    if y is None:
        assert res.y is None
    else:
        assert res.y.dtype == np.uint8 and res.y.shape == y.shape
        np.testing.assert_array_equal(res.y, y)


class Uploaded(io.BytesIO):
    """Stand-in for Streamlit's UploadedFile (a BytesIO with .name and .size)."""

    def __init__(self, data: bytes, name: str = "train.csv"):
        super().__init__(data)
        self.name = name
        self.size = len(data)


# --------------------------------------------------------------------------- valid files


def test_train_round_trip():
    data, X, y = make_csv(5, label=True)
    res = load_csv(data)
    assert_valid(res, X, y)
    assert res.notes == ()


def test_test_round_trip():
    data, X, _ = make_csv(4, label=False)
    res = load_csv(data)
    assert_valid(res, X, None)
    assert res.notes == ()


@pytest.mark.parametrize("kind", ["bytes", "bytearray", "memoryview", "bytesio", "uploaded",
                                  "uploaded_already_read", "str_path", "pathlib"])
def test_sources(kind, tmp_path):
    data, X, y = make_csv(3)
    path = tmp_path / "train.csv"
    path.write_bytes(data)
    if kind == "bytes":
        src = data
    elif kind == "bytearray":
        src = bytearray(data)
    elif kind == "memoryview":
        src = memoryview(data)
    elif kind == "bytesio":
        src = io.BytesIO(data)
    elif kind == "uploaded":
        src = Uploaded(data)
    elif kind == "uploaded_already_read":
        src = Uploaded(data)
        src.read()
    elif kind == "str_path":
        src = str(path)
    else:
        src = path
    assert_valid(load_csv(src), X, y)


def test_text_mode_file_object(tmp_path):
    data, X, y = make_csv(2)
    path = tmp_path / "train.csv"
    path.write_bytes(data)
    with open(path, encoding="utf-8") as fh:
        assert_valid(load_csv(fh), X, y)


def test_binary_file_object(tmp_path):
    data, X, y = make_csv(3)
    path = tmp_path / "train.csv"
    path.write_bytes(data)
    with open(path, "rb") as fh:
        assert_valid(load_csv(fh), X, y)
    with open(path, "rb") as fh, pytest.raises(DataError, match="more than the limit"):
        load_csv(fh, max_bytes=len(data) - 1)


class Trickle(io.RawIOBase):
    """A stream whose read(n) returns at most 1,000 bytes, as a pipe or socket may."""

    def __init__(self, data: bytes):
        self.data, self.pos = data, 0

    def readable(self):
        return True

    def read(self, n=-1):
        part = self.data[self.pos:self.pos + min(1000, n if n >= 0 else 1000)]
        self.pos += len(part)
        return part


def test_stream_that_returns_short_reads():
    data, X, y = make_csv(3)
    assert_valid(load_csv(Trickle(data)), X, y)
    with pytest.raises(DataError, match="larger than the limit"):
        load_csv(Trickle(data), max_bytes=len(data) - 1)


def test_wrong_source_type_is_type_error():
    with pytest.raises(TypeError):
        load_csv(12345)


def test_missing_path(tmp_path):
    with pytest.raises(DataError, match="File not found"):
        load_csv(tmp_path / "nope.csv")


def test_directory_path(tmp_path):
    with pytest.raises(DataError, match="folder"):
        load_csv(tmp_path)


def test_require_labels():
    train, X, y = make_csv(2, label=True)
    test, Xt, _ = make_csv(2, label=False)
    assert_valid(load_csv(train, require_labels=True), X, y)
    assert_valid(load_csv(test, require_labels=False), Xt, None)
    assert_valid(load_csv(train, require_labels=None), X, y)
    assert_valid(load_csv(test, require_labels=None), Xt, None)
    with pytest.raises(DataError, match="no label column.*first column must be 'label'"):
        load_csv(test, require_labels=True)
    with pytest.raises(DataError, match="has a label column.*without labels"):
        load_csv(train, require_labels=False)


def test_chunk_boundaries(monkeypatch):
    monkeypatch.setattr(csv_data, "CHUNK_ROWS", 3)
    data, X, y = make_csv(10)
    assert_valid(load_csv(data), X, y)
    bad = with_cell(10, 8, "pixel9", "xyz")
    with pytest.raises(DataError, match=r"^Row 8, column pixel9: 'xyz' is not a number\.$"):
        load_csv(bad)


def test_a_bad_cell_in_a_big_chunk_raises_no_pandas_warning():
    bad = with_cell(2000, 1000, "pixel9", "xyz")  # one chunk, larger than pandas' low-memory blocks
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a DtypeWarning would be printed to the server's log
        with pytest.raises(DataError, match=r"^Row 1000, column pixel9: 'xyz' is not a number\.$"):
            load_csv(bad)


def test_blank_lines_skipped_and_not_counted():
    rows, X, y = make_data(4)
    text = render(TRAIN_NAMES, rows).decode()
    lines = text.split("\n")
    lines.insert(2, "")  # after data row 1
    lines.insert(4, "   \t ")  # after data row 2
    data = ("\n\n" + "\n".join(lines) + "\n\n  \n").encode()
    assert_valid(load_csv(data), X, y)
    rows[3][5] = "oops"
    lines = render(TRAIN_NAMES, rows).decode().split("\n")
    lines.insert(2, "")
    with pytest.raises(DataError, match=r"^Row 4, column pixel4: 'oops' is not a number\.$"):
        load_csv("\n".join(lines).encode())


def test_no_final_newline():
    data, X, y = make_csv(3, final_newline=False)
    assert_valid(load_csv(data), X, y)


def test_quoted_values():
    rows, X, y = make_data(3)
    quoted = [[f'"{c}"' for c in r] for r in rows]
    data = render([f'"{n}"' for n in TRAIN_NAMES], quoted)
    assert_valid(load_csv(data), X, y)


def test_whitespace_around_values():
    rows, X, y = make_data(2)
    rows[0][3] = " 17 "
    X[0, 2] = 17
    assert_valid(load_csv(render(TRAIN_NAMES, rows)), X, y)


def test_integer_valued_floats_are_fine():
    rows, X, y = make_data(3)
    rows[1][10] = "12.0"
    X[1, 9] = 12
    rows[2][0] = "3.0"
    y[2] = 3
    rows[0][1] = "1e2"
    X[0, 0] = 100
    assert_valid(load_csv(render(TRAIN_NAMES, rows)), X, y)


def test_binary_01_integers_are_not_scaled():
    rng = np.random.default_rng(1)
    X = rng.integers(0, 2, size=(3, 784), dtype=np.uint8)
    rows = [[str(v) for v in r] for r in X]
    res = load_csv(render(TEST_NAMES, rows))
    assert_valid(res, X, None)
    assert res.notes == ()


# --------------------------------------------------------------------------- encodings etc.


def test_bom():
    data, X, y = make_csv(3)
    res = load_csv(b"\xef\xbb\xbf" + data)
    assert_valid(res, X, y)
    assert any("BOM" in n for n in res.notes)


def test_crlf():
    data, X, y = make_csv(3, nl="\r\n")
    res = load_csv(data)
    assert_valid(res, X, y)
    assert res.notes == ()


def test_lone_cr_line_endings():
    data, X, y = make_csv(3, nl="\r")
    res = load_csv(data)
    assert_valid(res, X, y)
    assert any("carriage-return" in n for n in res.notes)


def test_semicolon():
    data, X, y = make_csv(3, sep=";")
    res = load_csv(data)
    assert_valid(res, X, y)
    assert "semicolon-separated" in res.notes


def test_tab():
    data, X, y = make_csv(3, sep="\t", label=False)
    res = load_csv(data)
    assert_valid(res, X, None)
    assert "tab-separated" in res.notes


def test_semicolon_with_decimal_commas():
    rows, X, y = make_data(2)
    frac = X / 255.0
    for i in range(2):
        rows[i][1:] = [repr(float(v)).replace(".", ",") for v in frac[i]]
    res = load_csv(render(TRAIN_NAMES, rows, sep=";"))
    assert_valid(res, X, y)
    assert any("decimal commas" in n for n in res.notes)


def test_gzip_valid():
    data, X, y = make_csv(4)
    res = load_csv(gzip.compress(data))
    assert_valid(res, X, y)
    assert any("gzip" in n for n in res.notes)


def test_gzip_multi_member():
    data, X, y = make_csv(4)
    cut = data.index(b"\n", len(data) // 2) + 1
    res = load_csv(gzip.compress(data[:cut]) + gzip.compress(data[cut:]))
    assert_valid(res, X, y)


def test_gzip_path(tmp_path):
    data, X, y = make_csv(2)
    path = tmp_path / "train.csv.gz"
    path.write_bytes(gzip.compress(data))
    assert_valid(load_csv(path), X, y)


@pytest.mark.parametrize("blob", [
    b"\x1f\x8b" + b"garbage" * 10,
    gzip.compress(b"label,pixel0\n1,2\n" * 50)[:-30],  # truncated
    gzip.compress(b"a,b\n1,2\n")[:12],
    gzip.compress(b"a,b\n1,2\n") + b"trailing junk",
    b"\x1f\x8b",
])
def test_gzip_corrupt(blob):
    with pytest.raises(DataError, match="gzip"):
        load_csv(blob)


def test_gzip_decompressed_too_big():
    data, _, _ = make_csv(20)
    blob = gzip.compress(data)
    limit = len(blob) + 1000
    assert limit < len(data)
    with pytest.raises(DataError, match=r"Decompressed, the file is larger than the limit"):
        load_csv(blob, max_bytes=limit)


def test_oversize_bytes():
    data, _, _ = make_csv(2)
    with pytest.raises(DataError, match=r"is .* which is more than the limit of 1,000 bytes"):
        load_csv(data, max_bytes=1000)


def test_oversize_path_and_file(tmp_path):
    data, _, _ = make_csv(3)
    path = tmp_path / "big.csv"
    path.write_bytes(data)
    size_kb = re.escape(f"{len(data) / 1024:.1f}".rstrip("0").rstrip(".") + " KB")
    with pytest.raises(DataError, match=f"The file is {size_kb}, which is more than the limit"):
        load_csv(path, max_bytes=5000)
    with pytest.raises(DataError, match=f"The file is {size_kb}, which is more than the limit"):
        load_csv(Uploaded(data), max_bytes=5000)
    with pytest.raises(DataError, match="more than the limit|larger than the limit"):
        load_csv(io.BytesIO(data), max_bytes=5000)


def test_max_bytes_exactly_fits():
    data, X, y = make_csv(2)
    assert_valid(load_csv(data, max_bytes=len(data)), X, y)


def test_default_limit():
    assert MAX_CSV_BYTES == 200 * 1024 * 1024


@pytest.mark.parametrize("blob", [b"", b"   ", b"\n\n\r\n  \t\n", b"\xef\xbb\xbf",
                                  b"\xef\xbb\xbf\r\n"])
def test_empty(blob):
    with pytest.raises(DataError, match=r"^The file is empty\.$"):
        load_csv(blob)


@pytest.mark.parametrize("tail", ["", "\n", "\r\n", "\n\n  \n"])
@pytest.mark.parametrize("names", [TRAIN_NAMES, TEST_NAMES])
def test_header_only(names, tail):
    with pytest.raises(DataError, match=r"^The file has a header but no data rows\.$"):
        load_csv((",".join(names) + tail).encode())


@pytest.mark.parametrize("blob, what", [
    (b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4, "PNG image"),
    (b"PK\x03\x04" + b"\x00" * 100, "ZIP archive"),
    (b"\xff\xd8\xff\xe0" + b"\x00" * 50, "JPEG"),
    (b"label,pixel0\n1,\x00\x002\n", "NUL byte"),
    (b"label,pix\xe9l0\n1,2\n", "not valid UTF-8"),
    (b"\x80\x81\x82" * 100, "not valid UTF-8"),
])
def test_not_a_text_csv(blob, what):
    with pytest.raises(DataError, match=f"not a text CSV file.*{what}"):
        load_csv(blob)


def test_utf16():
    data, _, _ = make_csv(1)
    with pytest.raises(DataError, match="UTF-16"):
        load_csv(data.decode().encode("utf-16"))


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be"])
def test_utf16_without_bom_is_named_as_utf16(codec):
    data, _, _ = make_csv(2)
    with pytest.raises(DataError, match=r"^This is not a UTF-8 text CSV file: it is saved as UTF-16"):
        load_csv(data.decode().encode(codec))


# --------------------------------------------------------------------------- header


def test_missing_last_pixel_column():
    rows, _, _ = make_data(2)
    data = render(TRAIN_NAMES[:-1], [r[:-1] for r in rows])
    with pytest.raises(DataError, match=re.escape(
            "Expected 784 pixel columns (pixel0 … pixel783) but found 783.")):
        load_csv(data)


def test_missing_middle_pixel_column_names_first_difference():
    names = TEST_NAMES[:400] + TEST_NAMES[401:]
    rows, _, _ = make_data(2, label=False)
    data = render(names, [r[:-1] for r in rows])
    with pytest.raises(DataError, match=r"found 783\. The first difference is column 401, which "
                                        r"is named 'pixel401' where 'pixel400' was expected"):
        load_csv(data)


def test_extra_trailing_column():
    rows, _, _ = make_data(2)
    data = render(TRAIN_NAMES + [""], [r + [""] for r in rows])
    with pytest.raises(DataError, match=r"found 785\. The extra columns start at column 786"):
        load_csv(data)


@pytest.mark.parametrize("label, col", [(False, 5), (True, 6)])
def test_misnamed_column(label, col):
    rows, _, _ = make_data(2, label=label)
    names = list(TRAIN_NAMES if label else TEST_NAMES)
    names[names.index("pixel4")] = "pixle4"
    with pytest.raises(DataError, match=f"^Column {col} is named 'pixle4'; expected 'pixel4'\\.$"):
        load_csv(render(names, rows))


def test_unnamed_column():
    rows, _, _ = make_data(2, label=False)
    names = list(TEST_NAMES)
    names[7] = ""
    with pytest.raises(DataError, match=r"^Column 8 has no name; expected 'pixel7'\.$"):
        load_csv(render(names, rows))


def test_duplicate_column_name():
    rows, _, _ = make_data(2, label=False)
    names = list(TEST_NAMES)
    names[10] = "pixel8"
    with pytest.raises(DataError, match=r"'pixel8' appears 2 times in the header \(columns 9, 11\)"):
        load_csv(render(names, rows))


@pytest.mark.parametrize("first", ["digit", "class", "y", "target", "Digit"])
def test_label_column_with_other_name(first):
    rows, _, _ = make_data(2)
    names = [first, *PIXELS]
    with pytest.raises(DataError, match=re.escape(
            f"The first column is named '{first}'; Kaggle's train.csv calls the label column "
            "'label'.")):
        load_csv(render(names, rows))


@pytest.mark.parametrize("first", ["Label", "LABEL"])
def test_label_case_insensitive_with_note(first):
    rows, X, y = make_data(2)
    res = load_csv(render([first, *PIXELS], rows))
    assert_valid(res, X, y)
    assert any(first in n and "label" in n for n in res.notes)


def test_label_not_first():
    rows, _, _ = make_data(2)
    names = [*PIXELS, "label"]
    rows = [r[1:] + r[:1] for r in rows]
    with pytest.raises(DataError, match=r"must be the first column, but 'label' is column 785"):
        load_csv(render(names, rows))


@pytest.mark.parametrize("first", ["", "Unnamed: 0"])
def test_saved_index_column(first):
    rows, _, _ = make_data(2)
    names = [first, *TRAIN_NAMES]
    rows = [[str(i)] + r for i, r in enumerate(rows)]
    with pytest.raises(DataError, match="row index"):
        load_csv(render(names, rows))


def test_header_line_missing():
    rows, _, _ = make_data(3)
    text = "\n".join(",".join(r) for r in rows) + "\n"
    with pytest.raises(DataError, match="header line is missing"):
        load_csv(text.encode())


def test_header_without_delimiters():
    data = (" ".join(TRAIN_NAMES) + "\n" + " ".join(["1"] * 785) + "\n").encode()
    with pytest.raises(DataError, match="no commas, semicolons or tabs"):
        load_csv(data)


# --------------------------------------------------------------------------- rows and cells


def test_row_too_long():
    rows, _, _ = make_data(20)
    rows[16].append("0")
    with pytest.raises(DataError, match=r"^Row 17 has 786 fields; the header has 785\."):
        load_csv(render(TRAIN_NAMES, rows))


def test_first_row_too_long():
    # pandas would silently treat this row's first field as an index or drop a value
    rows, _, _ = make_data(3)
    rows[0].append("0")
    with pytest.raises(DataError, match=r"^Row 1 has 786 fields; the header has 785\."):
        load_csv(render(TRAIN_NAMES, rows))


def test_trailing_delimiter_hint():
    rows, _, _ = make_data(3)
    rows[1].append("")
    with pytest.raises(DataError, match=r"^Row 2 has 786 fields.*extra comma"):
        load_csv(render(TRAIN_NAMES, rows))


def test_row_too_short():
    rows, _, _ = make_data(20)
    rows[16] = rows[16][:700]
    with pytest.raises(DataError, match=r"^Row 17 has 700 fields; the header has 785\. The row is "
                                        r"too short"):
        load_csv(render(TRAIN_NAMES, rows))


def test_row_with_wrong_delimiter():
    rows, _, _ = make_data(3)
    lines = render(TRAIN_NAMES, rows).decode().split("\n")
    lines[2] = lines[2].replace(",", ";")
    with pytest.raises(DataError, match=r"Row 2 has 1 field; .*separated by semicolons"):
        load_csv("\n".join(lines).encode())


def test_ragged_row_in_quoted_file():
    rows, _, _ = make_data(5)
    rows[3].append("7")
    quoted = [[f'"{c}"' for c in r] for r in rows]
    with pytest.raises(DataError, match=r"^Row 4 has 786 fields; the header has 785\."):
        load_csv(render(TRAIN_NAMES, quoted))


def test_unclosed_quote_in_middle_row():
    rows, _, _ = make_data(4)
    rows[1][5] = '"1'
    with pytest.raises(DataError, match=r"^Row 2 has \d+ fields; .*quote character .* never "
                                        r"closed on its line"):
        load_csv(render(TRAIN_NAMES, rows))


def test_unclosed_quote_in_last_field():
    rows, _, _ = make_data(4)
    rows[3][784] = '"1'
    with pytest.raises(DataError, match=r"^Row 4: A quote character .* never closed"):
        load_csv(render(TRAIN_NAMES, rows))


def test_unclosed_quote_at_the_very_end_names_the_row():
    rows, _, _ = make_data(3)
    rows[2][784] = '"1'
    with pytest.raises(DataError, match=r"^A quote character .* in or after row 3 is never closed"):
        load_csv(render(TRAIN_NAMES, rows, final_newline=False))


def test_stray_quote_in_header():
    data, _, _ = make_csv(2)
    with pytest.raises(DataError, match="header line .* stray quote"):
        load_csv(b'"' + data)


@pytest.mark.parametrize("chunk", [2, 5000])  # 5000: in the chunk where pandas stops at the ragged row
def test_cell_problem_before_ragged_row_is_reported_first(monkeypatch, chunk):
    monkeypatch.setattr(csv_data, "CHUNK_ROWS", chunk)
    rows, _, _ = make_data(8)
    rows[2][10] = "abc"
    rows[5].append("1")
    with pytest.raises(DataError, match=r"^Row 3, column pixel9: 'abc' is not a number\.$"):
        load_csv(render(TRAIN_NAMES, rows))


def test_non_numeric_cell():
    with pytest.raises(DataError, match=r"^Row 17, column pixel203: 'abc' is not a number\.$"):
        load_csv(with_cell(20, 17, "pixel203", "abc"))


def test_non_numeric_cell_in_test_file():
    with pytest.raises(DataError, match=r"^Row 2, column pixel0: '12a' is not a number\.$"):
        load_csv(with_cell(3, 2, "pixel0", "12a", label=False))


def test_boolean_column():
    rows, _, _ = make_data(3)
    for r in rows:
        r[5] = "True"
    with pytest.raises(DataError, match=r"^Row 1, column pixel4: 'True' is not a number\.$"):
        load_csv(render(TRAIN_NAMES, rows))


@pytest.mark.parametrize("value", ["", "nan", "NaN", "NA", " "])
def test_missing_value(value):
    with pytest.raises(DataError, match=r"^Row 3, column pixel10: the value is missing\.$"):
        load_csv(with_cell(4, 3, "pixel10", value))


def test_missing_label():
    with pytest.raises(DataError, match=r"^Row 2, column label: the value is missing\.$"):
        load_csv(with_cell(3, 2, "label", ""))


@pytest.mark.parametrize("value", ["256", "-1", "1000", "inf"])
def test_pixel_out_of_range(value):
    with pytest.raises(DataError, match=f"^Row 5, column pixel0: {value} is outside 0–255\\.$"):
        load_csv(with_cell(6, 5, "pixel0", value))


@pytest.mark.parametrize("value", ["10", "-1", "3.5", "abc"])
def test_bad_label(value):
    shown = repr(value) if value == "abc" else value
    with pytest.raises(DataError, match=f"^Row 2, column label: {re.escape(shown)} is not a digit "
                                        "0–9\\.$"):
        load_csv(with_cell(3, 2, "label", value))


def test_non_integer_pixel():
    with pytest.raises(DataError, match=r"^Row 4, column pixel7: 12\.5 is not a whole number"):
        load_csv(with_cell(5, 4, "pixel7", "12.5"))


def test_first_offending_cell_is_reported():
    rows, _, _ = make_data(4)
    rows[1][6] = "abc"  # row 2, pixel5
    rows[1][4] = "300"  # row 2, pixel3 (earlier in the row)
    rows[2][1] = ""  # row 3
    with pytest.raises(DataError, match=r"^Row 2, column pixel3: 300 is outside 0–255\.$"):
        load_csv(render(TRAIN_NAMES, rows))


def fraction_csv(X: np.ndarray, y: np.ndarray | None) -> bytes:
    rows = []
    for i in range(len(X)):
        cells = [repr(float(v)) for v in X[i] / 255.0]
        if y is not None:
            cells.insert(0, str(y[i]))
        rows.append(cells)
    return render(TRAIN_NAMES if y is not None else TEST_NAMES, rows)


@pytest.mark.parametrize("label", [True, False])
def test_fraction_pixels_are_scaled(label):
    _, X, y = make_data(4, label=label)
    res = load_csv(fraction_csv(X, y))
    assert_valid(res, X, y)
    assert any("scaled" in n for n in res.notes)


def test_fraction_pixels_with_integer_zero_and_one(monkeypatch):
    monkeypatch.setattr(csv_data, "CHUNK_ROWS", 2)
    rows = [["0"] * 784, ["1"] * 784, ["0.5"] * 784, ["1"] + ["0"] * 783]
    res = load_csv(render(TEST_NAMES, rows))
    expected = np.array([[0] * 784, [255] * 784, [128] * 784, [255] + [0] * 783], np.uint8)
    assert_valid(res, expected, None)


@pytest.mark.parametrize("chunk", [2, 5000])
@pytest.mark.parametrize("order", ["fraction_first", "big_first"])
def test_fractions_mixed_with_big_values(monkeypatch, chunk, order):
    monkeypatch.setattr(csv_data, "CHUNK_ROWS", chunk)
    rows = [["0"] * 784 for _ in range(6)]
    if order == "fraction_first":
        rows[0][3], rows[4][5] = "0.25", "200"
    else:
        rows[0][5], rows[4][3] = "200", "0.25"
    with pytest.raises(DataError, match=r"0\.25 is not a whole number, but other pixels are "
                                        r"above 1 \(e\.g\. row \d, column pixel5: 200\)"):
        load_csv(render(TEST_NAMES, rows))


# --------------------------------------------------------------------------- properties

VALID_SMALL, _, _ = make_csv(3, seed=7)
VALID_SMALL_TEXT = VALID_SMALL.decode()


def load_ok_or_data_error(blob, **kw):
    """load_csv may succeed or raise DataError -- nothing else, and never the safety net."""
    try:
        res = load_csv(blob, **kw)
    except DataError as exc:
        assert str(exc), "empty message"
        assert not str(exc).startswith(csv_data.UNEXPECTED_PREFIX), str(exc)
        return None
    assert res.X.dtype == np.uint8 and res.X.ndim == 2 and res.X.shape[1] == 784
    assert res.X.flags["C_CONTIGUOUS"]
    if res.y is not None:
        assert res.y.dtype == np.uint8 and res.y.shape == (res.X.shape[0],)
        assert res.y.max() <= 9
    return res


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=3000))
def test_property_arbitrary_bytes(blob):
    load_ok_or_data_error(blob)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=3000), st.sampled_from([VALID_SMALL[:7000], b"label,pixel0,",
                                                  b"\x1f\x8b", b"\xef\xbb\xbf"]))
def test_property_prefix_plus_arbitrary_bytes(blob, prefix):
    load_ok_or_data_error(prefix + blob)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_property_mutations_of_valid_csv(data):
    text = VALID_SMALL_TEXT
    lines = text.split("\n")
    n_mut = data.draw(st.integers(1, 3), label="mutations")
    for _ in range(n_mut):
        op = data.draw(st.sampled_from(["cell", "delete", "insert", "truncate", "dup_line",
                                        "drop_line", "swap_delim", "newline"]), label="op")
        if op == "cell" and lines:
            li = data.draw(st.integers(0, len(lines) - 1))
            cells = lines[li].split(",")
            ci = data.draw(st.integers(0, len(cells) - 1))
            cells[ci] = data.draw(st.text(max_size=12))
            lines[li] = ",".join(cells)
        elif op == "delete":
            text = "\n".join(lines)
            if text:
                i = data.draw(st.integers(0, len(text) - 1))
                lines = (text[:i] + text[i + 1:]).split("\n")
        elif op == "insert":
            text = "\n".join(lines)
            i = data.draw(st.integers(0, len(text)))
            ch = data.draw(st.sampled_from([",", ";", '"', "\r", "\n", " ", "-", ".", "x", "\t",
                                            "\ufeff", "9"]) | st.characters())
            lines = (text[:i] + ch + text[i:]).split("\n")
        elif op == "truncate":
            text = "\n".join(lines)
            i = data.draw(st.integers(0, len(text)))
            lines = text[:i].split("\n")
        elif op == "dup_line" and lines:
            li = data.draw(st.integers(0, len(lines) - 1))
            lines.insert(li, lines[li])
        elif op == "drop_line" and lines:
            li = data.draw(st.integers(0, len(lines) - 1))
            del lines[li]
        elif op == "swap_delim" and lines:
            li = data.draw(st.integers(0, len(lines) - 1))
            lines[li] = lines[li].replace(",", data.draw(st.sampled_from([";", "\t", " "])))
        elif op == "newline":
            nl = data.draw(st.sampled_from(["\r\n", "\r"]))
            lines = "\n".join(lines).replace("\n", nl).split("\n")
    blob = "\n".join(lines).encode("utf-8", errors="surrogatepass")
    compress = data.draw(st.booleans(), label="gzip")
    if compress:
        blob = gzip.compress(blob)
    require = data.draw(st.sampled_from([None, True, False]), label="require_labels")
    load_ok_or_data_error(blob, require_labels=require)


@settings(max_examples=200, deadline=None)
@given(
    n=st.integers(1, 4),
    values=st.sampled_from([(0, 256), (0, 2), (250, 256), (0, 10)]),
    label=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
    sep=st.sampled_from([",", ";", "\t"]),
    nl=st.sampled_from(["\n", "\r\n", "\r"]),
    bom=st.booleans(),
    gz=st.booleans(),
    final_newline=st.booleans(),
)
def test_property_valid_files_round_trip(n, values, label, seed, sep, nl, bom, gz, final_newline):
    rng = np.random.default_rng(seed)
    X = rng.integers(*values, size=(n, 784), dtype=np.uint8)
    y = rng.integers(0, 10, n, dtype=np.uint8) if label else None
    rows = [[str(v) for v in r] for r in X]
    if label:
        rows = [[str(y[i])] + r for i, r in enumerate(rows)]
    blob = render(TRAIN_NAMES if label else TEST_NAMES, rows, sep=sep, nl=nl,
                  final_newline=final_newline)
    if bom:
        blob = b"\xef\xbb\xbf" + blob
    if gz:
        blob = gzip.compress(blob)
    assert_valid(load_csv(blob), X, y)


def test_never_leaks_zlib_error():
    blob = b"\x1f\x8b\x08\x00" + zlib.compress(b"x" * 100)
    with pytest.raises(DataError):
        load_csv(blob)
