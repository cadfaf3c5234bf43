"""The one place the app reaches into Streamlit's private internals, and why.

Streamlit keeps every uploaded file's bytes in server memory until the user
removes the file in the browser or the session ends; giving the uploader a new
key (which empties it on screen) does not free them, and there is no public
call that does. For a Kaggle train.csv that is 73 MB per student on top of the
images parsed from it. Streamlit's own ``st.chat_input`` frees its files with
the same call as below. If an upgrade moves or renames it, the app keeps
working (the file then stays until the session ends) and
tests/test_streamlit_compat.py fails, saying so. See docs/streamlit-notes.md.
"""
from __future__ import annotations


def free_upload(up) -> bool:
    """Drop the uploaded file ``up`` from Streamlit's upload store; True if it was dropped."""
    file_id = getattr(up, "file_id", None)
    try:
        from streamlit.runtime.memory_uploaded_file_manager import MemoryUploadedFileManager
        from streamlit.runtime.scriptrunner import get_script_run_ctx
    except ImportError:
        return False
    ctx = get_script_run_ctx()
    if not file_id or ctx is None or not isinstance(ctx.uploaded_file_mgr, MemoryUploadedFileManager):
        return False
    ctx.uploaded_file_mgr.remove_file(session_id=ctx.session_id, file_id=file_id)
    return True
