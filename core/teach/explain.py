"""How was this one number computed? Breakdowns of single cells of a step's trace.

:func:`explain` takes a trace, the name of one of its quantities and an index,
and rebuilds that one number from the numbers that made it, the way the
engine did:

    Z1[i, j]  = Σ_k X[i, k]·W1[k, j] + b1[j]          one term per input pixel
    dW1[k, j] = Σ_i X[i, k]·dZ1[i, j]                  one term per sample
    dA2[i, j] = Σ_c dZ3[i, c]·W3[j, c]                 one term per unit above
    A3[i, c]  = e^{Z3[i, c] − max} / Σ_k e^{Z3[i, k] − max}
    ...

The terms are sorted by the size of their contribution, so a student sees
which few pixels (or samples, or units) mattered. The total is recomputed in
float64 and set beside the value the step stored: on a float64 network they
agree to about 1e-15; on the app's float32 network, to float32 rounding.

Pure NumPy: no Streamlit, no plotly.
"""
from __future__ import annotations

import math

import numpy as np

# the record and the LaTeX helpers live with the engine, whose optimizers explain their own updates
from core.engine.explained import TRACE_NAME as _NAME, Explanation, Term, by_size as _sorted, \
    cell_label as _lab, tex_cell as _cell, tex_factor as _p, tex_name, tex_num
from core.engine.network import BN_EPS, BN_MOMENTUM, IMAGE_SIDE, RUN, Trace
from core.engine.optim import OPTIMIZERS, UpdateCell, from_hyper


def _sum_text(terms: tuple[Term, ...], shown: int = 3, extra: str = "") -> str:
    """``0.12 + (−0.05) + … `` with the largest terms written out and the rest summed."""
    written = [t for t in terms[:shown] if t.value != 0]    # zero terms are folded into the rest
    parts = [r" \cdot ".join(_p(f) for f in t.factors) if t.factors else _p(t.value) for t in written]
    rest = terms[len(written):]
    if rest:
        parts.append(r"\underbrace{\cdots}_{%d\ \text{more} \,=\, %s}" % (len(rest), tex_num(math.fsum(t.value for t in rest))))
    s = " + ".join(parts) if parts else "0"
    return s + extra


# --------------------------------------------------------------------------- the breakdowns
def explain(trace: Trace, name: str, index=(), optimizer=None) -> Explanation:
    """How the cell ``trace[name][index]`` was computed.

    ``optimizer`` is the optimizer *as it was before the step* (a workspace's
    ``StepRecord.optimizer_before``); it is needed to rebuild ΔW of an optimizer
    that keeps state (momentum, Adam), which the trace does not hold. Without
    it, a stateless optimizer (SGD) is rebuilt from ``trace.hyper`` and the
    rules of the others are described.
    """
    if name not in trace:
        raise KeyError(f"{name!r} is not in this trace.")
    a = np.asarray(trace[name])
    index = tuple(int(i) for i in np.atleast_1d(index)) if a.ndim else ()
    if len(index) != a.ndim or any(not 0 <= i < n for i, n in zip(index, a.shape)):
        raise IndexError(f"{name} has shape {a.shape}; {index} is not one of its cells.")
    value = float(a[index])
    L = trace.n_layers
    m = _NAME.match(name)
    pre, sym, l, run, new = m.groups() if m else (None, None, None, None, None)
    l = int(l) if l else None

    if name in ("X", "y") or (pre is None and sym in ("W", "b", "γ", "β") and not new) or (run and not new):
        return _input(trace, name, index, value)
    if run:
        return _running(trace, name.removesuffix(RUN + "_new"), index, value)
    if name == "losses":
        return _sample_loss(trace, index[0], value, L)
    if name == "loss":
        return _mean_loss(trace, value)
    if name == "Y":
        i, c = index
        yi = int(trace["y"][i])
        total = float(yi == c)
        return Explanation(name, index, rf"Y[{i}, {c}] = \mathbf{{1}}[y_{{{i}}} = {c}]",
                           rf"= \mathbf{{1}}[{yi} = {c}] = {tex_num(total)}",
                           (Term(f"1[y[{i}] = {c}]", total),), total, value,
                           f"Sample {i} is a {yi}: its row of Y is 1 in column {yi} and 0 elsewhere.", "one-hot")
    if pre is None and sym == "Z":
        return _pre_activation(trace, l, index, value)
    if pre is None and sym == "M":
        return _mask(trace, l, index, value)
    if pre is None and sym in _BATCHNORM:
        return _BATCHNORM[sym](trace, l, index, value)
    if pre == "d" and sym in _BATCHNORM_GRAD:
        return _BATCHNORM_GRAD[sym](trace, l, index, value)
    if pre == "d" and sym == "Z" and l < L and trace.batchnorm:
        return _normalise_grad(trace, l, index, value)
    if pre is None and sym == "A":
        return _softmax(trace, l, index, value) if l == L else _activation(trace, l, index, value)
    if pre == "d" and sym == "Z":
        return _output_error(trace, l, index, value) if l == L else _hidden_error(trace, l, index, value)
    if pre == "d" and sym == "W":
        return _weight_grad(trace, l, index, value)
    if pre == "d" and sym == "b":
        return _bias_grad(trace, l, index, value)
    if pre == "d" and sym == "A":
        return _activation_grad(trace, l, index, value)
    if pre == "Δ":
        return _update(trace, f"{sym}{l}", index, value, optimizer)
    if new:
        return _new_param(trace, f"{sym}{l}", index, value)
    raise KeyError(f"No breakdown for {name!r}.")


def _input(trace, name, index, value) -> Explanation:
    cell = _cell(name, index)
    if name == "X":
        i, k = index
        grey = value * 255
        note = (f"Pixel {k} of image {i} (row {k // IMAGE_SIDE}, column {k % IMAGE_SIDE} of the {IMAGE_SIDE}×{IMAGE_SIDE} picture): "
                f"grey level {grey:.0f} of 255. Not computed by the step: it is the data.")
        return Explanation(name, index, rf"{cell} = \mathrm{{pixel}} / 255",
                           rf"= {tex_num(grey)} / 255 = {tex_num(value)}", (Term(f"pixel {k} / 255", value),),
                           value, value, note, "input")
    if name == "y":
        return Explanation(name, index, rf"y_{{{index[0]}}}", rf"= {int(value)}", (Term("label", value),),
                           value, value, f"The true digit of sample {index[0]}: data, not computed.", "input")
    if name.endswith(RUN):
        note = (f"Batch norm's running statistic before this step (the {name}_new of the step before, or its "
                f"initial value). The training step does not use it: it normalises with the batch's own "
                f"{name.removesuffix(RUN)}; evaluation and prediction do. It is averaged with this batch's in {name}_new.")
    else:
        note = (f"A parameter: the value {name} had before this step (the {name}_new of the step before, "
                "or its initial value). The forward pass reads it; this step computes no new value for it "
                f"until {name}_new.")
    return Explanation(name, index, cell, rf"= {tex_num(value)}", (Term(_lab(name, *index), value),),
                       value, value, note, "input")


def _pre_activation(trace, l, index, value) -> Explanation:
    i, j = index
    prev = "X" if l == 1 else f"A{l - 1}"
    A = np.asarray(trace[prev][i], np.float64)
    W = np.asarray(trace[f"W{l}"][:, j], np.float64)
    b = float(trace[f"b{l}"][j])
    products = A * W
    terms = [Term(f"{_lab(prev, i, k)}·{_lab(f'W{l}', k, j)}", float(products[k]), (float(A[k]), float(W[k])))
             for k in range(len(A))]
    terms = list(_sorted(terms)) + [Term(_lab(f"b{l}", j), b)]
    total = math.fsum(products) + b
    nz = int(np.count_nonzero(products))
    what = "pixels" if l == 1 else f"units of layer {l - 1}"
    rule = rf"{_cell(f'Z{l}', index)} = \sum_{{k=0}}^{{{len(A) - 1}}} {tex_name(prev)}[{i}, k]\, W_{{{l}}}[k, {j}] + b_{{{l}}}[{j}]"
    sub = "= " + _sum_text(tuple(terms[:-1]), extra=f" + {_p(b)}") + f" = {tex_num(total)}"
    note = (f"Unit {j} of layer {l} weighs each of the {len(A)} {what} of sample {i} by its weight and adds its bias. "
            f"{nz} of the {len(A)} products are non-zero" +
            (" (a zero pixel contributes nothing, whatever its weight)." if l == 1 else
             " (a unit that did not fire below contributes nothing)."))
    return Explanation(f"Z{l}", index, rule, sub, tuple(terms), total, value, note, "sum")


def _mask(trace, l, index, value) -> Explanation:
    i, j = index
    p = trace.dropout
    kept = value != 0
    rule = rf"{_cell(f'M{l}', index)} = \frac{{\mathbf{{1}}[\text{{kept}}]}}{{1 - p}}"
    sub = (rf"= \frac{{1}}{{1 - {tex_num(p)}}} = {tex_num(value)}" if kept else r"= 0 \quad (\text{dropped})")
    note = (f"Dropout drew this at random (p = {p:g}): unit {j} of layer {l} was "
            + (f"kept for sample {i} and its output is scaled by 1/(1 − p) = {value:.4g}, so the layer's mean "
               "output is what it would be without dropout." if kept else
               f"dropped for sample {i}: it outputs 0 in this step and gets no gradient back.")
            + " Not computed from other numbers: each training step draws its own mask.")
    return Explanation(f"M{l}", index, rule, sub, (Term(_lab(f"M{l}", *index), value),), value, value, note, "input")


def _activation(trace, l, index, value) -> Explanation:
    act = trace.activation
    pre = trace.pre(l)      # Z_l, or N_l with batch norm
    z = float(trace[pre][index])
    total = float(act.f(np.asarray(z, np.float64)))   # the engine's own f, on this one cell in float64
    cell, zc = _cell(f"A{l}", index), _cell(pre, index)
    rule = rf"{cell} = " + act.cell_latex.format(z=zc)
    sub = "= " + act.cell_latex.format(z=_p(z)) + f" = {tex_num(total)}"
    term = Term(f"{act.key}({_lab(pre, *index)})", total, (z,))
    if f"M{l}" not in trace:
        return Explanation(f"A{l}", index, rule, sub, (term,), total, value, act.a_note(z), act.key)
    mask = float(trace[f"M{l}"][index])     # dropout: the activation times this step's mask
    rule = rf"{cell} = {_cell(f'M{l}', index)} \cdot " + act.cell_latex.format(z=zc)
    sub = rf"= {tex_num(mask)} \cdot " + act.cell_latex.format(z=_p(z)) + f" = {tex_num(mask * total)}"
    note = act.a_note(z) + (f" Dropout kept this unit, scaled by M{l} = {mask:.4g}." if mask else
                            f" But dropout dropped this unit in this step (M{l} = 0): it passes nothing on.")
    return Explanation(f"A{l}", index, rule, sub, (Term(f"M{l}·{term.label}", mask * total, (mask, total)),),
                       mask * total, value, note, act.key, ((f"{act.key}({pre}) before the mask", total),))


def _softmax(trace, l, index, value) -> Explanation:
    i, c = index
    z = np.asarray(trace[f"Z{l}"][i], np.float64)
    zmax = float(z.max())
    e = np.exp(z - zmax)
    s = math.fsum(e)
    total = float(e[c] / s)
    terms = _sorted([Term(f"exp(Z{l}[{i},{k}] − max)", float(e[k]), (float(z[k]),)) for k in range(len(z))])
    rule = (rf"{_cell(f'A{l}', index)} = \frac{{e^{{Z_{{{l}}}[{i},{c}] - \max_k Z_{{{l}}}[{i},k]}}}}"
            rf"{{\sum_k e^{{Z_{{{l}}}[{i},k] - \max_k Z_{{{l}}}[{i},k]}}}}")
    sub = rf"= \frac{{e^{{{_p(z[c])} - {_p(zmax)}}}}}{{{tex_num(s)}}} = \frac{{{tex_num(e[c])}}}{{{tex_num(s)}}} = {tex_num(total)}"
    note = (f"Each of the {len(z)} scores of sample {i} is exponentiated (after subtracting the row's largest, "
            f"{zmax:.4g}, so nothing overflows) and divided by their sum; the terms are the exponentials, their sum "
            f"is the denominator. Class {c} gets {total:.1%} of the probability.")
    return Explanation(f"A{l}", index, rule, sub, terms, total, value, note, "softmax",
                       (("max_k Z", zmax), (f"exp(Z{l}[{i},{c}] − max)", float(e[c])), ("Σ_k exp(…)  (denominator)", s)))


def _sample_loss(trace, i, value, L) -> Explanation:
    z = np.asarray(trace[f"Z{L}"][i], np.float64)
    yi = int(trace["y"][i])
    zmax = float(z.max())
    lse = zmax + math.log(math.fsum(np.exp(z - zmax)))
    total = lse - float(z[yi])
    a = float(trace[f"A{L}"][i, yi])
    terms = _sorted([Term(f"logsumexp(Z{L}[{i},:])", lse), Term(f"−Z{L}[{i},{yi}]", -float(z[yi]))])
    rule = rf"L_{{{i}}} = -\log A_{{{L}}}[{i}, y_{{{i}}}] = \log \sum_k e^{{Z_{{{L}}}[{i},k]}} - Z_{{{L}}}[{i}, {yi}]"
    neg_log = tex_num(-math.log(a)) if a > 0 else r"\infty"
    sub = rf"= {tex_num(lse)} - {_p(z[yi])} = {tex_num(total)} \quad (-\log {tex_num(a)} = {neg_log})"
    note = (f"Sample {i} is a {yi}, and the network gave {yi} a probability of {a:.4g}. Its loss is −log of that: "
            "0 for a certain right answer, large for a confident wrong one. The engine computes it as "
            "logsumexp(Z) − Z[y], the same number without ever taking log(0).")
    return Explanation("losses", (i,), rule, sub, terms, total, value, note, "sum", (("A%d[%d,%d]" % (L, i, yi), a),))


def _mean_loss(trace, value) -> Explanation:
    losses = np.asarray(trace["losses"], np.float64)
    m = len(losses)
    terms = _sorted([Term(f"losses[{i}] / {m}", float(losses[i] / m), (float(losses[i]),)) for i in range(m)])
    total = float(losses.mean())
    rule = rf"\mathcal{{L}} = \frac{{1}}{{{m}}} \sum_{{i=0}}^{{{m - 1}}} L_i"
    sub = "= " + _sum_text(tuple(Term(t.label, t.value) for t in terms)) + f" = {tex_num(total)}"
    worst = int(np.argmax(losses))
    note = (f"The mean of the {m} samples' losses. The largest share comes from sample {worst} "
            f"(L = {losses[worst]:.4g}): the sample the network got most wrong.")
    return Explanation("loss", (), rule, sub, terms, total, value, note, "sum")


def _output_error(trace, l, index, value) -> Explanation:
    i, c = index
    A = float(trace[f"A{l}"][i, c])
    Y = float(trace["Y"][i, c])
    m = trace["X"].shape[0]
    total = (A - Y) * (1.0 / m)
    terms = _sorted([Term(f"A{l}[{i},{c}] / {m}", A / m, (A,)), Term(f"−Y[{i},{c}] / {m}", -Y / m, (Y,))])
    rule = rf"{_cell(f'dZ{l}', index)} = \frac{{A_{{{l}}}[{i},{c}] - Y[{i},{c}]}}{{m}}"
    sub = rf"= \frac{{{tex_num(A)} - {tex_num(Y)}}}{{{m}}} = {tex_num(total)}"
    if Y:
        note = (f"{c} is sample {i}'s true digit: the gradient is (probability − 1)/m, negative, so the step will "
                f"raise Z{l}[{i},{c}] and with it that probability.")
    else:
        note = (f"{c} is not sample {i}'s digit: the gradient is its probability/m, positive, so the step will "
                f"lower Z{l}[{i},{c}]. Softmax and cross-entropy together make this derivative that simple.")
    return Explanation(f"dZ{l}", index, rule, sub, terms, total, value, note, "sum")


def _hidden_error(trace, l, index, value) -> Explanation:
    """dZ_l = dA_l ⊙ f'(Z_l) (dN_l = dA_l ⊙ f'(N_l) with batch norm: the activation's input)."""
    act = trace.activation
    pre = trace.pre(l)
    dA = float(trace[f"dA{l}"][index])
    z = float(trace[pre][index])
    if f"M{l}" in trace:
        return _hidden_error_dropped(trace, l, index, value, dA, z)
    a = float(trace[f"A{l}"][index])
    cell, dac, zc, ac = _cell("d" + pre, index), _cell(f"dA{l}", index), _cell(pre, index), _cell(f"A{l}", index)
    # the slope f'(z) is the engine's backward with dA = 1, on this one cell in float64
    gate = float(act.backward(np.float64(1.0), np.asarray(z, np.float64), np.asarray(a, np.float64)))
    total = dA * gate
    rule = rf"{cell} = {dac} \cdot " + act.slope_latex.format(z=zc, a=ac)
    sub = rf"= {_p(dA)} \cdot " + act.slope_latex.format(z=_p(z), a=_p(a)) + f" = {tex_num(total)}"
    return Explanation("d" + pre, index, rule, sub, (Term(f"dA{l}·f'({pre})", total, (dA, gate)),), total, value,
                       act.dz_note(z, a), "product")


def _hidden_error_dropped(trace, l, index, value, dA, z) -> Explanation:
    """dZ = (dA ⊙ M) ⊙ f'(Z): the slope at the activation *before* the mask (f(z), not A)."""
    act = trace.activation
    pre = trace.pre(l)
    mask = float(trace[f"M{l}"][index])
    a = float(act.f(np.asarray(z, np.float64)))
    gate = float(act.backward(np.float64(1.0), np.asarray(z, np.float64), np.asarray(a, np.float64)))
    total = dA * mask * gate
    cell, dac, mc, zc = _cell("d" + pre, index), _cell(f"dA{l}", index), _cell(f"M{l}", index), _cell(pre, index)
    rule = rf"{cell} = {dac} \cdot {mc} \cdot " + act.slope_latex.format(z=zc, a=rf"{act.key}({zc})")
    sub = rf"= {_p(dA)} \cdot {tex_num(mask)} \cdot " + act.slope_latex.format(z=_p(z), a=_p(a)) + f" = {tex_num(total)}"
    note = ((f"Dropout dropped this unit in this step (M{l} = 0), so none of the blame reaches it: its gradient is 0."
             if not mask else f"Dropout kept this unit (M{l} = {mask:.4g}): its blame is scaled as its output was. ")
            + (act.dz_note(z, a) if mask else ""))
    return Explanation("d" + pre, index, rule, sub, (Term(f"dA{l}·M{l}·f'({pre})", total, (dA, mask, gate)),), total,
                       value, note, "product", ((f"f'({pre})", gate),))


def _weight_grad(trace, l, index, value) -> Explanation:
    k, j = index
    prev = "X" if l == 1 else f"A{l - 1}"
    A = np.asarray(trace[prev][:, k], np.float64)
    dZ = np.asarray(trace[f"dZ{l}"][:, j], np.float64)
    products = A * dZ
    terms = _sorted([Term(f"{_lab(prev, i, k)}·{_lab(f'dZ{l}', i, j)}", float(products[i]), (float(A[i]), float(dZ[i])))
                     for i in range(len(A))])
    total = math.fsum(products)
    rule = rf"{_cell(f'dW{l}', index)} = \sum_{{i=0}}^{{{len(A) - 1}}} {tex_name(prev)}[i, {k}]\, dZ_{{{l}}}[i, {j}]"
    sub = "= " + _sum_text(terms) + f" = {tex_num(total)}"
    nz = int(np.count_nonzero(products))
    what = f"pixel {k}" if l == 1 else f"unit {k} of layer {l - 1}"
    note = (f"One term per sample of the batch: how bright {what} was in that sample times the error of unit {j}. "
            f"{nz} of the {len(A)} samples contribute{'s' if nz == 1 else ''}; the largest terms come from the samples that most "
            "decide which way this weight moves.")
    return Explanation(f"dW{l}", index, rule, sub, terms, total, value, note, "sum")


def _bias_grad(trace, l, index, value) -> Explanation:
    (j,) = index
    dZ = np.asarray(trace[f"dZ{l}"][:, j], np.float64)
    terms = _sorted([Term(_lab(f"dZ{l}", i, j), float(dZ[i])) for i in range(len(dZ))])
    total = math.fsum(dZ)
    rule = rf"db_{{{l}}}[{j}] = \sum_{{i=0}}^{{{len(dZ) - 1}}} dZ_{{{l}}}[i, {j}]"
    sub = "= " + _sum_text(terms) + f" = {tex_num(total)}"
    note = f"A bias's input is always 1, so its gradient is just the errors of unit {j} summed over the batch."
    if trace.batchnorm and l < trace.n_layers:
        rule += " = 0"
        note = (f"With batch norm this is exactly 0, and the engine stores 0: b{l}[{j}] moves the whole column {j} of "
                f"Z{l}, and batch norm subtracts the column's mean right after, so b{l} cannot change the loss. The "
                f"terms, dZ{l} of each sample, add up to 0 (here to {total:.2g}, rounding); β{l} shifts the units instead.")
    return Explanation(f"db{l}", index, rule, sub, terms, total, value, note, "sum")


def _activation_grad(trace, l, index, value) -> Explanation:
    i, j = index
    dZ = np.asarray(trace[f"dZ{l + 1}"][i], np.float64)
    W = np.asarray(trace[f"W{l + 1}"][j], np.float64)
    products = dZ * W
    terms = _sorted([Term(f"{_lab(f'dZ{l + 1}', i, c)}·{_lab(f'W{l + 1}', j, c)}", float(products[c]),
                          (float(dZ[c]), float(W[c]))) for c in range(len(dZ))])
    total = math.fsum(products)
    rule = rf"{_cell(f'dA{l}', index)} = \sum_{{c=0}}^{{{len(dZ) - 1}}} dZ_{{{l + 1}}}[{i}, c]\, W_{{{l + 1}}}[{j}, c]"
    sub = "= " + _sum_text(terms) + f" = {tex_num(total)}"
    note = (f"Unit {j} of layer {l} fed all {len(dZ)} units above it through W{l + 1}; its blame is their errors "
            "weighted by the same weights, run backwards (the transpose).")
    return Explanation(f"dA{l}", index, rule, sub, terms, total, value, note, "sum")


def _update(trace, p, index, value, optimizer) -> Explanation:
    name = "Δ" + p
    if optimizer is None and trace.hyper is not None:
        kind = OPTIMIZERS[trace.hyper["optimizer"]]
        if not (kind.state_keys or kind.counters):   # nothing from before the step is needed
            optimizer = from_hyper(trace.hyper)
    if optimizer is None:
        return Explanation(name, index, _cell(name, index), rf"= {tex_num(value)}", (Term(_lab(name, *index), value),),
                           value, value, "The optimizer's rule (see the equation above) made this change from the "
                           "gradient and its own running state, which this step's trace does not hold.", "optimizer")
    return optimizer.explain_update(UpdateCell.of(trace, p, index, value, optimizer))


def _new_param(trace, p, index, value) -> Explanation:
    w = float(trace[p][index])
    d = float(trace["Δ" + p][index])
    total = w + d
    cell = _cell(p + "_new", index)
    rule = rf"{cell} = {_cell(p, index)} + {_cell('Δ' + p, index)}"
    sub = rf"= {_p(w)} + {_p(d)} = {tex_num(total)}"
    ratio = abs(d) / abs(w) if w else float("inf")
    note = (f"The parameter after the step: what the next mini-batch will see. It moved by {abs(d):.3g}"
            + (f", {ratio:.2%} of its size." if w else " from zero."))
    return Explanation(p + "_new", index, rule, sub,
                       _sorted([Term(_lab(p, *index), w), Term(_lab("Δ" + p, *index), d)]), total, value, note, "sum")


# --------------------------------------------------------------------------- batch norm
def _column(trace, name, j) -> np.ndarray:
    return np.asarray(trace[name][:, j], np.float64)


def _inv_std(trace, l, j) -> float:
    return 1.0 / math.sqrt(float(trace[f"σ²{l}"][j]) + BN_EPS)


def _batch_mean(trace, l, index, value) -> Explanation:
    (j,) = index
    Z = _column(trace, f"Z{l}", j)
    m = len(Z)
    terms = _sorted([Term(f"{_lab(f'Z{l}', i, j)} / {m}", float(Z[i] / m), (float(Z[i]),)) for i in range(m)])
    total = math.fsum(Z) / m
    rule = rf"\mu_{{{l}}}[{j}] = \frac{{1}}{{{m}}} \sum_{{i=0}}^{{{m - 1}}} Z_{{{l}}}[i, {j}]"
    sub = "= " + _sum_text(terms) + f" = {tex_num(total)}"
    note = (f"Unit {j}'s weighted input averaged over the {m} samples of the batch. Batch norm subtracts it, so "
            f"column {j} of Ẑ{l} has mean 0 whatever W{l} and b{l} did.")
    return Explanation(f"μ{l}", index, rule, sub, terms, total, value, note, "sum")


def _batch_var(trace, l, index, value) -> Explanation:
    (j,) = index
    Z = _column(trace, f"Z{l}", j)
    mu = float(trace[f"μ{l}"][j])
    m = len(Z)
    sq = (Z - mu) ** 2 / m
    terms = _sorted([Term(f"({_lab(f'Z{l}', i, j)} − μ{l}[{j}])² / {m}", float(sq[i]), (float(Z[i] - mu),))
                     for i in range(m)])
    total = math.fsum(sq)
    rule = rf"\sigma^2_{{{l}}}[{j}] = \frac{{1}}{{{m}}} \sum_{{i=0}}^{{{m - 1}}} (Z_{{{l}}}[i, {j}] - \mu_{{{l}}}[{j}])^2"
    sub = "= " + _sum_text(terms) + f" = {tex_num(total)}"
    note = (f"How far unit {j}'s weighted inputs spread around their mean μ{l}[{j}] = {mu:.4g} in this batch "
            "(divided by m, not m − 1). Batch norm divides by its square root, so column "
            f"{j} of Ẑ{l} has variance 1.")
    return Explanation(f"σ²{l}", index, rule, sub, terms, total, value, note, "sum")


def _normalised(trace, l, index, value) -> Explanation:
    i, j = index
    z, mu, var = float(trace[f"Z{l}"][index]), float(trace[f"μ{l}"][j]), float(trace[f"σ²{l}"][j])
    sd = math.sqrt(var + BN_EPS)
    total = (z - mu) / sd
    rule = (rf"{_cell(f'Ẑ{l}', index)} = \frac{{Z_{{{l}}}[{i}, {j}] - \mu_{{{l}}}[{j}]}}"
            rf"{{\sqrt{{\sigma^2_{{{l}}}[{j}] + \epsilon}}}}")
    sub = rf"= \frac{{{_p(z)} - {_p(mu)}}}{{\sqrt{{{tex_num(var)} + 10^{{-5}}}}}} = {tex_num(total)}"
    note = (f"Sample {i}'s weighted input to unit {j}, minus the unit's batch mean, divided by its batch standard "
            f"deviation: {abs(total):.3g} standard deviations {'above' if total >= 0 else 'below'} the batch's mean.")
    return Explanation(f"Ẑ{l}", index, rule, sub, (Term(f"(Z{l}[{i},{j}] − μ{l}[{j}]) / √(σ²{l}[{j}] + ε)", total,
                                                       (z - mu, 1 / sd)),), total, value, note, "normalise",
                       ((f"Z{l}[{i},{j}] − μ{l}[{j}]", z - mu), ("√(σ² + ε)", sd)))


def _scaled(trace, l, index, value) -> Explanation:
    i, j = index
    zh, g, b = float(trace[f"Ẑ{l}"][index]), float(trace[f"γ{l}"][j]), float(trace[f"β{l}"][j])
    total = g * zh + b
    rule = rf"{_cell(f'N{l}', index)} = \gamma_{{{l}}}[{j}]\, \hat Z_{{{l}}}[{i}, {j}] + \beta_{{{l}}}[{j}]"
    sub = rf"= {_p(g)} \cdot {_p(zh)} + {_p(b)} = {tex_num(total)}"
    note = (f"Batch norm's own scale and shift for unit {j}, learnt like the weights: N = γ·Ẑ + β gives the unit the "
            "spread γ and mean β that suit the activation after it.")
    return Explanation(f"N{l}", index, rule, sub,
                       _sorted([Term(f"γ{l}[{j}]·Ẑ{l}[{i},{j}]", g * zh, (g, zh)), Term(f"β{l}[{j}]", b)]),
                       total, value, note, "sum")


def _column_grad(trace, l, index, value, name, weigh) -> Explanation:
    """dγ (``weigh``: Ẑ) or dβ (``weigh``: None): a column sum of dN, weighted by Ẑ for γ."""
    (j,) = index
    dN = _column(trace, f"dN{l}", j)
    w = _column(trace, f"Ẑ{l}", j) if weigh else np.ones_like(dN)
    products = dN * w
    terms = _sorted([Term(f"{_lab(f'dN{l}', i, j)}·{_lab(f'Ẑ{l}', i, j)}" if weigh else _lab(f"dN{l}", i, j),
                          float(products[i]), (float(dN[i]), float(w[i])) if weigh else ()) for i in range(len(dN))])
    total = math.fsum(products)
    sym = r"\gamma" if weigh else r"\beta"
    rule = (rf"d{sym}_{{{l}}}[{j}] = \sum_{{i=0}}^{{{len(dN) - 1}}} dN_{{{l}}}[i, {j}]"
            + (rf"\, \hat Z_{{{l}}}[i, {j}]" if weigh else ""))
    sub = "= " + _sum_text(terms) + f" = {tex_num(total)}"
    note = (f"γ{l}[{j}] multiplies Ẑ{l}[i, {j}] in every sample, so its gradient adds up dN times Ẑ over the batch."
            if weigh else f"β{l}[{j}] is added to every sample's N{l}[i, {j}], so its gradient is dN{l} summed over "
                          "the batch (as a bias's is without batch norm).")
    return Explanation(name, index, rule, sub, terms, total, value, note, "sum")


def _normalised_grad(trace, l, index, value) -> Explanation:
    i, j = index
    dN, g = float(trace[f"dN{l}"][index]), float(trace[f"γ{l}"][j])
    total = dN * g
    rule = rf"{_cell(f'dẐ{l}', index)} = dN_{{{l}}}[{i}, {j}]\, \gamma_{{{l}}}[{j}]"
    sub = rf"= {_p(dN)} \cdot {_p(g)} = {tex_num(total)}"
    return Explanation(f"dẐ{l}", index, rule, sub, (Term(f"dN{l}[{i},{j}]·γ{l}[{j}]", total, (dN, g)),), total,
                       value, f"N = γ·Ẑ + β, so the blame on Ẑ is the blame on N times γ{l}[{j}].", "product")


def _normalise_grad(trace, l, index, value) -> Explanation:
    """dZ through batch norm: (m·dẐ − Σ dẐ − Ẑ·Σ dẐ·Ẑ) / (m √(σ² + ε)), three terms."""
    i, j = index
    dZh, Zh = _column(trace, f"dẐ{l}", j), _column(trace, f"Ẑ{l}", j)
    m, inv = len(dZh), _inv_std(trace, l, j)
    s1, s2 = math.fsum(dZh), math.fsum(dZh * Zh)
    own, mean, along = dZh[i] * inv, -s1 * inv / m, -Zh[i] * s2 * inv / m
    terms = _sorted([Term(f"dẐ{l}[{i},{j}] / √(σ²+ε)", float(own), (float(dZh[i]), inv)),
                     Term(f"−Σ dẐ{l}[:,{j}] / (m √(σ²+ε))", float(mean), (s1, inv / m)),
                     Term(f"−Ẑ{l}[{i},{j}] · Σ dẐ·Ẑ / (m √(σ²+ε))", float(along), (float(Zh[i]), s2, inv / m))])
    total = math.fsum((own, mean, along))
    rule = (rf"{_cell(f'dZ{l}', index)} = \frac{{m\, d\hat Z_{{{l}}}[{i},{j}] - \sum_k d\hat Z_{{{l}}}[k,{j}] "
            rf"- \hat Z_{{{l}}}[{i},{j}] \sum_k d\hat Z_{{{l}}}[k,{j}]\, \hat Z_{{{l}}}[k,{j}]}}"
            rf"{{m \sqrt{{\sigma^2_{{{l}}}[{j}] + \epsilon}}}}")
    sub = (rf"= \frac{{{m} \cdot {_p(dZh[i])} - {_p(s1)} - {_p(Zh[i])} \cdot {_p(s2)}}}"
           rf"{{{m} \cdot {tex_num(1 / inv)}}} = {tex_num(total)}")
    note = (f"Every sample's Ẑ{l}[·, {j}] depends on sample {i}'s Z through the batch's μ and σ², so its blame is "
            f"not only its own dẐ scaled by 1/√(σ² + ε): it loses the column's mean blame (moving every Z of unit {j} "
            "up together changes nothing after the mean is subtracted) and the part along Ẑ (stretching the "
            "column changes nothing after dividing by its spread).")
    return Explanation(f"dZ{l}", index, rule, sub, terms, total, value, note, "sum",
                       (("Σ_k dẐ[k, j]", s1), ("Σ_k dẐ[k, j]·Ẑ[k, j]", s2), ("1/√(σ² + ε)", inv)))


def _running(trace, stat, index, value) -> Explanation:
    """μ_run_new = 0.9·μ_run + 0.1·μ (the same for σ²)."""
    (j,) = index
    run = stat + RUN
    old, now = float(trace[run][j]), float(trace[stat][j])
    keep = float(np.float32(BN_MOMENTUM)) if np.asarray(trace[run]).dtype == np.float32 else BN_MOMENTUM
    total = keep * old + (1 - keep) * now
    rule = rf"{_cell(run + '_new', index)} = {BN_MOMENTUM:g}\, {_cell(run, index)} + {1 - BN_MOMENTUM:.1g}\, {_cell(stat, index)}"
    sub = rf"= {BN_MOMENTUM:g} \cdot {_p(old)} + {1 - BN_MOMENTUM:.1g} \cdot {_p(now)} = {tex_num(total)}"
    note = (f"The running statistic keeps {BN_MOMENTUM:.0%} of what it was and takes {1 - BN_MOMENTUM:.0%} of this "
            f"batch's {stat}[{j}]: an average "
            "over the last few dozen batches, which evaluation and prediction normalise with (one image's answer "
            "then does not depend on the other images of its batch).")
    return Explanation(run + "_new", index, rule, sub,
                       _sorted([Term(f"{BN_MOMENTUM:g}·{_lab(run, j)}", keep * old, (keep, old)),
                                Term(f"{1 - BN_MOMENTUM:.1g}·{_lab(stat, j)}", (1 - keep) * now, (1 - keep, now))]),
                       total, value, note, "sum")


_BATCHNORM = {"μ": _batch_mean, "σ²": _batch_var, "Ẑ": _normalised, "N": _scaled}
_BATCHNORM_GRAD = {"γ": lambda t, l, i, v: _column_grad(t, l, i, v, f"dγ{l}", True),
                   "β": lambda t, l, i, v: _column_grad(t, l, i, v, f"dβ{l}", False),
                   "Ẑ": _normalised_grad, "N": _hidden_error}


# --------------------------------------------------------------------------- one sample's share
def sample_gradient_norms(trace: Trace, l: int) -> np.ndarray:
    """‖A_{l-1}[i]ᵀ dZ_l[i]‖ for every sample i: the size of sample i's term in dW_l.

    dW_l is the sum over the batch of these outer products, one per sample; the
    Frobenius norm of an outer product is the product of the two vectors' norms.
    """
    prev = "X" if l == 1 else f"A{l - 1}"
    A = np.asarray(trace[prev], np.float64)
    dZ = np.asarray(trace[f"dZ{l}"], np.float64)
    return np.linalg.norm(A, axis=1) * np.linalg.norm(dZ, axis=1)


def sample_gradient_shares(trace: Trace, l: int) -> np.ndarray:
    """How much of dW_l each sample's term points along dW_l: ⟨A[i]ᵀ dZ[i], dW⟩ / ‖dW‖².

    These shares sum to exactly 1 over the batch (negative when a sample pulls
    against the batch's direction), so they can be read as percentages.
    """
    prev = "X" if l == 1 else f"A{l - 1}"
    A = np.asarray(trace[prev], np.float64)
    dZ = np.asarray(trace[f"dZ{l}"], np.float64)
    dW = A.T @ dZ
    denom = float(np.sum(dW * dW))
    if denom == 0:
        return np.zeros(len(A))
    return np.einsum("ij,ij->i", A @ dW, dZ) / denom
