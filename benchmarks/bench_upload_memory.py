"""What an uploaded train.csv costs the server, and that replacing it frees the one before.

Starts the app on a free port, opens /data in headless Chromium, and uploads into the sidebar's
train.csv uploader, one after the other: a 42,000-image train.csv (about 77 MB, from the shipped
MNIST), a second one (the same images in reverse order), then the first again. After each it waits
for the sidebar's "Loaded … from <name>" and prints the server's resident memory.

    python -m benchmarks.bench_upload_memory

Streamlit holds an uploaded file's bytes until the user removes or replaces it, or the session ends
(docs/streamlit-notes.md): the first upload costs the file plus the images parsed from it; each
later one should cost little, because the file before it is freed.
"""
from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core.data.mnist import load_mnist  # noqa: E402
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, start_server  # noqa: E402
from tests.browser.helpers import open_page, settle  # noqa: E402


def write_csv(path: Path, X: np.ndarray, y: np.ndarray) -> None:
    rows = np.column_stack([y, X.reshape(len(X), -1)]).astype(int)
    with open(path, "w") as f:
        f.write("label," + ",".join(f"pixel{i}" for i in range(784)) + "\n")
        np.savetxt(f, rows, fmt="%d", delimiter=",")


def main() -> None:
    from playwright.sync_api import sync_playwright
    m = load_mnist()
    X, y = m["train"].X[:42000], m["train"].y[:42000]
    folder = Path(tempfile.mkdtemp())
    write_csv(folder / "a.csv", X, y)
    write_csv(folder / "b.csv", X[::-1], y[::-1])
    print(f"train.csv: {(folder / 'a.csv').stat().st_size / 1e6:.1f} MB")
    proc, url = start_server()
    rss = lambda: psutil.Process(proc.pid).memory_info().rss / 2**20  # noqa: E731
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            open_page(page, url, "data")
            before = rss()
            print(f"server RSS with /data open: {before:.0f} MiB")
            sidebar = page.locator('[data-testid="stSidebar"]')
            sidebar.get_by_text("Settings", exact=True).click()
            for name in ("a.csv", "b.csv", "a.csv"):
                sidebar.locator('input[type="file"]').set_input_files(folder / name)
                sidebar.get_by_text(f"from {name}").first.wait_for(timeout=300_000)
                settle(page)
                time.sleep(2)          # let the allocator settle before reading the figure
                now = rss()
                print(f"after uploading {name}: {now:.0f} MiB (+{now - before:.0f})")
                before = now
            browser.close()
    finally:
        proc.terminate()
        proc.wait(10)


if __name__ == "__main__":
    main()
