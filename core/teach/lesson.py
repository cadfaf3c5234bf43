"""The guided lesson "Your first step of backprop": questions made from one step's own numbers.

Before a stop of the step shows its numbers, the student is asked about them; the answer is
checked against the trace of that step (a real training step of their network, the trace the
stepper shows), and the feedback says why, with the step's numbers. One question per stop:

1. ``shape``   — the shape of ``Z1``                                    (forward)
2. ``predict`` — which digit row r of ``A_L`` predicts, given ``Z_L``    (forward, output layer)
3. ``sign``    — the signs of ``dZ_L`` in row r: the true digit's column and the others
4. ``zeros``   — which entries of ``dZ_h`` are 0 (h = L − 1, the last hidden layer), and why
                 (``dN_h`` with batch norm: what the activation's slope multiplies)
5. ``loss``    — what the update does to the batch's loss                (update)

``L`` is the number of layers (3 for the seed's 784 → 64 → 64 → 10), so the names follow the
network: ``A2`` and ``dZ1`` for one hidden layer, ``A4`` and ``dZ3`` for three. Each question is
a function of the trace alone: the same trace gives the same questions, and every step gives
new ones, because the sample and the entries asked about are picked from the step's numbers
(a sample the network gets wrong, when there is one).

Plain Python and NumPy, no Streamlit: ``pages/lesson.py`` draws the widgets of each
:class:`Part`, what the :class:`Reveal` describes, and the :class:`Feedback`.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from core.engine.network import Trace, loss_after_update
from core.engine.optim import OPTIMIZERS

CHOICE, NUMBER, MULTI = "choice", "number", "multi"     # how a part is answered
RIGHT, WRONG, SKIPPED = "right", "wrong", "skipped"     # what became of a question
SIGNS = ("negative", "zero", "positive")
ROW_SIGNS = ("negative (or zero)", "positive (or zero)", "some negative, some positive")
LOSS_CHANGES = ("it goes up (or stays the same)", "it goes down by less than 1 %",
                "it goes down by 1 % to 10 %", "it goes down by more than 10 %")
ENTRIES = 4                                             # entries of dZ_h asked about
ROWS_SHOWN = 128                                        # a revealed matrix shows at most this many samples


# --------------------------------------------------------------------------- what a question is
@dataclass(frozen=True)
class Part:
    """One thing to answer: a whole number (NUMBER), one of ``options`` (CHOICE), or any
    subset of them, the empty one included (MULTI). ``right`` is what is accepted: a number,
    a set of options (any one of them, for CHOICE), or the one right subset (MULTI)."""

    label: str                       # Markdown, may hold $…$
    kind: str
    right: object
    options: tuple[str, ...] = ()

    def accepts(self, answer) -> bool:
        if self.kind == NUMBER:
            return answer is not None and int(answer) == self.right
        if self.kind == CHOICE:
            return answer in self.right
        return frozenset(answer or ()) == self.right


@dataclass(frozen=True)
class Given:
    """Numbers of the step the question shows before it is answered: a small table
    (``rows`` × ``columns`` of ``values``)."""

    rows: tuple[str, ...]
    columns: tuple[str, ...]
    values: np.ndarray = field(compare=False)      # arrays have no truth value: questions compare by their text


@dataclass(frozen=True)
class Reveal:
    """What the page shows once a question is answered or skipped: the stop's numbers.
    ``kind``: "heatmap" (the matrix ``values``), "bars" (one bar per entry of ``values``,
    ``labels`` under them, entry ``highlight`` marked) or "loss" (``values`` = before, after)."""

    kind: str
    title: str
    values: np.ndarray = field(compare=False)
    labels: tuple[str, ...] = ()
    highlight: int | None = None
    axes: tuple[str, str] = ("", "")      # x and y titles


@dataclass(frozen=True)
class Feedback:
    status: str                      # RIGHT, WRONG or SKIPPED
    verdict: str                     # Markdown: what was wrong in the answer (WRONG), "" when it was right
    why: str                         # Markdown: the reason, with the step's numbers

    @property
    def right(self) -> bool:
        return self.status == RIGHT


@dataclass(frozen=True)
class Question:
    key: str                         # what is asked: "shape", "predict", "sign", "zeros", "loss"
    stop: str                        # the quantity of the step it is about (a trace name: "Z1", "dZ2", …)
    title: str                       # "The shape of Z1"
    prompt: str                      # Markdown with $…$: the question, with the numbers it may use
    formula: str                     # LaTeX of the equation in play, in the on-screen notation
    parts: tuple[Part, ...]
    why: str                         # Markdown: the explanation with the step's numbers
    reveal: Reveal
    given: Given | None = None
    sample: int | None = None        # the row of the batch it is about (its image is shown)
    hint: Callable[[tuple], str] = field(default=lambda answers: "", compare=False, repr=False)

    def missing(self, answers) -> str:
        """Why ``answers`` cannot be checked yet (empty when it can)."""
        if len(answers) != len(self.parts):
            return "Answer every part of the question, or skip it."
        for part, a in zip(self.parts, answers):
            if part.kind in (NUMBER, CHOICE) and a is None:
                return "Answer every part of the question, or skip it."
            if part.kind == CHOICE and a not in part.options:
                return "Choose one of the answers offered."
            if part.kind == MULTI and not set(a or ()) <= set(part.options):
                return "Choose among the entries offered."
        return ""

    def check(self, answers) -> Feedback:
        """Right when every part is; a wrong answer's verdict says what in it is wrong, with numbers."""
        problem = self.missing(answers)
        if problem:
            raise ValueError(problem)
        if all(p.accepts(a) for p, a in zip(self.parts, answers)):
            return Feedback(RIGHT, "", self.why)
        return Feedback(WRONG, self.hint(tuple(answers)), self.why)

    def skip(self) -> Feedback:
        return Feedback(SKIPPED, "Skipped: here is the answer.", self.why)


# --------------------------------------------------------------------------- numbers in words
def num(x, spec: str = ".4g") -> str:
    """A number for a sentence (a real minus sign; no "−0")."""
    x = float(x)
    return format(x + 0.0 if x == 0 else x, spec).replace("-", "−")


def apart(*xs) -> list[str]:
    """``xs`` with as many digits as it takes to tell them apart (4 to 8): two probabilities of a
    fresh network, 0.100029 and 0.100011, are both "0.1" at four digits."""
    for digits in range(4, 9):
        out = [num(x, f".{digits}g") for x in xs]
        if len(set(out)) == len({float(x) for x in xs}):
            break
    return out


def a_digit(d: int) -> str:
    """"a 7", "an 8"."""
    return f"{'an' if d == 8 else 'a'} {d}"


def first_rows(a, what: str) -> tuple[np.ndarray, str]:
    """A matrix to reveal, cut to ROWS_SHOWN samples (a batch may hold 4096), and its title."""
    a = np.asarray(a)
    return (a, what) if len(a) <= ROWS_SHOWN else (a[:ROWS_SHOWN], f"{what} (samples 0–{ROWS_SHOWN - 1} of {len(a):,})")


def sign_word(x: float) -> str:
    return SIGNS[int(np.sign(x)) + 1]


def _rng(trace: Trace) -> np.random.Generator:
    """Choices made from the step's own numbers: the same for a trace, new for every step."""
    L = trace.n_layers
    parts = [np.ascontiguousarray(trace["y"]).tobytes(), np.ascontiguousarray(trace[f"Z{L}"]).tobytes()]
    return np.random.default_rng([zlib.crc32(p) for p in parts])


def sample_asked(trace: Trace) -> int:
    """The row of the batch questions 2–4 are about: one the network gets wrong, when there is one;
    else one of the quarter it is least sure of (a trained network is certain of most of its
    training images, and a certain one has a gradient of almost nothing to show)."""
    L = trace.n_layers
    y = np.asarray(trace["y"])
    A = np.asarray(trace[f"A{L}"])
    wrong = np.flatnonzero(A.argmax(axis=1) != y)
    if wrong.size:
        pool = wrong
    else:   # not one whose probability is 1 in float32, when there is another: its dZ would be all 0
        unsure = np.flatnonzero(A[np.arange(len(y)), y] < 1)
        pool = unsure if unsure.size else np.arange(len(y))
        pool = pool[np.argsort(np.asarray(trace["losses"])[pool], kind="stable")][-max(1, len(pool) // 4):]
    return int(pool[_rng(trace).integers(len(pool))])


# --------------------------------------------------------------------------- the questions
def questions(trace: Trace) -> list[Question]:
    """The lesson's questions about one step, in the order of the step's stops. A trace without
    an update (a step that was refused) gets no question about the update."""
    r = sample_asked(trace)
    qs = [shape_question(trace), predict_question(trace, r), sign_question(trace, r), zeros_question(trace, r)]
    if loss_after_update(trace) is not None:
        qs.append(loss_question(trace))
    return qs


def shape_question(trace: Trace) -> Question:
    m, n_in = np.shape(trace["X"])
    units = trace.sizes[1]

    def hint(answers) -> str:
        rows, cols = (int(a) for a in answers)
        if (rows, cols) == (units, m) and m != units:
            return (f"Rows and columns are swapped: samples are rows here, so $Z_1$ has one row per image "
                    f"({m}) and one column per unit of layer 1 ({units}), like $X$ has one row per image.")
        if n_in in (rows, cols):
            return (f"{n_in} is the number of pixels, which the product $X W_1$ sums over: it is not a "
                    f"dimension of $Z_1$. $Z_1$ is ({m} × {units}), not ({rows} × {cols}).")
        return f"$Z_1$ is ({m} × {units}), not ({rows} × {cols})."

    return Question(
        "shape", "Z1", "The shape of Z1",
        f"The mini-batch $X$ holds m = {m} images of {n_in} pixels, one image per row: $X$ is ({m} × {n_in}). "
        f"Layer 1 has {units} units: $W_1$ is ({n_in} × {units}), column j holding unit j's {n_in} weights, "
        f"and $b_1$ has {units} entries. What is the shape of $Z_1$?",
        trace.spec("Z1").latex,
        (Part("rows of $Z_1$", NUMBER, m), Part("columns of $Z_1$", NUMBER, units)),
        f"$Z_1 = X W_1 + b_1$: a ({m} × {n_in}) matrix times a ({n_in} × {units}) one is ({m} × {units}). "
        f"The {n_in} pixels are summed over, and $b_1$ is added to every row. One row per image, one column "
        f"per unit of layer 1: $Z_1[i, j]$ is unit j's weighted input for image i.",
        Reveal("heatmap", *reversed(first_rows(trace["Z1"], f"Z1 ({m} × {units}): one row per image, one column "
                                                         "per unit")), axes=("unit j of layer 1", "sample i")),
        hint=hint)


def predict_question(trace: Trace, r: int) -> Question:
    L = trace.n_layers
    y = int(np.asarray(trace["y"])[r])
    Z, A = np.asarray(trace[f"Z{L}"])[r], np.asarray(trace[f"A{L}"])[r]
    K = len(A)
    pred = int(A.argmax())
    top = frozenset(str(c) for c in np.flatnonzero(A == A.max()))
    loss_r = float(np.asarray(trace["losses"])[r])
    a_txt, z_txt = apart(*A), apart(*Z)      # one precision for the row, enough to tell its numbers apart
    verdict = (f"which is right: its loss $L_{{{r}}} = -\\log A_{{{L}}}[{r}, {y}]$ is {num(loss_r)}." if pred == y
               else f"which is wrong: it is {a_digit(y)}, and its loss $L_{{{r}}} = -\\log A_{{{L}}}[{r}, {y}]$ = "
                    f"−log {a_txt[y]} = {num(loss_r)}.")

    def hint(answers) -> str:
        c = int(answers[0])
        out = (f"Row {r} gives digit {c} the probability {a_txt[c]} (its logit $Z_{{{L}}}[{r}, {c}]$ is "
               f"{z_txt[c]}); digit {pred} gets {a_txt[pred]} (logit {z_txt[pred]}), the largest.")
        if c == y:
            out += f" {y} is the true digit, but the question is what the network predicts."
        return out

    return Question(
        "predict", f"A{L}", f"What row {r} of A{L} predicts",
        f"Sample {r} of the batch is {a_digit(y)} (left). Its row of $Z_{{{L}}}$, the output layer's weighted inputs "
        f"(the *logits*), is in the table. $A_{{{L}}} = \\mathrm{{softmax}}(Z_{{{L}}})$ turns each row into {K} "
        f"probabilities that add up to 1. Which digit does row {r} of $A_{{{L}}}$ predict, that is, which one "
        "gets the largest probability?",
        trace.spec(f"A{L}").latex,
        (Part(f"row {r} of $A_{{{L}}}$ predicts the digit", CHOICE, top, tuple(str(c) for c in range(K))),),
        f"Softmax keeps the order of a row: $e^z$ grows with $z$, and every entry of the row is divided by the "
        f"same sum. So the largest probability sits where the largest logit is: $Z_{{{L}}}[{r}, {pred}]$ = "
        f"{z_txt[pred]}, and $A_{{{L}}}[{r}, {pred}]$ = {a_txt[pred]}. The network reads this {y} as "
        f"{a_digit(pred)}, {verdict}",
        Reveal("bars", f"A{L}[{r}]: the probability of each digit (true digit {y})", A,
               tuple(str(c) for c in range(K)), pred, ("digit c", f"A{L}[{r}, c]")),
        Given((f"Z{L}[{r}, c]",), tuple(str(c) for c in range(K)), Z[None, :]),
        sample=r, hint=hint)


def row_sign(values: np.ndarray) -> frozenset[str]:
    """Which of ROW_SIGNS describe ``values`` (all zero: both of the first two)."""
    out = set()
    if (values <= 0).all():
        out.add(ROW_SIGNS[0])
    if (values >= 0).all():
        out.add(ROW_SIGNS[1])
    return frozenset(out or {ROW_SIGNS[2]})


def sign_question(trace: Trace, r: int) -> Question:
    L = trace.n_layers
    m = len(np.asarray(trace["y"]))
    t = int(np.asarray(trace["y"])[r])
    A, dZ = np.asarray(trace[f"A{L}"])[r], np.asarray(trace[f"dZ{L}"])[r]
    others = np.delete(dZ, t)
    other_digits = np.delete(np.arange(len(dZ)), t)
    big = int(other_digits[others.argmax()])
    right_true, right_rest = sign_word(dZ[t]), row_sign(others)
    a_t = num(A[t], ".8g" if A[t] > 0.999 else ".4g")      # 0.99999189, not "1", when it is not quite 1
    lo, hi = apart(others.min(), others.max())           # a fresh network's 0.0015623 and 0.0015632
    a_big = apart(*A)[big]
    truth = (f"In the true column $Y$ is 1: $dZ_{{{L}}}[{r}, {t}] = (A_{{{L}}}[{r}, {t}] - 1)/m$ = ({a_t} − 1)/{m} "
             f"= {num(dZ[t])}. ")
    if dZ[t] < 0:
        truth += (f"A probability is at most 1, so this is negative: gradient descent moves against the gradient, "
                  f"so the step *raises* $Z_{{{L}}}[{r}, {t}]$. ")
    else:
        truth += ("The network is already certain: the probability is 1 as far as float32 can tell, so this entry "
                  "is 0 and the step leaves this logit where it is. ")

    def hint(answers) -> str:
        out = []
        if answers[0] != right_true:
            out.append(f"$dZ_{{{L}}}[{r}, {t}] = (A_{{{L}}}[{r}, {t}] - 1)/m$ = ({a_t} − 1)/{m} = "
                       f"{num(dZ[t])}: {right_true}, not {answers[0]}.")
        if answers[1] not in right_rest:
            out.append(f"The other entries are $A_{{{L}}}[{r}, c]/m$ (there $Y$ is 0): from {lo} to {hi}, so they "
                       f"are {' / '.join(sorted(right_rest))}.")
        return " ".join(out)

    return Question(
        "sign", f"dZ{L}", f"The sign of dZ{L}",
        f"The backward pass starts at the output. With $Y$ the labels one-hot ($Y[i, c] = 1$ when $c = y_i$, else "
        f"0), softmax and cross-entropy together give $dZ_{{{L}}} = (A_{{{L}}} - Y)/m$, with m = {m}. Sample {r} "
        f"is {a_digit(t)}. In row {r} of $dZ_{{{L}}}$, what sign has the entry in the true digit's column {t}, and "
        "what sign have the others?",
        trace.spec(f"dZ{L}").latex,
        (Part(f"$dZ_{{{L}}}[{r}, {t}]$ (the true digit's column) is", CHOICE, frozenset({right_true}), SIGNS),
         Part(f"the other entries of row {r} are", CHOICE, right_rest, ROW_SIGNS)),
        truth + f"Everywhere else $Y$ is 0 and $dZ_{{{L}}}[{r}, c] = A_{{{L}}}[{r}, c]/m \\ge 0$: here from "
        f"{lo} to {hi}, the largest for digit {big} ({a_big}/{m}). Those "
        f"logits are *lowered*, the most for digit {big}, the wrong digit the network finds most likely. The row adds up to "
        f"{num(dZ.sum(), '.2g')}: as much is pushed up as down.",
        Reveal("bars", f"dZ{L}[{r}]: the true digit's column {t} marked", dZ,
               tuple(str(c) for c in range(len(dZ))), t, ("digit c", f"dZ{L}[{r}, c]")),
        sample=r, hint=hint)


def entries_asked(trace: Trace, r: int) -> list[int]:
    """Units of the last hidden layer asked about in row ``r`` of ``dZ_h`` (``dN_h`` with batch norm):
    some zeros and some non-zeros where the row has both, picked from the step's numbers."""
    h = trace.n_layers - 1
    dZ = np.asarray(trace["d" + trace.pre(h)])[r]
    k = min(ENTRIES, dZ.size)
    rng = _rng(trace)
    zeros, rest = np.flatnonzero(dZ == 0), np.flatnonzero(dZ != 0)
    n_zeros = min(len(zeros), max(k // 2, k - len(rest)))
    picked = list(rng.choice(zeros, n_zeros, replace=False)) + list(rng.choice(rest, k - n_zeros, replace=False))
    return sorted(int(j) for j in picked)


def zeros_question(trace: Trace, r: int) -> Question:
    """Which entries of dZ_h are 0. With batch norm the activation is applied to N_h, so the question is
    about dN_h = dA_h ⊙ f'(N_h), whose zeros are the activation's (dZ_h, through the normalisation, mixes
    every sample of a unit and is almost never 0)."""
    L = trace.n_layers
    h = L - 1
    act = trace.activation
    zn = trace.pre(h)[0]        # "Z", or "N" with batch norm: what the activation was applied to
    Z, A, dA, dZ = (np.asarray(trace[n]) for n in (f"{zn}{h}", f"A{h}", f"dA{h}", f"d{zn}{h}"))
    M = np.asarray(trace[f"M{h}"]) if f"M{h}" in trace else None    # dropout's mask, when the step had one
    F = A if M is None else act.f(Z)                                 # the activation before the mask
    cols = entries_asked(trace, r)
    slope = act.backward(np.ones_like(Z[r]), Z[r], F[r])      # f'(Z) at each entry, by the engine's own rule
    label = {j: f"d{zn}{h}[{r}, {j}]" for j in cols}
    zero = frozenset(label[j] for j in cols if dZ[r, j] == 0)
    share = float((dZ == 0).mean())
    flat = float((act.backward(np.ones_like(Z), Z, F) == 0).mean())
    slope_tex = act.slope_latex.format(z=f"{zn}_{{{h}}}", a=f"A_{{{h}}}" if M is None else rf"f({zn}_{{{h}}})")
    bn = (f" With batch norm the activation is applied to $N_{{{h}}} = \\gamma_{{{h}}} \\odot \\hat Z_{{{h}}} + "
          f"\\beta_{{{h}}}$, not to $Z_{{{h}}}$, so the blame reaches $N_{{{h}}}$ first: $dN_{{{h}}}$. "
          if zn == "N" else "")

    def line(j) -> str:
        mask = "" if M is None else f" × {num(M[r, j])}"
        dropped = "" if M is None or M[r, j] else " Dropout dropped this unit in this step (its mask is 0)."
        return (f"${zn}_{{{h}}}[{r}, {j}]$ = {num(Z[r, j])}, slope {num(slope[j])}: $d{zn}_{{{h}}}[{r}, {j}]$ = "
                f"{num(dA[r, j])}{mask} × {num(slope[j])} = {num(dZ[r, j])}. "
                f"{act.dz_note(float(Z[r, j]), float(F[r, j]))}{dropped}")

    def hint(answers) -> str:
        chosen = frozenset(answers[0] or ())
        wrong = [j for j in cols if (label[j] in chosen) != (label[j] in zero)]
        return "\n".join(["These entries are not as you said:"] + [f"- {line(j)}" for j in wrong])

    same = bool(((dZ == 0) == (act.backward(np.ones_like(Z), Z, F) == 0)).all())
    dz = f"$d{zn}_{{{h}}}$"
    if M is not None:
        whole = (f"In the whole of {dz}, {share:.1%} of the entries are 0: where dropout dropped the unit "
                 f"(its mask $M_{{{h}}}$ is 0 for {float((M == 0).mean()):.1%} of the entries)"
                 + (f", where {act.label}'s slope is 0 ({flat:.1%})" if flat else "")
                 + f", and where $dA_{{{h}}}$ itself was 0. A dropped or silent unit learns nothing from that "
                 "image in this step.")
    elif flat and same:
        whole = (f"In the whole of {dz}, {share:.1%} of the entries are 0: exactly those where {act.label}'s "
                 "slope is 0. Those units were silent for that image, and learn nothing from it in this step.")
    elif flat:
        whole = (f"In the whole of {dz}, {share:.1%} of the entries are 0: the {flat:.1%} where "
                 f"{act.label}'s slope is 0 (those units were silent for that image, and learn nothing from it in "
                 f"this step), and a few where $dA_{{{h}}}$ itself was 0.")
    else:
        whole = (f"The slope of {act.label} is never 0, so {dz} has zeros only where $dA_{{{h}}}$ has: "
                 f"{share:.1%} of its entries.")
    if zn == "N":
        whole += (f" Batch norm's backward pass then mixes the samples: $dZ_{{{h}}}$ takes each unit's whole column "
                  f"of $d\\hat Z_{{{h}}}$, so it has {float((np.asarray(trace[f'dZ{h}']) == 0).mean()):.1%} zeros.")
    return Question(
        "zeros", f"d{zn}{h}", f"Which entries of d{zn}{h} are zero",
        f"Back through the activation of layer {h}:{bn} each entry of {dz} is the gradient $dA_{{{h}}}$ that "
        f"arrived from layer {L}, "
        + ("" if M is None else f"times dropout's mask $M_{{{h}}}$ (0 for a dropped unit), ")
        + f"times {act.label}'s slope at that entry, ${slope_tex}$. The table shows "
        f"{len(cols)} entries of row {r}: their ${zn}_{{{h}}}$ from the forward pass"
        + ("" if M is None else f", their mask $M_{{{h}}}$")
        + f" and their $dA_{{{h}}}$. Which of these entries of {dz} are exactly 0?",
        trace.spec(f"d{zn}{h}").latex,
        (Part(f"the entries of {dz} that are 0 (pick none if you think none is)", MULTI, zero,
              tuple(label[j] for j in cols)),),
        "\n".join(f"- {line(j)}" for j in cols) + "\n\n" + whole,
        Reveal("heatmap", *reversed(first_rows(dZ, f"d{zn}{h}: {share:.0%} of its entries are 0")),
               axes=(f"unit j of layer {h}", "sample i")),
        Given((f"{zn}{h}[{r}, j]", f"dA{h}[{r}, j]"), tuple(f"j = {j}" for j in cols),
              np.stack([Z[r, cols], dA[r, cols]])) if M is None else
        Given((f"{zn}{h}[{r}, j]", f"M{h}[{r}, j]", f"dA{h}[{r}, j]"), tuple(f"j = {j}" for j in cols),
              np.stack([Z[r, cols], M[r, cols], dA[r, cols]])),
        sample=r, hint=hint)


def loss_change(before: float, after: float) -> str:
    """Which of LOSS_CHANGES the update made."""
    if not after < before:
        return LOSS_CHANGES[0]
    drop = (before - after) / before if before > 0 else 1.0
    return LOSS_CHANGES[1] if drop < 0.01 else LOSS_CHANGES[2] if drop <= 0.10 else LOSS_CHANGES[3]


def loss_question(trace: Trace) -> Question:
    L = trace.n_layers
    m = len(np.asarray(trace["y"]))
    before, after = trace.loss, loss_after_update(trace)
    change = loss_change(before, after)
    names = trace.trained
    # to first order a change ΔP changes the loss by Σ dP ⊙ ΔP: what the gradient promises
    promised = float(sum(np.vdot(np.asarray(trace["d" + n], np.float64), np.asarray(trace["Δ" + n], np.float64))
                         for n in names))
    hyper = trace.hyper or {}
    opt = OPTIMIZERS.get(hyper.get("optimizer"))
    how = f"{opt.name} with η = {hyper['lr']:g}" if opt is not None and "lr" in hyper else "the optimizer's rule"
    pct = (after - before) / before if before > 0 else 0.0
    moved = "down" if after < before else "up" if after > before else "nowhere"

    def hint(answers) -> str:
        return (f"The batch's loss went {moved}: from {num(before)} to {num(after)}, "
                f"{num(after - before, '+.3g')} ({num(100 * pct, '+.3g')} %), so {change}.")

    return Question(
        "loss", "ΔW1", "What the update does to the loss",
        f"The update moves every parameter against its gradient ({how}: ${trace.spec('ΔW1').latex}$, the same for "
        f"every $W_l$ and $b_l$). Before the update this batch's loss is $L$ = {num(before)}. Then the same {m} "
        "images go through the network again, with the new parameters $W + \\Delta W$. What happens to their loss?",
        trace.spec("W1_new").latex,
        (Part("the batch's loss after the update", CHOICE, frozenset({change}), LOSS_CHANGES),),
        f"After the update the batch's loss is {num(after)}, against {num(before)} before: "
        f"{num(after - before, '+.3g')} ({num(100 * pct, '+.3g')} %). To first order a change $\\Delta W$ changes the "
        f"loss by $\\sum dW \\odot \\Delta W$, which for this step is {num(promised, '.3g')}: moving against the "
        "gradient lowers the loss of the batch the gradient was computed on, as long as the step is small enough "
        "for the first order to hold. One step on one batch moves it only a little; the next batch will see "
        "these parameters.",
        Reveal("loss", "The batch's loss", np.array([before, after]),
               ("loss before the update", "after it (same batch)")),
        hint=hint)
