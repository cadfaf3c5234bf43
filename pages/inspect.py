"""What it learned: the first layer's neurons as pictures, one image through the
network, an edit of the network and what it changes, and the network's representation
of the digits (PCA)."""
import numpy as np
import streamlit as st

from core.engine.metrics import activations, by_class, extremes, firing_rate, mistakes, neuron_order, pca
from core.teach.surgery import MAX_WEIGHT, SetWeight, Silence, apply, outcome, outcome_of, silenced
from ui import phone, present
from ui.inspect_plots import before_after_bars, class_boxes, image_grid, layer_bars, pca_scatter, probability_bars, weight_image
from ui.logits import logit_breakdown
from ui.links import keep_view, link_box, read_view, scroll_to
from ui.session import offer_pretrained, snapshot_choice, workspace
from ui.state import NEURON, PROBE_DIGIT_K, PROBE_HOW, PROBE_INDEX, session, snapshot_key
from ui.present import chart, prose, prose_caption

PAGE = "inspect"       # this page's address, /inspect
SNAPSHOT = "inspect_snapshot"
NEURONS_ANCHOR, IMAGE_ANCHOR = "neurons", "one-image"   # the sections a link opens on
EDIT_ANCHOR = "edit"
N_TRAIN_PROBE = 5000   # training images searched for what excites a neuron
N_PCA = 2000           # validation images in the PCA pictures

ws = workspace()
state = session()
memo = state.memo
net, split = ws.net, ws.split
L = net.n_layers
HIDDEN = [f"A{l}" for l in range(1, L)]

st.title("What it learned")
prose("The weights of a trained network are just numbers, but the first layer's can be *looked at*: "
      "column *j* of `W1` holds hidden neuron *j*'s 784 weights, one per pixel, a 28×28 picture of "
      "what makes it fire. Below: those pictures, one image on its way through the network, and how "
      "the layers rearrange the digits.")
offer_pretrained(ws, "This network has not been trained yet: its weights are still random noise.", key="inspect_pretrained")

# a link's view (once per session): a snapshot, a neuron, a validation image
link = read_view(PAGE, {"epoch": sorted(ws.trainer.snapshots), "neuron": range(net.sizes[1]),
                        "image": range(len(split.val_idx))})
if "epoch" in link:
    st.session_state[snapshot_key(SNAPSHOT, ws.trainer)] = link["epoch"]
if "neuron" in link:
    st.session_state[NEURON] = link["neuron"]
if "image" in link:
    st.session_state[PROBE_HOW], st.session_state[PROBE_INDEX] = "by number", link["image"]
if "neuron" in link or "image" in link:     # open on what the link is about, not on the top of the page
    scroll_to(NEURONS_ANCHOR if "neuron" in link else IMAGE_ANCHOR)
at_epoch, params = snapshot_choice(ws, key=SNAPSHOT)
epoch_shown = None if params is ws.net.params else at_epoch     # a snapshot, or the network now
keep_view(PAGE, epoch=epoch_shown)
val_X = split.source.X[split.val_idx]
val_y = split.source.y[split.val_idx]
vals = memo.get("forward:validation", (split, params), lambda: activations(net, val_X, params))
val_pred = vals[f"A{L}"].argmax(axis=1)


def picked(event) -> list[int]:
    """The ``customdata`` (an image or neuron number) of the points clicked or lassoed in a chart."""
    out = []
    for p in (event.selection.points if event is not None else []):
        cd = p.get("customdata")
        if cd is not None:
            out.append(int(cd[0]) if isinstance(cd, (list, tuple)) else int(cd))
    return out


def apply_neuron_click(ids: list[int]) -> None:
    """A new click in the grid of neurons picks that neuron in the number box that follows it."""
    now = ids[-1] if ids else None
    if now is not None and now != state.neuron_click:
        st.session_state[NEURON] = now
    state.neuron_click = now


# --------------------------------------------------------------------------- neurons
@st.fragment
def neurons_section() -> None:
    n_units = net.sizes[1]
    W1, b1 = params["W1"], params["b1"]
    pre = net.pre(1)                      # what ReLU is applied to: Z1, or N1 with batch norm
    rates = firing_rate(vals[pre])
    norms = np.linalg.norm(W1.astype(np.float64), axis=0)
    st.subheader(f"The {n_units} neurons of layer 1", anchor=NEURONS_ANCHOR)
    by = st.radio("Order", ["index", "norm", "firing"], horizontal=True, key="neuron_order",
                  format_func={"index": "by number", "norm": "by weight norm ‖W1[:, j]‖",
                               "firing": "by how often it fires"}.get)
    order = neuron_order(W1, rates, by)
    dead = (rates == 0) & net.act.dies  # a unit that never fires gets no gradient
    captions = [f"{j}" + (" dead" if dead[j] else f" · {rates[j]:.0%}") for j in order]
    hover = [f"neuron {j}<br>‖W1[:, {j}]‖ = {norms[j]:.3f}, b1[{j}] = {b1[j]:+.3f}<br>"
             f"fires ({pre} > 0) on {rates[j]:.1%} of the {len(val_y):,} validation images" for j in order]
    cols = 16 if n_units > 48 else 8
    event = chart(phone.wide(st, "neuron_grid"),
        image_grid(W1.T[order], captions, hover, ids=order, cols=cols, signed=True, scale_each=True,
                   size=64 if cols == 16 else 110),
        key="neuron_grid", on_select="rerun", selection_mode="points", config={"displayModeBar": False})
    prose_caption(f"Each picture is one column of W1 at epoch {at_epoch}, red where a bright pixel raises the neuron's Z1, "
                  f"blue where it lowers it, white for weights near zero; each picture is scaled to its own "
                  f"largest |weight|. Caption: neuron number · share of validation images on which it fires. "
                  + (f"{int(dead.sum())} of {n_units} never fire on them (dead). " if net.act.dies else "")
                  + "Click a neuron to open it.")
    apply_neuron_click(picked(event))
    if NEURON not in st.session_state or not 0 <= st.session_state[NEURON] < n_units:
        st.session_state[NEURON] = int(order[0])
    j = int(st.number_input("Neuron", 0, n_units - 1, key=NEURON))
    keep_view(PAGE, neuron=j)

    train_idx = split.train_idx[:N_TRAIN_PROBE]
    Z1_train = memo.get("Z1:train", (split, params),
                        lambda: activations(net, split.source.X[train_idx], params)["Z1"])
    a, b, c = st.columns([1.1, 1.5, 1.4])
    with a:
        chart(st, weight_image(W1[:, j], f"W1[:, {j}] as a 28×28 picture"), key="neuron_w",
              config={"displayModeBar": False})
        state = ("**dead**: Z1 is never positive on the validation images, so its gradient is always "
                 "zero and it can no longer learn" if dead[j] else f"fires on **{rates[j]:.1%}** of the "
                                                                   f"validation images")
        st.markdown(f"Neuron **{j}**: ‖W1[:, {j}]‖ = {norms[j]:.3f}, b1[{j}] = {b1[j]:+.4f}; {state}.")
    with b:
        top, bottom = extremes(Z1_train[:, j], 8)
        src = split.source
        chart(st, image_grid(src.X[train_idx[top]] / 255, [f"{Z1_train[i, j]:.2f}" for i in top],
                             [f"training image {train_idx[i]} (label {src.y[train_idx[i]]}): "
                              f"Z1[{j}] = {Z1_train[i, j]:.3f}" for i in top], cols=8, size=70,
                             title="excite it most (largest Z1)"),
              key="neuron_top", config={"displayModeBar": False})
        chart(st, image_grid(src.X[train_idx[bottom]] / 255, [f"{Z1_train[i, j]:.2f}" for i in bottom],
                             [f"training image {train_idx[i]} (label {src.y[train_idx[i]]}): "
                              f"Z1[{j}] = {Z1_train[i, j]:.3f}" for i in bottom], cols=8, size=70,
                             title="silence it most (most negative Z1)"),
              key="neuron_bottom", config={"displayModeBar": False})
        st.caption(f"Among the first {len(train_idx):,} training images. A1 = ReLU(Z1) is 0 for all of "
                   f"the bottom ones, so they are ranked by Z1." if net.act.dies else
                   f"Among the first {len(train_idx):,} training images, ranked by Z1.")
    with c:
        A1 = vals["A1"]
        chart(st, class_boxes(by_class(A1[:, j], val_y), f"A1[:, {j}] by digit (validation)",
                              f"A1[{j}]"), key="neuron_boxes", config={"displayModeBar": False})
        means = np.array([A1[val_y == d, j].mean() if (val_y == d).any() else np.nan for d in range(10)])
        if np.isfinite(means).any() and np.nanmax(means) > 0:
            st.caption(f"It responds most to **{int(np.nanargmax(means))}**s on average "
                       f"(mean A1 {np.nanmax(means):.2f}).")
    link_box(ws, PAGE, f"neuron {j}", epoch=epoch_shown, neuron=j)


# --------------------------------------------------------------------------- one image
@st.fragment
def one_image_section() -> None:
    st.subheader("One image through the network", anchor=IMAGE_ANCHOR)
    how = st.radio("Pick an image", ["by number", "by digit", "at random", "a mistake"], horizontal=True,
                   key=PROBE_HOW)
    n = len(val_y)
    wrong = mistakes(val_y, val_pred, vals[f"A{L}"])
    if how == "by number":
        if not 0 <= st.session_state.get(PROBE_INDEX, 0) < n:   # another network, fewer images
            st.session_state[PROBE_INDEX] = 0
        i = int(st.number_input(f"Validation image (0–{n - 1})", 0, n - 1, key=PROBE_INDEX))
    elif how == "by digit":
        d1, d2 = st.columns(2)
        digit = d1.selectbox("Digit", list(range(10)), key="probe_digit")
        of_digit = np.flatnonzero(val_y == digit)
        if len(of_digit) == 0:
            st.warning(f"No {digit} among the validation images.")
            keep_view(PAGE, image=None)
            return
        if not 1 <= st.session_state.get(PROBE_DIGIT_K, 1) <= len(of_digit):
            st.session_state[PROBE_DIGIT_K] = 1
        k = int(d2.number_input(f"Which one ({len(of_digit)} of them)", 1, len(of_digit), key=PROBE_DIGIT_K))
        i = int(of_digit[k - 1])
    elif how == "at random":
        if st.button("Another one", key="probe_random_btn") or state.probe_random is None:
            state.probe_random = int(np.random.default_rng().integers(n))
        i = min(state.probe_random, n - 1)
    else:
        if len(wrong) == 0:
            st.success("No validation image is misclassified.")
            keep_view(PAGE, image=None)
            return
        p = vals[f"A{L}"]
        i = int(st.selectbox(f"Misclassified validation images ({len(wrong)}, most confident first)", wrong,
                             key="probe_mistake",
                             format_func=lambda k: f"image {k}: a {val_y[k]} taken for a {val_pred[k]} "
                                                   f"({p[k, val_pred[k]]:.0%})"))
    keep_view(PAGE, image=i)
    if state.probe_image != i:      # the edit section below shows this image too: redraw the page
        redraw = state.probe_image is not None
        state.probe_image = i
        if redraw:
            st.rerun()
    one = activations(net, val_X[i:i + 1], params)   # the same forward pass, on one row
    A_out = one[f"A{L}"][0]
    pred = int(A_out.argmax())
    a, b = st.columns([1, 2.2])
    with a:
        chart(st, image_grid(val_X[i:i + 1] / 255, size=230), key="probe_img",
              config={"displayModeBar": False})
        verdict = "right" if pred == val_y[i] else "**wrong**"
        st.markdown(f"Validation image **{i}**, a **{val_y[i]}**. The network says **{pred}** "
                    f"({A_out[pred]:.1%}): {verdict}.")
    with b:
        chart(st, probability_bars(A_out, true=int(val_y[i]),
                                   title=f"A{L} = softmax(Z{L}): the true digit outlined"),
              key="probe_proba", config={"displayModeBar": False})
    hidden_cols = st.columns(len(HIDDEN))
    for col, name in zip(hidden_cols, HIDDEN):
        v = one[name][0]
        chart(col, layer_bars(v, f"{name}: {int((v > 0).sum())} of {len(v)} units active", name),
              key=f"probe_{name}", config={"displayModeBar": False})

    last = HIDDEN[-1]
    c = st.selectbox("Explain the score of digit", list(range(net.sizes[-1])), index=pred,
                     key=f"probe_c_{i}_{pred}_{id(ws.trainer)}",  # a new image or answer starts at the answer
                     format_func=lambda d: f"{d} (the prediction)" if d == pred else str(d))
    e1, e2 = st.columns([1.3, 1])
    terms = logit_breakdown(e1, e2, one[last][0], params, c, key="probe_contrib",
                            title=f"which units of {last} pushed Z{L}[{c}] up (blue) or down (orange)")
    z = float(one[f"Z{L}"][0, c])
    with e2:
        active = int((terms != 0).sum())
        st.markdown(f"The network computed Z{L}[{c}] = **{z:.3f}**. Positive terms come from units that are "
                    f"active *and* connected to {c} with a positive weight."
                    + (f" Only the {active} active units of {last} contribute at all; the other "
                       f"{len(terms) - active} are zero." if active < len(terms) else ""))
    link_box(ws, PAGE, f"validation image {i}", epoch=epoch_shown, image=i)


# --------------------------------------------------------------------------- edit the network
EDIT_UNITS, EDIT_LAYER = "edit_units", "edit_layer"
EDIT_W, EDIT_I, EDIT_J, EDIT_VALUE = "edit_w_layer", "edit_w_i", "edit_w_j", "edit_w_value"


def _silence() -> None:
    box = state.network_edits
    layer = int(st.session_state[EDIT_LAYER])
    box.edits = box.edits + tuple(Silence(layer, int(j)) for j in st.session_state.get(EDIT_UNITS, []))
    st.session_state[EDIT_UNITS] = []


def _add_open_neuron() -> None:
    """The neuron open in the grid above (layer 1), added to the neurons to silence."""
    j, picked_now = st.session_state.get(NEURON), list(st.session_state.get(EDIT_UNITS, []))
    if j is not None and j not in picked_now and j not in silenced(state.network_edits.edits, 1):
        st.session_state[EDIT_UNITS] = picked_now + [int(j)]


def _set_weight() -> None:
    box = state.network_edits
    ss = st.session_state
    box.edits = box.edits + (SetWeight(int(ss[EDIT_W]), int(ss[EDIT_I]), int(ss[EDIT_J]), float(ss[EDIT_VALUE])),)


def _undo(all_of_them: bool) -> None:
    box = state.network_edits
    box.edits = () if all_of_them else box.edits[:-1]


def edited_outcomes(edits: tuple):
    """(before, after, the edited parameters): the engine's forward pass of the parameters shown,
    and of a copy with ``edits`` applied, on the validation images."""
    before = memo.get("surgery:before", (split, params), lambda: outcome_of(vals[f"A{L}"], val_y))
    if not edits:
        return before, before, params
    edited = memo.get("surgery:params", (params, edits), lambda: apply(params, edits))
    return before, memo.get("surgery:after", (split, edited), lambda: outcome(net, edited, val_X, val_y)), edited


@st.fragment
def edit_section() -> None:
    st.subheader("Edit the network and see", anchor=EDIT_ANCHOR)
    sizes = net.sizes
    prose("What does the network do without some of its neurons, or with one weight changed? Silence "
          "hidden neurons or set a weight, and the validation accuracy, the recall of each digit and the "
          "image picked above are computed again at once, by the same forward pass.\n\n"
          f"**Silencing** neuron *j* of `A1` sets its outgoing weights `W2[j, :]` to 0: nothing it computes "
          f"reaches the layer above, so `Z2 = A1 @ W2 + b2` is what it would be with `A1[:, j] = 0`, "
          f"whatever the activation" + (" (likewise " + ", ".join(f"`A{l}` with `W{l + 1}`" for l in range(2, L)) + ")" if L > 2 else "") + ". "
          f"Zeroing its incoming weights `W1[:, j]` and `b1[j]` instead would leave `A1[:, j] = f(0)`: 0 for "
          f"ReLU and tanh, but 0.5 for the sigmoid, which would still pass `0.5·W2[j, :]` on.")
    st.caption(f"An experiment on a **copy** of the parameters shown (epoch {at_epoch}): the session's network, "
               f"its trainer and any training run are untouched. The edits are forgotten when another network "
               f"is opened.")
    edits = state.network_edits.of(ws.trainer)
    before, after, edited = edited_outcomes(edits)
    left, right = st.columns([1, 1.5], gap="large")
    with left:
        what = st.radio("Edit", ["silence", "weight"], horizontal=True, key="edit_what",
                        format_func={"silence": "silence neurons", "weight": "set a weight"}.get)
        if what == "silence":
            layer = st.selectbox("Layer", list(range(1, L)), key=EDIT_LAYER,
                                 format_func=lambda l: f"A{l} (hidden layer {l}, {sizes[l]} neurons)")
            off = silenced(edits, layer)
            options = [j for j in range(sizes[layer]) if j not in off]
            if any(j not in options for j in st.session_state.get(EDIT_UNITS, [])):   # another layer or network
                st.session_state[EDIT_UNITS] = []
            st.multiselect(f"Neurons of A{layer} to silence", options, key=EDIT_UNITS,
                           placeholder="pick one or more", help="Neuron j of layer 1 is the picture j in the grid above.")
            b1, b2 = st.columns(2)
            b1.button("Silence them", key="edit_silence_btn", on_click=_silence,
                      disabled=not st.session_state.get(EDIT_UNITS), use_container_width=True)
            if layer == 1:
                b2.button("+ open neuron", key="edit_add_open", on_click=_add_open_neuron,
                          use_container_width=True, help="Add the neuron open in the grid of layer 1 above "
                                                         "(clicked, or typed in its Neuron box).")
            if off:
                st.caption(f"Silenced in A{layer}: {', '.join(map(str, off))}.")
        else:
            l = int(st.selectbox("Weight matrix", list(range(1, L + 1)), key=EDIT_W,
                                 format_func=lambda l: f"W{l} ({sizes[l - 1]}×{sizes[l]})"))
            for key, n in ((EDIT_I, sizes[l - 1]), (EDIT_J, sizes[l])):   # another matrix may be smaller
                if not 0 <= st.session_state.get(key, 0) < n:
                    st.session_state[key] = 0
            c1, c2 = st.columns(2)
            i = int(c1.number_input(f"i ({'pixel of X' if l == 1 else f'unit of A{l - 1}'}, 0–{sizes[l - 1] - 1})",
                                    0, sizes[l - 1] - 1, key=EDIT_I))
            j = int(c2.number_input(f"j (unit of Z{l}, 0–{sizes[l] - 1})", 0, sizes[l] - 1, key=EDIT_J))
            was, now = float(params[f"W{l}"][i, j]), float(edited[f"W{l}"][i, j])
            st.markdown(f"`W{l}[{i}, {j}]` is **{was:+.4f}**" +
                        (f", **{now:+.4f}** after the edits so far." if now != was else ".") +
                        (f" Pixel {i} is 0 in every validation image, so this weight cannot change their "
                         f"answers." if l == 1 and not val_X[:, i].any() else ""))
            st.number_input("New value", -MAX_WEIGHT, MAX_WEIGHT, value=0.0, step=0.1, format="%.4f", key=EDIT_VALUE)
            st.button("Set the weight", key="edit_weight_btn", on_click=_set_weight)
        st.markdown("**Edits applied**, in order:" if edits else "**No edits yet**: after = before.")
        if edits:
            with st.container(height=160, border=False) if len(edits) > 5 else st.container(border=False):
                st.markdown("\n".join(f"{k}. `{e.label}`" for k, e in enumerate(edits, 1)))
        u1, u2 = st.columns(2)
        u1.button("Undo last", key="edit_undo", on_click=_undo, args=(False,), disabled=not edits,
                  use_container_width=True)
        u2.button("Undo all", key="edit_undo_all", on_click=_undo, args=(True,), disabled=not edits,
                  use_container_width=True)
    with right:
        delta = (after.accuracy - before.accuracy) * 100
        m1, m2 = st.columns(2)
        m1.metric("Validation accuracy after the edits", f"{after.accuracy:.1%}",
                  delta=f"{delta:+.1f} points" if edits and abs(delta) >= 0.05 else None,   # no arrow for no change
                  help="The same as before: these edits change no answer on the validation images."
                  if edits and abs(delta) < 0.05 else None)
        m2.metric("Before", f"{before.accuracy:.1%}")
        chart(st, before_after_bars(before.recall, after.recall, f"Recall of each digit on the {len(val_y):,} "
                                    f"validation images", "recall"), key="edit_recall",
              config={"displayModeBar": False})
    n = len(val_y)
    i = state.probe_image if state.probe_image is not None and 0 <= state.probe_image < n else 0
    p0, p1 = before.proba[i], after.proba[i]
    a, b = st.columns([1, 4])
    with a:
        chart(st, image_grid(val_X[i:i + 1] / 255, size=150), key="edit_img", config={"displayModeBar": False})
    with b:
        chart(st, before_after_bars(p0, p1, f"Validation image {i} (a {val_y[i]}, outlined): A{L} before and after",
                                    "probability", true=int(val_y[i]), height=230),
              key="edit_proba", config={"displayModeBar": False})
    d0, d1 = int(p0.argmax()), int(p1.argmax())
    st.markdown(f"Image {i}, a **{val_y[i]}**: the network said **{d0}** ({p0[d0]:.1%})"
                + (f"; edited, it says **{d1}** ({p1[d1]:.1%})." if edits else ".")
                + " Pick another image in *One image through the network* above.")


# --------------------------------------------------------------------------- representation
def layer_pca(name: str, p: dict, key: str):
    n = min(N_PCA, len(val_y))
    if name == "X":   # the pixels do not depend on the network
        return memo.get("pca:X", (split,), lambda: pca(val_X[:n].astype(np.float32) / 255))
    v = vals if p is params else memo.get(f"forward:validation:{key}", (split, p),
                                         lambda: activations(net, val_X[:n], p))
    return memo.get(f"pca:{name}:{key}", (split, p), lambda: pca(v[name][:n]))


@st.fragment
def representation_section() -> None:
    st.subheader("How the layers rearrange the digits")
    n = min(N_PCA, len(val_y))
    prose(f"Each of {n:,} validation images is a point: its pixels `X` (784 numbers), its `A1`, its "
          f"`A2`, … projected on the two directions along which those numbers vary most "
          f"(principal component analysis, by the SVD of the centred matrix). Colour = true digit, "
          f"a cross = misclassified. Lasso or box-select points (toolbar above the chart) to see their images.")
    names = ["X"] + HIDDEN
    cols = st.columns(len(names))
    events = []
    for col, name in zip(cols, names):
        fit = layer_pca(name, params, "now")
        with col:
            events.append(chart(st,
                pca_scatter(fit.coords, val_y[:n], val_pred[:n], title=f"{name} ({fit.mean.size} numbers)",
                            explained=fit.explained, show_legend=name == names[-1], height=380),
                key=f"pca_{name}", on_select="rerun", selection_mode=("points", "box", "lasso")))
    chosen = sorted({i for e in events for i in picked(e)})
    if chosen:
        show = chosen[:40]
        chart(st, image_grid(val_X[show] / 255, [f"{val_y[i]}→{val_pred[i]}" for i in show],
                             [f"validation image {i}" for i in show], **present.grid(20, 60)),
              key="pca_picked", config={"displayModeBar": False})
        st.caption(f"{len(chosen)} images selected" + (", showing 40" if len(chosen) > 40 else "") +
                   " (caption: true → predicted).")

    snaps = ws.trainer.snapshots
    epochs = [e for e in sorted(snaps) if e != ws.trainer.epoch or ws.trainer.step_in_epoch]
    if not epochs:
        return
    prose("**The same, during training.** Snapshots of the network taken while it trained, each "
          "projected on its own principal directions: the classes start as one cloud and pull apart.")
    s1, s2 = st.columns([1, 3])
    tag = id(ws.trainer)  # another network has other layers and snapshots
    layer = s1.selectbox("Layer", HIDDEN, index=len(HIDDEN) - 1, key=f"pca_snap_layer_{tag}")
    default = [e for e in epochs if e in (0, 1, 10, 100)]
    if len(default) < 2:
        default = epochs if len(epochs) <= 3 else [epochs[0], epochs[len(epochs) // 3], epochs[2 * len(epochs) // 3]]
    picked_epochs = s2.multiselect("Snapshot epochs (plus the network now)", epochs, default=default,
                                   key=f"pca_snap_epochs_{tag}", max_selections=5)
    panels = [(f"epoch {e}", snaps[e], f"e{e}") for e in sorted(picked_epochs)]
    panels.append((f"now (epoch {ws.trainer.epoch})", ws.net.params, "live"))
    cols = st.columns(len(panels))
    for col, (title, p, key) in zip(cols, panels):
        fit = layer_pca(layer, p, key)
        pred = (vals if p is params else memo.get(f"forward:validation:{key}", (split, p),
                                                   lambda: activations(net, val_X[:n], p)))[f"A{L}"][:n].argmax(1)
        acc = float((pred == val_y[:n]).mean())
        chart(col, pca_scatter(fit.coords, val_y[:n], pred, title=f"{title}: {acc:.0%} right",
                               show_legend=False, height=260, marker_size=4),
              key=f"pca_snap_{key}", config={"displayModeBar": False})


neurons_section()
st.divider()
one_image_section()
st.divider()
edit_section()
st.divider()
representation_section()
