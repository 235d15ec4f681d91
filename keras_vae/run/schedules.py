"""Adam's learning rate for a run, and for a run resumed under another schedule.

A finished run resumed with more `--epochs` gets a schedule other than the one it ended
on: a cosine decay over 24 epochs that had reached 4·10⁻⁶ is, over 40, at 3.5·10⁻⁴ where
the run resumes. That jump broke the spatial Fashion-MNIST run of docs/spatial.md
(2026-12-06): two updates at the new rate took its KL from 148 to 11,210 nats, and every
update after them was too large to apply. Ramping the rate up linearly over the first
resumed epoch, from where the run stopped, trained on without a skipped update
(measured over 500 steps). So a resumed run starts at the rate its previous schedule had
reached and rises to the new schedule within an epoch; a run resumed on its own schedule
(after a crash) is unchanged by this.
"""

from __future__ import annotations

import keras

from keras_vae.config import TrainConfig


def learning_rate(config: TrainConfig, steps_per_epoch: int, resumed_from=None):
    """Adam's learning rate: a constant, or a cosine decay to 0 over all the run's steps
    (the optimizer's step count is restored on resume, so the schedule continues).
    `resumed_from`: (optimizer step, rate) where a resumed run's previous schedule
    stopped (`resumed_from`); the rate then ramps from there (`RampFromResume`)."""
    if config.lr_schedule == "cosine":
        rate = keras.optimizers.schedules.CosineDecay(
            config.learning_rate, decay_steps=config.epochs * steps_per_epoch)
    else:
        rate = config.learning_rate
    if resumed_from is None or rate_at(rate, resumed_from[0]) <= resumed_from[1]:
        # No ramp: the plain rate, as the run was built before; a constant wrapped in a
        # schedule would drop the optimizer's learning-rate variable, and the backup's
        # optimizer variables would no longer load one to one.
        return rate
    step, previous_rate = resumed_from
    return RampFromResume(rate, step, previous_rate, steps_per_epoch)


def rate_at(rate, step: int) -> float:
    """The value of a learning rate (a schedule or a number) at optimizer step `step`."""
    return float(rate(step)) if callable(rate) else float(rate)


def resumed_from(previous: TrainConfig | None, history: list[dict],
                 steps_per_epoch: int) -> tuple[int, float] | None:
    """(optimizer step, rate) at which a resumed run's previous schedule stopped: its
    record `previous` (None for a new run) and the epochs kept in its `history`. The
    step counts applied updates (a skipped one does not advance Adam). The rate is the
    lower of the record's schedule there and the last epoch's logged rate: a run
    interrupted in the first epoch after a resume has the new record but the old
    epochs, and must ramp again."""
    if previous is None or not history:
        return None
    step = sum(steps_per_epoch - int(row.get("skipped_updates", 0)) for row in history)
    rate = rate_at(learning_rate(previous, steps_per_epoch), step)
    return step, min(rate, history[-1].get("learning_rate", rate))


def ramp_line(config: TrainConfig, steps_per_epoch: int, resumed: tuple[int, float]
              ) -> str | None:
    """The line that says a resumed run's rate ramps up (None if it does not)."""
    rate = learning_rate(config, steps_per_epoch, resumed)
    if not isinstance(rate, RampFromResume):
        return None
    return (f"the learning rate ramps from {rate.start_rate:.2g}, where the run stopped, "
            f"to the schedule's {rate_at(rate.rate, rate.start):.2g} over the first "
            f"resumed epoch")


@keras.saving.register_keras_serializable(package="keras_vae")
class RampFromResume(keras.optimizers.schedules.LearningRateSchedule):
    """`rate` from step `start + ramp_steps` on; before that, where `rate` is above
    `start_rate`, a linear ramp from `start_rate` (at `start`) up to it. Never above
    `rate`, so a schedule that continues below where the run stopped is unchanged."""

    def __init__(self, rate, start: int, start_rate: float, ramp_steps: int):
        self.rate, self.start, self.start_rate = rate, start, start_rate
        self.ramp_steps = max(1, ramp_steps)

    def __call__(self, step):
        step = keras.ops.cast(step, "float32")
        target = self.rate(step) if callable(self.rate) else keras.ops.convert_to_tensor(
            self.rate, "float32")
        done = keras.ops.clip((step - self.start) / self.ramp_steps, 0.0, 1.0)
        return target - (1.0 - done) * keras.ops.maximum(0.0, target - self.start_rate)

    def get_config(self):
        rate = (keras.saving.serialize_keras_object(self.rate) if callable(self.rate)
                else self.rate)
        return {"rate": rate, "start": self.start, "start_rate": self.start_rate,
                "ramp_steps": self.ramp_steps}

    @classmethod
    def from_config(cls, config):
        rate = config["rate"]
        if isinstance(rate, dict):
            rate = keras.saving.deserialize_keras_object(rate)
        return cls(rate, config["start"], config["start_rate"], config["ramp_steps"])
