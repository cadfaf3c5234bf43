"""Start here: what the app is, the seed's network and result, where to go."""
import streamlit as st

from ui.replace import confirm_replace, replace_network
from ui.session import SEED_FIRST_EPOCH, SEED_VAL_ACC, pretrained, workspace

ws = workspace()
st.title("Backprop, step by step")
st.markdown(
    "A neural network written in plain NumPy learns to read handwritten digits, and you can watch "
    "every number it computes. Step one mini-batch through the **forward pass**, the **loss**, "
    "**backpropagation** and the **update**, with every matrix on screen; then train the same network "
    "for 1000 epochs and look at what it learned and where it still fails.")

st.subheader("The network")
# Inline math, which KaTeX may break after a relation, unlike st.latex's one display line (cut off
# on a phone). Each layer is a {group} that stays whole, so a line breaks only after an arrow.
st.markdown("$" + r"{X \in \mathbb{R}^{m\times 784}}\ \xrightarrow{W_1,\,b_1}\ "
            r"{A_1 = \mathrm{ReLU}(Z_1) \in \mathbb{R}^{m\times 64}}\ \xrightarrow{W_2,\,b_2}\ "
            r"{A_2 \in \mathbb{R}^{m\times 64}}\ \xrightarrow{W_3,\,b_3}\ "
            r"{A_3 = \mathrm{softmax}(Z_3) \in \mathbb{R}^{m\times 10}}" + "$",
            text_alignment="center")
st.markdown(
    f"This is the network of a well-known notebook: 784 → 64 (ReLU) → 64 (ReLU) → 10 (softmax), "
    f"cross-entropy loss, plain mini-batch gradient descent with learning rate 0.1 and batch size 64, "
    f"weights drawn as 0.01·N(0,1) and biases zero, trained 1000 epochs on 41,000 images with 1,000 held out. "
    f"The notebook reports **{SEED_VAL_ACC:.1%}** validation accuracy at the end "
    f"({SEED_FIRST_EPOCH:.1%} after the first epoch).")
ck = pretrained()
if ck is not None and len(ck.history):
    h = ck.history.rows
    test = ck.meta.get("test_acc")
    st.markdown(
        f"Our engine, same protocol: **{h['val_acc'][-1]:.1%}** validation accuracy after {h['epoch'][-1]} epochs "
        f"({h['val_acc'][0]:.1%} after the first)" + (f", **{test:.2%}** on the 10,000 official MNIST test images." if test else "."))

st.subheader("Where to start")
c1, c2, c3 = st.columns(3)
with c1:
    st.markdown("**1 · Step through backprop**  \nOne mini-batch, phase by phase: every matrix as a heatmap, "
                "every equation, any single number explained.")
    st.page_link("pages/stepper.py", label="Open the stepper", icon=":material/footprint:")
with c2:
    st.markdown("**2 · Train 1000 epochs**  \nThe same step, 641,000 times, in the background: live curves, "
                "pause and resume, telemetry per layer.")
    st.page_link("pages/training.py", label="Open training", icon=":material/model_training:")
with c3:
    st.markdown("**3 · Look inside**  \nWhat each neuron looks for, the confusion matrix, the worst mistakes, "
                "and your own handwriting.")
    st.page_link("pages/inspect.py", label="What it learned", icon=":material/search_insights:")

st.divider()
st.markdown(f"You are working with **{ws.origin}**: {' → '.join(map(str, ws.net.sizes))}, "
            f"{ws.trainer.epoch} epochs trained. The settings are in the sidebar.")
if ck is not None:
    if st.button("Open the pretrained network (1000 epochs, seed protocol)", disabled=ws.busy, key="home_open_pretrained",
                 help="Replaces your current network in this session only (asks first when it has trained)."):
        replace_network(ws, "pretrained")
    confirm_replace(ws, "pretrained", key="home")
st.caption("MNIST is by Yann LeCun, Corinna Cortes and Christopher J. C. Burges (CC BY-SA 3.0).")
