"""Every setting of a network and its training, declared once.

:data:`FIELDS` is the one table (like tensorflow/playground's ``State.PROPS``): each
setting's type, default, range or choices, label and help. It drives everything that
reads or writes settings:

* :meth:`Settings.problems` — the one validation, with one message per value out of range;
* :meth:`Settings.from_query` / :meth:`Settings.to_query` — a link's ``?lr=0.5&hidden=128,64``;
* :meth:`Settings.from_checkpoint` — what a saved network was trained with;
* the sidebar's widgets take their limits from :data:`FIELDS` (``ui``);
* the command line (``python -m core.train``) validates through :meth:`Settings.problems`.

So a value the sidebar cannot show can come neither from a link, nor from a checkpoint,
nor from the command line: each gets the same message instead.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

from core.engine.activations import ACTIVATIONS
from core.engine.augment import MAX_ROTATE, MAX_SHIFT
from core.data.mnist import SEED_POOL, SEED_VAL
from core.engine.network import BN_ONE_IMAGE, INITS, MAX_DROPOUT, MAX_HIDDEN_LAYERS, MAX_UNITS
from core.engine.optim import OPTIMIZERS, make_optimizer, usual_lr

MNIST_IMAGES = 60_000
MAX_IMAGES = 1_000_000      # an upload's rows; the images really there are checked by Settings.problems


@dataclass(frozen=True)
class Field:
    """One setting: its range (numbers) or choices (text), and how to name it to a person."""

    name: str
    label: str
    lo: float | None = None
    hi: float | None = None
    names: dict | None = None   # for a choice: each choice → its registry record (``.label``) or its name
    help: str = ""
    model: bool = False     # changing it means another network (or other data): the old one is thrown away
    short: str = ""         # its heading in a table with a column per setting (Compare runs); "" for the label

    def problem(self, value) -> str | None:
        """Why ``value`` cannot be used for this setting, or None."""
        if self.choices:
            return None if value in self.choices else \
                f"{self.label} must be one of {', '.join(self.choices)}, not {value!r}."
        if isinstance(self.lo, bool):       # a switch: on or off, nothing else
            return None if isinstance(value, bool) else f"{self.label} is on or off (1 or 0), not {value!r}."
        if self.name == "hidden":
            return None if 1 <= len(value) <= MAX_HIDDEN_LAYERS and all(self.lo <= h <= self.hi for h in value) else \
                f"{self.label}: use {HIDDEN_RULE}, not {value}."
        if isinstance(value, float) and not math.isfinite(value):
            return f"{self.label} must be a finite number, not {value}."
        if not self.lo <= value <= self.hi:
            return f"{self.label} must be {_num(self.lo)} to {_num(self.hi)}, not {_num(value)}."
        return None

    @property
    def heading(self) -> str:
        return self.short or self.label

    @property
    def choices(self) -> tuple[str, ...]:
        """The keys of the registry, read when asked: a record registered later is offered too."""
        return tuple(self.names or ())

    def choice_label(self, choice: str) -> str:
        named = (self.names or {}).get(choice, choice)
        return getattr(named, "label", named)

    def parse(self, raw: str, like):
        """The value of ``raw`` (text from a link) in the type of ``like``; raises ValueError."""
        if self.name == "hidden":
            return tuple(int(x) for x in raw.split(",") if x.strip())
        if isinstance(like, bool):          # a switch: ?batchnorm=1
            word = raw.strip().lower()
            if word not in SWITCH_WORDS:
                raise ValueError(raw)
            return SWITCH_WORDS[word]
        if isinstance(like, float):
            return float(raw)
        if isinstance(like, int):
            return int(raw)
        return raw

    def show(self, value) -> str:
        """``value`` as a link writes it (``1`` for on, ``64,64``)."""
        if isinstance(value, bool):
            return "1" if value else "0"
        return ",".join(map(str, value)) if self.name == "hidden" else str(value)

    def words(self, value) -> str:
        """``value`` as a person reads it in a table or a name: ``on``/``off``, ``64,64``, ``0.1``."""
        return ("on" if value else "off") if isinstance(value, bool) else self.show(value)


def _num(x) -> str:
    """1,000 for whole numbers, 1e-06 or 0.5 for the others."""
    return f"{int(x):,}" if float(x).is_integer() and abs(x) < 1e15 else f"{x:g}"


SWITCH_WORDS = {"1": True, "0": False, "true": True, "false": False, "on": True, "off": False}
HIDDEN_RULE = f"1 to {MAX_HIDDEN_LAYERS} hidden layers of 1 to {MAX_UNITS} units"

FIELDS: dict[str, Field] = {f.name: f for f in (
    Field("hidden", "Hidden layers", 1, MAX_UNITS, model=True, short="Hidden",
          help=f"Units per hidden layer, 1 to {MAX_HIDDEN_LAYERS} layers: the seed's is 64, 64."),
    Field("activation", "Activation", names=ACTIVATIONS, model=True),
    Field("init", "Initialisation", names=INITS, model=True,
          help="; ".join(f"{i.label}" for i in INITS.values()) + "."),
    Field("optimizer", "Optimizer", names=OPTIMIZERS),
    Field("lr", "Learning rate η", 1e-6, 100.0, short="η", help="The seed's is 0.1 (Adam's and RMSprop's usual one is 0.001)."),
    Field("momentum", "Momentum μ", 0.0, 0.999, short="μ", help="For SGD + momentum: how much of the last step's "
                                                     "direction each step keeps."),
    Field("weight_decay", "L2 weight decay λ", 0.0, 1.0, short="λ"),
    Field("dropout", "Dropout p", 0.0, MAX_DROPOUT, model=True, short="Dropout",
          help="The probability of dropping each hidden unit in a training step (0: off, the seed's); "
               "kept units are scaled by 1/(1 − p), and nothing is dropped at evaluation."),
    Field("batchnorm", "Batch norm", False, True, model=True,
          help="Normalise each hidden layer's weighted inputs over the batch (Ẑ = (Z − μ)/√(σ² + ε)), then scale "
               "and shift them by a learnt γ and β: N = γ ⊙ Ẑ + β, A = f(N). Evaluation normalises with running "
               "averages of μ and σ² (off: the seed's)."),
    Field("shift", "Augment: shift (pixels)", 0, MAX_SHIFT, model=True, short="Shift (px)",
          help="Data augmentation: each training image is moved by up to this many whole pixels across and "
               "down, at random in every step (0: off, the seed's). Evaluation uses the images as they are."),
    Field("rotate", "Augment: rotation (degrees)", 0.0, MAX_ROTATE, model=True, short="Rotate (°)",
          help="Data augmentation: each training image is turned by a random angle of up to this many degrees "
               "either way about its centre (0: off, the seed's)."),
    Field("batch_size", "Batch size m", 1, 4096, model=True, short="Batch",
          help="Images per mini-batch (at most the training set)."),
    Field("seed", "Seed", 0, 2**31 - 1, model=True,
          help="Draws the initial weights, the split, the order of the batches, dropout's masks and "
               "augmentation's shifts and angles."),
    Field("pool", "Image pool (train + validation)", 2, MAX_IMAGES, model=True, short="Pool",
          help="The seed uses the first 42,000 images; 5,000 is good for quick demos. "
               "At most 60,000 for MNIST, or the rows of your upload."),
    Field("val", "Held out for validation", 1, MAX_IMAGES - 1, model=True, short="Held out"),
    Field("epochs", "Epochs", 1, 10_000, help="How many epochs a run trains to (Start training goes this far)."),
    Field("dataset", "Images", model=True,
          names={"mnist": "Shipped MNIST", "upload": "My uploaded train.csv"}),
)}


MAX_EPOCHS = int(FIELDS["epochs"].hi)   # the furthest epoch a network trains to (the training page's too)


def most_epochs(steps_per_epoch: int) -> int:
    """The furthest epoch a network whose epochs have ``steps_per_epoch`` steps trains to: the
    Epochs field's top, or fewer when that many epochs would take more than :data:`MAX_STEPS`
    steps (the history keeps every step's loss, and a checkpoint holds at most that many)."""
    return min(int(FIELDS["epochs"].hi), MAX_STEPS // max(1, steps_per_epoch))


@dataclass(frozen=True)
class Settings:
    """Everything that defines a network and how it trains. The defaults are the seed's."""

    hidden: tuple[int, ...] = (64, 64)
    activation: str = "relu"
    init: str = "seed"
    optimizer: str = "sgd"
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 0.0
    dropout: float = 0.0
    batchnorm: bool = False         # batch norm after each hidden layer's Z (False: none, the seed's)
    shift: int = 0                  # data augmentation: pixels each way (0: none)
    rotate: float = 0.0             # … and degrees each way (0: none)
    batch_size: int = 64
    seed: int = 0
    pool: int = SEED_POOL
    val: int = SEED_VAL
    epochs: int = 1000
    dataset: str = "mnist"          # "mnist" or "upload"

    # -- the one validation ---------------------------------------------------------------------
    def problems(self, n_source: int = MNIST_IMAGES) -> list[str]:
        """Why these settings cannot be used with ``n_source`` images (empty when they can)."""
        each = {n: p for n, f in FIELDS.items() if (p := f.problem(getattr(self, n)))}
        out = list(each.values())
        if {"pool", "val", "batch_size"} & set(each):
            return out
        if self.pool > n_source:
            out.append(f"{FIELDS['pool'].label} must be 2 to {n_source:,} (the images there are), "
                       f"not {self.pool:,}.")
        elif self.val >= self.pool:
            out.append(f"{FIELDS['val'].label} must be 1 to {self.pool - 1:,} (fewer than the pool), "
                       f"not {self.val:,}.")
        elif self.batchnorm and (self.batch_size < 2 or (self.pool - self.val) % self.batch_size == 1):
            out.append(BN_ONE_IMAGE + ("" if self.batch_size < 2 else
                       f" {self.pool - self.val:,} training images in batches of {self.batch_size:,} leave one "
                       "image for the last batch of each epoch: change the batch size or the images held out."))
        elif self.batch_size > self.pool - self.val:
            out.append(f"{FIELDS['batch_size'].label} must be 1 to {self.pool - self.val:,} (the training "
                       f"set), not {self.batch_size:,}.")
        elif "epochs" not in each and self.epochs > (most := most_epochs(self.steps_per_epoch)):
            out.append(f"{FIELDS['epochs'].label} must be 1 to {most:,} with these sizes, not {self.epochs:,}: "
                       f"{self.pool - self.val:,} training images in batches of {self.batch_size:,} make "
                       f"{self.steps_per_epoch:,} steps an epoch, and a network takes at most {MAX_STEPS:,} steps "
                       f"(its checkpoint keeps the loss of every one).")
        return out

    @property
    def steps_per_epoch(self) -> int:
        """Mini-batches in an epoch: the training images (the pool less the validation set) in
        batches of ``batch_size``, the last one smaller when they do not divide."""
        return -(-(self.pool - self.val) // self.batch_size)

    def model_changes(self, other: "Settings") -> list[str]:
        return [n for n, f in FIELDS.items() if f.model and getattr(self, n) != getattr(other, n)]

    def with_usual_lr(self, before: "Settings") -> tuple["Settings", str]:
        """When the optimizer changed and η was left at the old optimizer's usual value, these
        settings with the new optimizer's usual η instead, and a note saying so ("" and the settings
        as they are otherwise): SGD's 0.1 makes Adam's or RMSprop's first steps blow up."""
        old, new = usual_lr(before.optimizer), usual_lr(self.optimizer)
        if self.optimizer == before.optimizer or self.lr != old or new == old:
            return self, ""
        label = FIELDS["optimizer"].choice_label
        return replace(self, lr=new), (f"η set to {new:g}, {label(self.optimizer)}'s usual learning rate (it was "
                                       f"{old:g}, {label(before.optimizer)}'s). Change it in the settings if you "
                                       "meant to keep it.")

    def make_optimizer(self):
        return make_optimizer(self.optimizer, **{n: getattr(self, n) for n in OPTIMIZERS[self.optimizer].settings})

    # -- links --------------------------------------------------------------------------------------
    def to_query(self) -> dict[str, str]:
        """Only what differs from the defaults, so links stay short."""
        default = Settings()
        return {n: f.show(getattr(self, n)) for n, f in FIELDS.items() if getattr(self, n) != getattr(default, n)}

    @classmethod
    def from_query(cls, query) -> tuple["Settings", list[str]]:
        """Settings from a link's parameters. A value that cannot be read, or is out of range,
        is left at its default and reported; the rest of the link is kept."""
        default, kw, notes = cls(), {}, []
        for name, f in FIELDS.items():
            if name not in query:
                continue
            raw = str(query[name])
            try:
                value = f.parse(raw, getattr(default, name))
            except ValueError:
                notes.append(f"Ignored {name}={raw[:40]!r} from the link: not a {type(getattr(default, name)).__name__}.")
                continue
            problem = f.problem(value)
            if problem:
                notes.append(f"Ignored {name} from the link: {problem}")
                continue
            kw[name] = value
        settings = replace(default, **kw)
        if settings.problems() and not replace(settings, epochs=1).problems():
            # the sizes fit, but make too many steps for the link's epochs: train fewer epochs
            notes.extend(settings.problems())
            settings = replace(settings, epochs=most_epochs(settings.steps_per_epoch))
            notes.append(f"The link's epochs were lowered to {settings.epochs:,}.")
        if settings.problems():     # each value is fine alone, but the sizes do not fit together
            notes.extend(settings.problems())
            sizes = ("pool", "val", "batch_size")
            settings = replace(settings, **{n: getattr(default, n) for n in sizes})
            notes.append("The link's image pool, validation and batch sizes were left at their defaults.")
            if settings.problems():
                settings = default
        return settings, notes

    # -- a saved network ----------------------------------------------------------------------------
    @classmethod
    def of_network(cls, net_config: dict, hyper: dict, trainer_state: dict, split: dict,
                   base: "Settings | None" = None, n_source: int = MNIST_IMAGES) -> "Settings":
        """The settings a saved network was made and trained with (``base`` fills the rest:
        the epochs to train to). A split that does not fit the ``n_source`` images it will be
        opened on (it was made on an upload) becomes the default one. Check the result with
        :meth:`problems`: a saved network may hold values the app does not offer."""
        base, default = base or cls(), cls()
        pool, val = int(split.get("pool", default.pool)), int(split.get("val", default.val))
        if not (2 <= pool <= n_source and 1 <= val < pool):
            pool, val = default.pool, default.val
        s = replace(base, hidden=tuple(int(h) for h in net_config["sizes"][1:-1]),
                    activation=net_config["activation"], init=net_config["init"],
                    seed=int(net_config["seed"]), optimizer=hyper["optimizer"], lr=float(hyper["lr"]),
                    momentum=float(hyper.get("momentum", base.momentum)),
                    weight_decay=float(hyper.get("weight_decay", 0.0)),
                    dropout=float(net_config.get("dropout", 0.0)),     # a file from before dropout: none
                    batchnorm=bool(net_config.get("batchnorm", False)),   # … or from before batch norm
                    shift=int(trainer_state.get("shift", 0)),        # a file from before augmentation: none
                    rotate=float(trainer_state.get("rotate", 0.0)),
                    batch_size=int(trainer_state.get("batch_size", base.batch_size)),
                    pool=pool, val=val, dataset="mnist")
        # the epochs to train to: base's, or as many as the saved network's sizes allow
        return replace(s, epochs=min(s.epochs, most_epochs(s.steps_per_epoch))) if s.batch_size >= 1 else s


# Steps: MAX_EPOCHS epochs of all of MNIST in the seed's batches of 64 (9,380,000). Smaller batches or
# more images make more steps an epoch, so fewer epochs (Settings.problems, most_epochs): the history
# keeps every step's loss, and a checkpoint with more than this is refused (core/lab/checkpoint.py).
MAX_STEPS = MAX_EPOCHS * math.ceil(MNIST_IMAGES / Settings().batch_size)


# --------------------------------------------------------------------------- presets
@dataclass(frozen=True)
class Preset:
    """A named recipe: the settings of a run worth starting in one go."""

    name: str            # python -m core.train --preset NAME
    label: str
    about: str
    settings: Settings


PRESETS: dict[str, Preset] = {p.name: p for p in (
    Preset("seed", "the seed", "The seed notebook's protocol: 784-64-64-10 ReLU, SGD with η = 0.1, batches of 64, "
           "0.01·N(0,1) weights, 1000 epochs on 41,000 images with 1,000 held out (data/pretrained.npz).",
           Settings()),
    Preset("seed-improved", "the seed, improved",
           "The same 784-64-64-10 ReLU network and the same SGD (η = 0.1, batches of 64, the same initial weights), "
           "trained on all 59,000 MNIST training images less 1,000 held out, each batch moved up to 2 px and "
           "turned up to 10° (data augmentation), for 150 epochs (data/improved.npz).",
           Settings(pool=MNIST_IMAGES, val=1000, shift=2, rotate=10.0, epochs=150)),
)}
