"""Why, not only what: fold-outs that derive the backward pass's formulas, typeset, in the
names on screen (X, W1, Z1, A1, …, dZ3, dW1, m) of the network at hand.

API, for any page:

* ``fold_outs(sizes, activation, names=DERIVATIONS, m=None)`` draws one ``st.expander``
  (closed) per derivation named, in that order. ``sizes`` is the network's layer sizes
  (``ws.net.sizes`` or ``trace.sizes``: ``[784, 64, 64, 10]``), so the formulas name its
  real layers (``dZ3`` for three layers, ``dZ2`` for two); ``activation`` is its hidden
  layers' :class:`~core.engine.activations.Activation` (``ws.net.act`` or
  ``trace.activation``); ``m`` is the batch size written into the shapes ("m" when None).
* ``show(name, sizes, activation, m=None)`` draws one derivation's content without the
  expander, into whatever container is current (a column, a tab, a lesson's own expander:
  Streamlit does not nest expanders).
* ``DERIVATIONS`` names them, ``TITLES[name]`` gives an expander's title:

  - ``"softmax_ce"``: ``dZ_L = (A_L − Y)/m`` from softmax and the mean cross-entropy, with
    softmax's Jacobian and why it collapses;
  - ``"chain_rule"``: ``dA → dZ → dW, db`` one layer down from the output, shapes beside
    every line;
  - ``"activation"``: ReLU's derivative and its kink (and what the code does there), then the
    network's own activation when it is another one (from the registry's
    ``derivative_tex``/``derivative_why``, with the engine's own line of code);
  - ``"step"``: why ``ΔW = −η dW`` lowers the loss for a small η and can raise it for a
    large one (the learning-rate lesson's);
  - ``"batchnorm"``: batch norm's backward pass, ``dγ, dβ, dẐ`` and ``dZ`` through the batch's
    mean and variance, and why ``db`` is exactly 0 (for a network trained with it).

The sentences between the formulas are drawn with ``st.markdown``, not ``ui.present.prose``:
a fold-out is opened on purpose, and a derivation without its words is not one, so they stay in
presentation mode too. Nothing here reads or writes ``st.session_state``.
"""
from __future__ import annotations

import streamlit as st

from core.engine.activations import RELU, Activation
from core.engine.network import BN_MOMENTUM

DERIVATIONS = ("softmax_ce", "chain_rule", "activation", "step", "batchnorm")


def _t(name: str, l: int) -> str:
    """A layer's quantity as LaTeX: ("dZ", 3) → dZ_{3}; ("A", 0) → X (the input is layer 0)."""
    return "X" if name == "A" and l == 0 else f"{name}_{{{l}}}"


def _at(name: str, l: int, idx: str) -> str:
    """One entry: ("Z", 3, "ik") → Z_{3,ik}; ("A", 0, "ik") → X_{ik}."""
    return f"X_{{{idx}}}" if name == "A" and l == 0 else f"{name}_{{{l},{idx}}}"


def _plain(name: str, l: int) -> str:
    """The same as on screen in plain text: ("dZ", 3) → dZ3, ("A", 0) → X."""
    return "X" if name == "A" and l == 0 else f"{name}{l}"


def _m(m: int | None) -> str:
    return "m" if m is None else str(int(m))


def titles(sizes, batchnorm: bool = False) -> dict[str, str]:
    L = len(sizes) - 1
    P = "N" if batchnorm else "Z"       # what the activation is applied to (batch norm: N = γ ⊙ Ẑ + β)
    return {
        "softmax_ce": f"Why dZ{L} = (A{L} − Y)/m: softmax and cross-entropy, derived",
        "chain_rule": f"Why dA{L - 1} = dZ{L} W{L}ᵀ, d{P}{L - 1} = dA{L - 1} ⊙ g′({P}{L - 1}), "
                      f"dW{L - 1} = {_plain('A', L - 2)}ᵀ dZ{L - 1}: the chain rule, with shapes",
        "activation": "Why the slope of the activation is what it is (and ReLU's kink at 0)",
        "step": "Why a small step against the gradient lowers the loss, and a large one may not",
        "batchnorm": f"Batch norm's backward pass: dγ, dβ, and why dZ{L - 1} is not just dẐ{L - 1}/σ (and db{L - 1} = 0)",
    }


def fold_outs(sizes, activation: Activation, names=DERIVATIONS, m: int | None = None,
              batchnorm: bool = False) -> None:
    """One closed expander per derivation in ``names`` (see the module's docstring); ``batchnorm``:
    the network normalises its hidden layers, so the activation takes N, not Z."""
    heads = titles(sizes, batchnorm)
    for name in names:
        with st.expander(heads[name], icon=":material/function:"):
            if name == "chain_rule" and batchnorm:
                l = len(sizes) - 2
                st.info(rf"With batch norm the activation is applied to $N_{{{l}}} = \gamma_{{{l}}} \odot "
                        rf"\hat Z_{{{l}}} + \beta_{{{l}}}$, not to $Z_{{{l}}}$: below, read $g(Z_{{{l}}})$ as "
                        rf"$g(N_{{{l}}})$ and $dZ_{{{l}}} = dA_{{{l}}} \odot g'(\cdot)$ as $dN_{{{l}}}$. Batch norm's "
                        rf"own fold-out takes $dN_{{{l}}}$ on to $dZ_{{{l}}}$; from there $dW_{{{l}}}$ and "
                        rf"$db_{{{l}}}$ follow as shown.", icon=":material/info:")
            show(name, sizes, activation, m)


def show(name: str, sizes, activation: Activation, m: int | None = None) -> None:
    """One derivation's content, in the current container."""
    if name not in _SHOW:
        raise ValueError(f"No derivation named {name!r}; there are {DERIVATIONS}.")
    _SHOW[name](list(sizes), activation, _m(m))


# --------------------------------------------------------------------------- 1 · softmax + cross-entropy
def _softmax_ce(sizes, act, m) -> None:
    L, K = len(sizes) - 1, sizes[-1]
    Z, A, dZ = _t("Z", L), _t("A", L), _t("dZ", L)
    st.markdown(f"Take one sample, row $i$ of the batch. The output layer turns its {K} scores $Z_{{{L},i}}$ into "
                f"probabilities with softmax, and the loss is minus the log of the probability of the true digit "
                f"$y_i$. With the one-hot row $Y_i$ ($Y_{{ic}} = 1$ for $c = y_i$, else 0) that is a sum over the "
                f"digits $c$:")
    st.latex(rf"{_at('A', L, 'ic')} = \frac{{e^{{{_at('Z', L, 'ic')}}}}}{{\sum_k e^{{{_at('Z', L, 'ik')}}}}}, \qquad "
             rf"L_i = -\log {_at('A', L, 'i y_i')} = -\sum_c Y_{{ic}} \log {_at('A', L, 'ic')}, \qquad "
             rf"L = \frac{{1}}{{m}} \sum_i L_i")
    st.markdown(f"**Step 1: softmax's Jacobian.** Every probability of the row depends on every score of the row. "
                f"Write $S = \\sum_k e^{{{_at('Z', L, 'ik')}}}$ and use the quotient rule on $e^{{{_at('Z', L, 'ic')}}}/S$, whose "
                f"numerator depends on ${_at('Z', L, 'ik')}$ only when $c = k$ and whose denominator always does "
                f"($\\partial S/\\partial {_at('Z', L, 'ik')} = e^{{{_at('Z', L, 'ik')}}}$):")
    st.latex(rf"c = k:\ \frac{{e^{{{_at('Z', L, 'ic')}}} S - e^{{{_at('Z', L, 'ic')}}} e^{{{_at('Z', L, 'ik')}}}}}{{S^2}} "
             rf"= {_at('A', L, 'ic')} - {_at('A', L, 'ic')} {_at('A', L, 'ik')}, \qquad "
             rf"c \ne k:\ \frac{{0 - e^{{{_at('Z', L, 'ic')}}} e^{{{_at('Z', L, 'ik')}}}}}{{S^2}} = -{_at('A', L, 'ic')} {_at('A', L, 'ik')}")
    st.latex(rf"\text{{together:}}\quad \frac{{\partial {_at('A', L, 'ic')}}}{{\partial {_at('Z', L, 'ik')}}} "
             rf"= {_at('A', L, 'ic')} \bigl(\mathbf{{1}}[c = k] - {_at('A', L, 'ik')}\bigr)")
    st.markdown(f"A {K} × {K} matrix for every sample: $A(1 - A)$ on the diagonal, $-A_c A_k$ off it.")
    st.markdown("**Step 2: the loss against the probabilities.** Only the log depends on them:")
    st.latex(rf"\frac{{\partial L_i}}{{\partial {_at('A', L, 'ic')}}} = -\frac{{Y_{{ic}}}}{{{_at('A', L, 'ic')}}}")
    st.markdown("**Step 3: the chain rule**, summing over every probability $c$ that the score $k$ moves:")
    st.latex(rf"\begin{{aligned}} \frac{{\partial L_i}}{{\partial {_at('Z', L, 'ik')}}} "
             rf"&= \sum_c \frac{{\partial L_i}}{{\partial {_at('A', L, 'ic')}}} \frac{{\partial {_at('A', L, 'ic')}}}{{\partial {_at('Z', L, 'ik')}}} "
             rf"= \sum_c -\frac{{Y_{{ic}}}}{{{_at('A', L, 'ic')}}}\, {_at('A', L, 'ic')} \bigl(\mathbf{{1}}[c = k] - {_at('A', L, 'ik')}\bigr) \\ "
             rf"&= -Y_{{ik}} + {_at('A', L, 'ik')} \sum_c Y_{{ic}} = {_at('A', L, 'ik')} - Y_{{ik}} \end{{aligned}}")
    st.markdown(f"**Why it collapses.** The $1/{_at('A', L, 'ic')}$ that the log brings cancels the ${_at('A', L, 'ic')}$ in front "
                "of softmax's Jacobian, and a one-hot row sums to 1 ($\\sum_c Y_{ic} = 1$). What is left is the "
                "probability minus the truth: the whole Jacobian never has to be built.")
    st.markdown(f"**Step 4: the mean.** $L$ is the mean of the $m$ losses, so each sample's part is divided by "
                f"$m$. For the whole batch at once:")
    st.latex(rf"{dZ} = \frac{{\partial L}}{{\partial {Z}}} = \frac{{1}}{{m}} \bigl({A} - Y\bigr) "
             rf"\qquad ({m} \times {K})")
    st.markdown(f"The engine computes exactly that, `dZ{L} = (A{L} - Y) / m` (in `core/engine/network.py`: "
                f"`dZ = Aout - Y`, then `dZ *= 1/m`), never the {K} × {K} Jacobians. The same result comes in one "
                f"line from the way the engine computes the loss, $L_i = \\log \\sum_k e^{{{_at('Z', L, 'ik')}}} - "
                f"{_at('Z', L, 'i y_i')}$: the first term's derivative by ${_at('Z', L, 'ik')}$ is ${_at('A', L, 'ik')}$, the second's "
                f"is $Y_{{ik}}$.")


# --------------------------------------------------------------------------- 2 · the chain rule, one layer down
def _chain_rule(sizes, act, m) -> None:
    L = len(sizes) - 1
    l = L - 1                                  # the layer below the output: every network has one
    n_prev, n_l, n_out = sizes[l - 1], sizes[l], sizes[L]
    below = _t("A", l - 1)
    st.markdown(f"Start from ${_t('dZ', L)}$ (the fold-out above) and go one layer down. Everything follows "
                f"from the forward equations, entry by entry; $i$ is a sample, $j$, $k$ are units:")
    st.latex(rf"{_t('Z', L)} = {_t('A', l)}\, {_t('W', L)} + {_t('b', L)}, \quad "
             rf"{_at('Z', L, 'ij')} = \sum_k {_at('A', l, 'ik')}\, {_at('W', L, 'kj')} + {_at('b', L, 'j')}, "
             rf"\qquad {_t('A', l)} = g({_t('Z', l)})")
    st.markdown(f"**The weights.** ${_at('W', L, 'kj')}$ appears in column $j$ of every row of ${_t('Z', L)}$, "
                f"multiplied by ${_at('A', l, 'ik')}$; the chain rule adds up over the samples:")
    st.latex(rf"{_at('dW', L, 'kj')} = \sum_i {_at('A', l, 'ik')}\, {_at('dZ', L, 'ij')} "
             rf"\;\Longrightarrow\; {_t('dW', L)} = {_t('A', l)}^\top {_t('dZ', L)} "
             rf"\qquad ({n_l} \times {m})({m} \times {n_out}) = ({n_l} \times {n_out})")
    st.latex(rf"{_at('db', L, 'j')} = \sum_i {_at('dZ', L, 'ij')} \quad \text{{(column sums)}} "
             rf"\qquad ({n_out}{{,}})")
    st.markdown(f"**Down a layer.** ${_at('A', l, 'ik')}$ feeds every unit $j$ of the layer above, through "
                f"${_at('W', L, 'kj')}$; its blame is the sum of what it sent:")
    st.latex(rf"{_at('dA', l, 'ik')} = \sum_j {_at('dZ', L, 'ij')}\, {_at('W', L, 'kj')} "
             rf"\;\Longrightarrow\; {_t('dA', l)} = {_t('dZ', L)}\, {_t('W', L)}^\top "
             rf"\qquad ({m} \times {n_out})({n_out} \times {n_l}) = ({m} \times {n_l})")
    st.markdown(f"**Through the activation.** $A = g(Z)$ entry by entry, so each entry of "
                f"${_t('dA', l)}$ is multiplied by the slope at its own entry of ${_t('Z', l)}$ (an elementwise "
                f"product ⊙, no sum). Your network's {act.label}:")
    st.latex(rf"{_t('dZ', l)} = {_t('dA', l)} \odot g'({_t('Z', l)}) \qquad ({m} \times {n_l}), "
             rf"\qquad \text{{here }} {act.grad_latex.format(l=l)}")
    st.markdown("**The same two lines again**, one layer lower:")
    st.latex(rf"{_t('dW', l)} = {below}^\top {_t('dZ', l)} \qquad ({n_prev} \times {m})({m} \times {n_l}) "
             rf"= ({n_prev} \times {n_l}), \qquad {_t('db', l)} = \sum_i {_at('dZ', l, 'i')} \qquad ({n_l}{{,}})")
    rest = (f"These four lines repeat down to layer 1, whose input is $X$: $dW_{{1}} = X^\\top dZ_{{1}}$. "
            if l > 1 else "Layer 1's input is $X$, so that was the last layer. ")
    st.markdown(rest + "$dX$ is never computed: no weight sits below it. Two checks that catch most mistakes: "
                "every gradient has the shape of its quantity ($dW$ of $W$, $dA$ of $A$), and a transpose goes "
                "wherever the shapes need one to multiply.")


# --------------------------------------------------------------------------- 3 · the activation's slope
def _activation(sizes, act, m) -> None:
    L = len(sizes) - 1
    l = L - 1
    st.markdown(f"Your network's hidden layers use **{act.label}**"
                + (", the seed's activation." if act is RELU else
                   f"; the seed's network uses ReLU, shown first."))
    for a in (RELU,) + (() if act is RELU else (act,)):
        _slope(a, l)


def _slope(a: Activation, l: int) -> None:
    st.markdown(f"**{a.label}**")
    if a.derivative_tex:
        st.latex(a.derivative_tex)
    if a.derivative_why:
        st.markdown(a.derivative_why)
    st.latex(a.grad_latex.format(l=l))
    if a.dz_numpy:
        code = a.dz_numpy.format(dA=f"dA{l}", Z=f"Z{l}", A=f"A{l}")
        st.markdown(f"The engine's line for it (`core/engine/activations.py`), with layer {l}'s names: "
                    f"`dZ{l} = {code}`")


# --------------------------------------------------------------------------- 4 · the step
def _step(sizes, act, m) -> None:
    L = len(sizes) - 1
    W, dW = _t("W", 1), _t("dW", 1)
    st.markdown("Near the parameters the step starts from, the loss is close to its tangent plane plus a curve. "
                f"Summed over every parameter ($W_{{1}}, b_{{1}}, \\dots, W_{{{L}}}, b_{{{L}}}$), Taylor's "
                "expansion to second order:")
    st.latex(r"L(W + \Delta W) \approx L(W) + \underbrace{\textstyle\sum dW \cdot \Delta W}_{\text{first order}} "
             r"+ \underbrace{\tfrac{1}{2}\, \Delta W^\top H\, \Delta W}_{\text{curvature}}")
    st.markdown("$dW \\cdot \\Delta W$ is the sum of the products of matching entries, and $H$ holds the second "
                "derivatives (the loss's curvature). Put SGD's step $\\Delta W = -\\eta\\, dW$ in:")
    st.latex(r"L(W - \eta\, dW) \approx L(W) - \eta \sum \lVert dW \rVert^2 + \tfrac{1}{2}\, \eta^2\, "
             r"dW^\top H\, dW")
    st.markdown("The first-order term is negative whatever the gradient: a small enough step against the gradient "
                "always goes downhill, by about $\\eta \\sum \\lVert dW\\rVert^2$. The curvature term grows with "
                "$\\eta^2$: for a large $\\eta$ it wins, the step overshoots the valley's floor and the loss goes "
                "up. Along one direction of curvature $h$, the loss falls only for $0 < \\eta < 2/h$, fastest at "
                "$\\eta = 1/h$. Step after step, the most curved direction sets the limit for all: past $2/h$ there, "
                "every step makes that direction's error larger, and the weights blow up.")
    st.markdown(f"The step's size against the weights is the update-to-weight ratio, for SGD "
                f"$\\lVert \\Delta {W} \\rVert / \\lVert {W} \\rVert = \\eta\\, \\lVert {dW} \\rVert / "
                f"\\lVert {W} \\rVert$: proportional to $\\eta$. Around $10^{{-3}}$ each step changes the weights "
                "a little; near 1 it rewrites them.")


# --------------------------------------------------------------------------- 5 · batch norm
def _batchnorm(sizes, act, m) -> None:
    L = len(sizes) - 1
    l = L - 1
    n = sizes[l]
    Z, Zh, N, A = _t("Z", l), rf"\hat Z_{{{l}}}", _t("N", l), _t("A", l)
    g, b, mu, var = rf"\gamma_{{{l}}}", rf"\beta_{{{l}}}", rf"\mu_{{{l}}}", rf"\sigma^2_{{{l}}}"
    st.markdown(f"With batch norm, layer {l} normalises each unit's weighted inputs over the batch before its "
                rf"activation. For unit $j$, over the $m$ samples $i$ of the batch ($\epsilon = 10^{{-5}}$):")
    st.latex(rf"{mu} = \frac{{1}}{{m}} \sum_i Z_{{{l},ij}}, \quad {var} = \frac{{1}}{{m}} \sum_i (Z_{{{l},ij}} - {mu})^2, "
             rf"\quad \hat Z_{{{l},ij}} = \frac{{Z_{{{l},ij}} - {mu}}}{{\sqrt{{{var} + \epsilon}}}}, \quad "
             rf"N_{{{l},ij}} = \gamma_{{{l},j}} \hat Z_{{{l},ij}} + \beta_{{{l},j}}, \quad {A} = g({N})")
    st.markdown(f"**The activation.** The chain rule of the fold-out above reaches ${N}$ now, not ${Z}$: "
                rf"${_t('dN', l)} = {_t('dA', l)} \odot g'({N})$ ({m} × {n}).")
    st.markdown("**γ and β** act on every sample alike, so their gradients are column sums, like a bias's:")
    st.latex(rf"d\gamma_{{{l},j}} = \sum_i dN_{{{l},ij}}\, \hat Z_{{{l},ij}}, \qquad "
             rf"d\beta_{{{l},j}} = \sum_i dN_{{{l},ij}}, \qquad d\hat Z_{{{l}}} = {_t('dN', l)} \odot {g} "
             rf"\qquad ({n}{{,}}),\ ({n}{{,}}),\ ({m} \times {n})")
    st.markdown(rf"**Through the normalisation.** Here is the new part: $\hat Z_{{{l},kj}}$ depends on *every* "
                rf"$Z_{{{l},ij}}$ of its column, through ${mu}$ and ${var}$. Write $s = 1/\sqrt{{{var} + \epsilon}}$ "
                "(one unit, its index $j$ left out). The three pieces:")
    st.latex(rf"\frac{{\partial \hat Z_k}}{{\partial Z_i}} = s\,\Bigl(\mathbf{{1}}[k = i] - \frac{{1}}{{m}}\Bigr) "
             rf"- \frac{{s}}{{m}}\, \hat Z_k \hat Z_i, \qquad \text{{from}}\ \frac{{\partial \mu}}{{\partial Z_i}} = "
             rf"\frac{{1}}{{m}},\ \ \frac{{\partial \sigma^2}}{{\partial Z_i}} = \frac{{2}}{{m}}(Z_i - \mu)")
    st.markdown("Summing over every $k$ that $Z_i$ moves:")
    st.latex(rf"dZ_i = \sum_k d\hat Z_k \frac{{\partial \hat Z_k}}{{\partial Z_i}} "
             rf"= \frac{{s}}{{m}} \Bigl(m\, d\hat Z_i - \sum_k d\hat Z_k - \hat Z_i \sum_k d\hat Z_k \hat Z_k\Bigr)")
    st.markdown("The first term is the blame scaled, as if μ and σ² were constants. The second takes out the "
                "column's mean blame: moving every Z of the unit up together changes nothing once the mean is "
                r"subtracted. The third takes out the part along $\hat Z$: stretching the column changes nothing "
                "once it is divided by its spread. The engine computes exactly this for the whole matrix "
                "(`core/engine/network.py`, `_normalise_backward`); the gradient check on this page agrees.")
    st.markdown(rf"**Why $db_{{{l}}} = 0$.** Sum $dZ_i$ over the batch: the first two terms cancel ($m \sum_i d\hat Z_i - "
                rf"m \sum_k d\hat Z_k$) and the third is $\sum_i \hat Z_i = 0$ times a number. So "
                rf"$db_{{{l}}} = \sum_i dZ_{{{l},i}} = 0$ exactly: $b_{{{l}}}$ shifts the column and μ shifts with it. "
                r"The engine stores 0; $\beta$ does the bias's job.")
    st.markdown("**At evaluation** there may be one image, so no batch to take a mean of: the network normalises "
                rf"with running averages of μ and σ² instead ($\mu^{{\mathrm{{run}}}} \leftarrow {BN_MOMENTUM:g}\, "
                rf"\mu^{{\mathrm{{run}}}} + {1 - BN_MOMENTUM:.1g}\, \mu$ at every training step), which no gradient reaches.")


_SHOW = {"softmax_ce": _softmax_ce, "chain_rule": _chain_rule, "activation": _activation, "step": _step,
         "batchnorm": _batchnorm}
TITLES = titles([784, 64, 64, 10])     # the seed network's; titles(sizes) for another depth
