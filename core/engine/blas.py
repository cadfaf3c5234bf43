"""How many threads the BLAS library (OpenBLAS under NumPy) may use.

This network's matrices are small (64 × 784 by 784 × 64). Two BLAS threads
make one product faster only while the other core is idle; as soon as
anything else runs (a second training, the web server, a browser), they wait on
each other and an epoch got 7× slower on this project's 2-core machine
(0.15 s with one thread, 1.10 s with two, measured with `--threads`). So the
app and the command line use one BLAS thread per process unless told
otherwise; parallelism comes from separate runs. It is a setting of the
process's BLAS library, made once at start-up, not anyone's state.
"""
from __future__ import annotations


def set_blas_threads(n: int | None = 1) -> None:
    """Limit BLAS to ``n`` threads for the rest of the process (None: leave as is)."""
    if n is None:
        return
    import numpy  # noqa: F401 — threadpoolctl only limits libraries already loaded: load NumPy's OpenBLAS first
    from threadpoolctl import threadpool_limits
    threadpool_limits(limits=int(n), user_api="blas")


def blas_info() -> list[dict]:
    from threadpoolctl import threadpool_info
    return [{k: d.get(k) for k in ("internal_api", "version", "num_threads", "architecture")}
            for d in threadpool_info() if d.get("user_api") == "blas"]
