"""Draw a digit: your handwriting, made MNIST-like, through the network."""
import numpy as np
import streamlit as st

from core.engine.metrics import activations
from core.engine.network import build_specs
from core.data.preprocess import gray_from_picture, gray_from_rgba, mnist_style
from ui.inspect_plots import image_grid, probability_bars, vector_strip
from ui.logits import logit_breakdown
from ui.text import plain
from ui.session import offer_pretrained, snapshot_choice, workspace
from ui.state import session
from ui.present import chart

try:  # a Streamlit component: needs a running server (it is not there in bare mode or AppTest)
    from streamlit_drawable_canvas import st_canvas
    CANVAS_PROBLEM = ""
except Exception as err:  # noqa: BLE001 — any failure means: offer the upload instead
    st_canvas, CANVAS_PROBLEM = None, f"{type(err).__name__}: {err}"

CANVAS = 280
STROKE = 18

ws = workspace()
net = ws.net
L = net.n_layers

st.title("Draw a digit")
st.markdown("Write a digit with the mouse or a finger. It is turned into an MNIST image the way MNIST's own "
            "digits were made (crop to the ink, scale the longer side to 20 pixels, centre the centre of "
            "mass in a 28×28 field), then goes through the network.")
offer_pretrained(ws, "This network has not been trained yet, so its answers are guesses.", key="draw_pretrained")
at_epoch, params = snapshot_choice(ws, key="draw_snapshot")

gray = None
left, right = st.columns([1, 1.25])
with left:
    if st_canvas is not None:
        st.space("medium")  # the canvas's toolbar floats above it
        result = st_canvas(stroke_width=STROKE, stroke_color="#FFFFFF", background_color="#000000",
                           height=CANVAS, width=CANVAS, drawing_mode="freedraw", return_image_data=True,
                           key="digit_canvas")
        if result is not None and result.image_data is not None:
            gray = gray_from_rgba(result.image_data)
        st.caption("Your digit, white on black: MNIST stores ink as bright (255) on a black (0) background. "
                   "The toolbar above the canvas undoes a stroke or clears it all.")
        with st.expander("…or upload a picture instead"):
            upload = st.file_uploader("A picture of one digit", type=["png", "jpg", "jpeg"], key="digit_upload")
    else:
        st.warning("The drawing canvas cannot start here, so upload a picture of a digit instead "
                   "(a photo of a digit on paper, or a PNG from any paint program).")
        st.caption(f"(streamlit-drawable-canvas: {CANVAS_PROBLEM})")
        upload = st.file_uploader("A picture of one digit", type=["png", "jpg", "jpeg"], key="digit_upload")
    if upload is not None:
        try:
            gray = gray_from_picture(upload.getvalue())
        except ValueError as err:
            st.error(plain(str(err)))

img = mnist_style(gray) if gray is not None else None
if img is None:
    session().drawn_digit = None
    right.info("Draw a digit on the canvas" + (" (or upload one)." if st_canvas is not None else
                                                ": upload a picture on the left."))
    st.stop()

session().drawn_digit = img  # the stepper may train a step on it
values = activations(net, img[None, :], params)  # the same forward pass the training step uses
proba = values[f"A{L}"][0]
pred = int(proba.argmax())
with right:
    a, b = st.columns([1, 1.6])
    chart(a, image_grid(img[None] / 255, size=200, dark=True), key="draw_mnist",
          config={"displayModeBar": False})
    a.caption("What the network sees: 28×28 grey levels, X = pixels / 255.")
    b.markdown(f"### It reads a **{pred}**")
    b.markdown(f"with probability **{proba[pred]:.1%}** (network at epoch {at_epoch}).")
    second = int(np.argsort(proba)[-2])
    b.caption(f"Second guess: {second} ({proba[second]:.1%}).")
    chart(st, probability_bars(proba, title=f"A{L} = softmax(Z{L})"), key="draw_proba",
          config={"displayModeBar": False})
    st.page_link("pages/stepper.py", label="Step your digit through backprop", icon=":material/footprint:",
                 help="On the stepper, choose 'the digit I drew' and say which digit it is: one training "
                      "step on your image, every matrix on screen.")

st.subheader("Its forward pass, number by number")
st.caption("Each quantity of the forward pass for this one image (one row of the matrices on the stepper page). "
           "Hover for the values.")
rule = {s.name: s.latex for s in build_specs(net)}   # the equations the stepper shows for each quantity
for l in range(1, L + 1):
    # Z, then (batch norm) N = γ ⊙ Ẑ + β with the running statistics, then A = f(what came before)
    names = ["Z", *(["N"] if net.pre(l) != f"Z{l}" else []), "A"]
    for col, q in zip(st.columns(len(names)), names):
        v = values[f"{q}{l}"][0]
        col.latex(rule[f"{q}{l}"])
        chart(col, vector_strip(v, f"{q}{l} (1 × {v.size})", f"{q}{l}", signed=q != "A"), key=f"draw_{q}{l}",
              config={"displayModeBar": False})

e1, e2 = st.columns([1.3, 1])
logit_breakdown(e1, e2, values[f"A{L - 1}"][0], params, pred, key="draw_contrib",
                title=f"why {pred}: the units of A{L - 1} that raised Z{L}[{pred}] (blue) or lowered it (orange)")
e2.markdown(f"The forward pass computed Z{L}[{pred}] = **{float(values[f'Z{L}'][0, pred]):.3f}**.")
