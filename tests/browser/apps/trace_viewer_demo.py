"""The trace viewer alone, on the seed network's first step: for the browser tests and
``benchmarks/bench_stepper_browser.py``.

``streamlit run tests/browser/apps/trace_viewer_demo.py`` from the repository root (its
``.streamlit/config.toml`` turns on the static serving that brings KaTeX; ``static`` beside
this file links to the repository's). "Train one mini-batch" takes the next step, as the
stepper page does. A test app: its state is plain ``st.session_state``.
"""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import streamlit as st  # noqa: E402

from core.data.mnist import load_mnist  # noqa: E402
from core.lab.settings import Settings  # noqa: E402
from core.lab.workspace import Workspace  # noqa: E402
from ui import trace_viewer  # noqa: E402
from ui.session import configure_process  # noqa: E402

configure_process()                 # one BLAS thread, as the app: the same numbers as the tests' engine
st.set_page_config(page_title="Trace viewer", layout="wide")


@st.cache_resource
def mnist():
    return load_mnist()


if "ws" not in st.session_state:
    m = mnist()
    st.session_state.ws = Workspace(Settings(), m["train"], m["test"])
    st.session_state.ws.step()                       # seed 0, the trainer's first mini-batch
ws = st.session_state.ws


def train() -> None:
    ws.step()


rec = ws.steps[-1]
cell = trace_viewer.show(ws.current, key="viewer", step_label=f"step {rec.number:,} (latest)",
                         start=st.query_params.get("stop"), optimizer=rec.optimizer_before, on_train=train)
st.caption(f"Network at step {ws.trainer.global_step:,}." + (f" Asked: {cell['name']}{cell['index']}." if cell else ""))
