"""Train from the command line: ``python -m core.train``.

The defaults are the seed notebook's protocol: 784 → 64 → 64 → 10 with ReLU,
``0.01·N(0,1)`` weights, plain SGD with learning rate 0.1, batch size 64, 1000
epochs on 41,000 images with 1,000 held out. Progress goes to stderr; the last
line on stdout is one JSON object with the results, for scripts to read.

    python -m core.train --epochs 5 --out model.npz --history history.csv
    python -m core.train --preset seed-improved --out data/improved.npz
"""
from __future__ import annotations

import argparse
import json
import sys
import time


from core.lab import checkpoint
from core.engine.blas import set_blas_threads
from core.data.kaggle_csv import load_csv
from core.data.mnist import digits_from_csv, load_mnist, make_split
from core.engine.network import DTYPES, MLP, N_CLASSES, N_PIXELS
from core.lab.settings import FIELDS, HIDDEN_RULE, PRESETS, Settings
from core.engine.trainer import Trainer, evaluate


def parse_args(argv=None) -> argparse.Namespace:
    """The flags of the settings come from the one table (core/lab/settings.py): same defaults, same
    names, and the same validation as the app's sidebar and links."""
    ap = argparse.ArgumentParser(prog="python -m core.train", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--preset", choices=PRESETS, default=None,
                    help="start from a named recipe (" + "; ".join(f"{p.name}: {p.label}" for p in PRESETS.values())
                         + "); other flags change it")
    first = argparse.ArgumentParser(add_help=False)      # the preset first: it gives the other flags' defaults
    first.add_argument("--preset", choices=PRESETS, default=None)
    known, _ = first.parse_known_args(argv)
    d = PRESETS[known.preset].settings if known.preset else Settings()

    def setting(flag: str, name: str, **kw):
        f = FIELDS[name]
        limits = f" ({f.lo:g} to {f.hi:g})" if f.lo is not None and name != "hidden" and \
            not isinstance(f.lo, bool) else ""
        ap.add_argument(flag, default=getattr(d, name), help=f"{f.label}{limits}. {f.help}".strip(),
                        **({"choices": f.choices} if f.choices else {}), **kw)

    setting("--epochs", "epochs", type=int)
    setting("--lr", "lr", type=float)
    setting("--batch-size", "batch_size", type=int)
    ap.add_argument("--hidden", default=",".join(map(str, d.hidden)),
                    help=f"hidden layer sizes, comma-separated ({HIDDEN_RULE})")
    setting("--activation", "activation")
    setting("--init", "init")
    setting("--optimizer", "optimizer")
    setting("--momentum", "momentum", type=float)
    setting("--weight-decay", "weight_decay", type=float)
    setting("--dropout", "dropout", type=float)
    setting("--batchnorm", "batchnorm", action=argparse.BooleanOptionalAction)   # --batchnorm / --no-batchnorm
    setting("--shift", "shift", type=int)
    setting("--rotate", "rotate", type=float)
    setting("--seed", "seed", type=int)
    ap.add_argument("--train-size", type=int, default=d.pool - d.val, help="training images (validation comes on top)")
    ap.add_argument("--val-size", type=int, default=d.val, help=FIELDS["val"].label)
    ap.add_argument("--dtype", choices=DTYPES, default=DTYPES[0])
    ap.add_argument("--data", metavar="PATH.csv", help="a Kaggle train.csv instead of the shipped MNIST")
    ap.add_argument("--out", metavar="model.npz", help="write a checkpoint here at the end")
    ap.add_argument("--history", metavar="history.csv", help="write the per-epoch history here")
    ap.add_argument("--threads", type=int, default=1,
                    help="BLAS threads; 1 is fastest for this small network unless the machine is idle "
                         "(see core/engine/blas.py); 0 leaves the library's default")
    ap.add_argument("--log-every", type=int, default=None, help="print a progress line every N epochs")
    ap.add_argument("--quiet", action="store_true", help="only the final JSON line")
    return ap.parse_args(argv)


def settings_of(a: argparse.Namespace) -> Settings:
    return Settings(hidden=tuple(int(h) for h in a.hidden.split(",") if h.strip()), activation=a.activation,
                    init=a.init, optimizer=a.optimizer, lr=a.lr, momentum=a.momentum,
                    weight_decay=a.weight_decay, dropout=a.dropout, batchnorm=a.batchnorm, shift=a.shift, rotate=a.rotate,
                    batch_size=a.batch_size, seed=a.seed, pool=a.train_size + a.val_size, val=a.val_size, epochs=a.epochs)


def _fmt_time(s: float) -> str:
    s = int(round(s))
    return f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"


def main(argv=None) -> int:
    a = parse_args(argv)
    try:
        s = settings_of(a)
        if a.data:
            source, test = digits_from_csv(load_csv(a.data, require_labels=True), a.data), None
        else:
            mnist = load_mnist()
            source, test = mnist["train"], mnist["test"]
        problems = s.problems(len(source))
        if problems:
            raise ValueError(" ".join(problems))
        split = make_split(source, pool=s.pool, val=s.val, seed=s.seed, test=test)
        net = MLP([N_PIXELS, *s.hidden, N_CLASSES], activation=s.activation, init=s.init, seed=s.seed, dtype=a.dtype,
                  dropout=s.dropout, batchnorm=s.batchnorm)
        opt = s.make_optimizer()
        trainer = Trainer(net, opt, split, batch_size=s.batch_size, seed=s.seed, shift=s.shift, rotate=s.rotate)
    except (ValueError, OSError) as err:  # DataError is a ValueError
        print(f"error: {err}", file=sys.stderr)
        return 2
    hidden = list(s.hidden)

    log_every = a.log_every or (1 if a.epochs <= 50 else 10)
    t0 = time.perf_counter()

    def on_epoch(tr: Trainer) -> None:
        if a.quiet or (tr.epoch % log_every and tr.epoch not in (1, a.epochs)):
            return
        h, el = tr.history.rows, time.perf_counter() - t0
        eta = el / tr.epoch * (a.epochs - tr.epoch)
        print(f"epoch {tr.epoch:>4}/{a.epochs}  loss {h['train_loss'][-1]:.4f}  "
              f"train {h['train_acc'][-1]:.2%}  val {h['val_acc'][-1]:.2%}  "
              f"{el / tr.epoch:.3f} s/epoch  elapsed {_fmt_time(el)}  ETA {_fmt_time(eta)}",
              file=sys.stderr, flush=True)

    set_blas_threads(a.threads or None)
    result = trainer.run(a.epochs, on_epoch=on_epoch)
    seconds = time.perf_counter() - t0

    h = trainer.history
    summary = {
        "epochs": trainer.epoch, "status": result.reason,
        "train_loss": h.rows["train_loss"][-1] if len(h) else None,
        "train_acc": h.rows["train_acc"][-1] if len(h) else None,
        "val_acc": h.rows["val_acc"][-1] if len(h) else evaluate(net, split.val.X, split.val.y)["acc"],
        "test_acc": evaluate(net, test.X, test.y)["acc"] if test is not None else None,
        "seconds": round(seconds, 2),
        "seconds_per_epoch": round(seconds / trainer.epoch, 4) if trainer.epoch else None,
        "steps": trainer.global_step,
        "config": {"hidden": hidden, "activation": a.activation, "init": a.init, "optimizer": a.optimizer,
                   "lr": a.lr, "batch_size": a.batch_size, "seed": a.seed, "dtype": a.dtype,
                   "dropout": s.dropout, "batchnorm": s.batchnorm, "shift": s.shift, "rotate": s.rotate,
                   "train_size": split.n_train, "val_size": split.n_val, "data": a.data or "mnist"},
    }
    if result.reason == "diverged":
        summary["message"] = result.message
        print(result.message, file=sys.stderr)
    if a.out:
        checkpoint.save(a.out, trainer.net, trainer.optimizer, trainer,
                        meta={"test_acc": summary["test_acc"], "seconds": summary["seconds"],
                              "made_by": "python -m core.train " + " ".join(sys.argv[1:] if argv is None else argv)})
    if a.history:
        h.frame().to_csv(a.history, index=False)
    print(json.dumps(summary))
    return 0 if result.reason == "done" else 1


if __name__ == "__main__":
    sys.exit(main())
