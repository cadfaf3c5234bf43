"""What several tests check of a run: Start training's run (another process, paused and resumed)
is the in-process run of the same trainer, bit for bit."""
import numpy as np

from core.data.mnist import make_split
from core.lab.run.controller import PAUSED, RunController


def small_split(mnist):
    return make_split(mnist["train"], pool=1100, val=100, seed=0)     # 16 steps an epoch


def paused_and_resumed_is_the_whole_run(make_trainer, epochs: int = 2, pause_at: int = 21):
    """Train one trainer ``epochs`` in process and another in the run's process, paused at
    ``pause_at`` and resumed; assert the two end with the same parameters and optimizer state.
    Returns (the in-process trainer, the other)."""
    whole = make_trainer()
    whole.run(epochs)
    tr = make_trainer()
    ctrl = RunController(tr)
    ctrl.start(epochs, pause_at=pause_at)
    ctrl.join(60)
    assert tr.global_step == pause_at and ctrl.status == PAUSED
    ctrl.resume()
    ctrl.join(60)
    assert not ctrl.active
    for k in whole.net.params:
        np.testing.assert_array_equal(whole.net.params[k], tr.net.params[k], err_msg=k)
    for k, v in whole.optimizer.state().items():
        np.testing.assert_array_equal(v, tr.optimizer.state()[k], err_msg=k)
    return whole, tr
