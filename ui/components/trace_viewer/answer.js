// The answer to a clicked cell (ui/trace_viewer.py), handed to the trace viewer it belongs to.
//
// It is a component of its own so that the viewer's element, which holds the whole step, stays
// the same when a cell is explained: Streamlit then sends only a reference to it, not the step
// again. The viewer listens for this event on the window and takes the answers for its key.
export default function ({ data }) {
  if (data) window.dispatchEvent(new CustomEvent("trace-viewer-answer", { detail: data }));
}
