"""Specification of keras_vae/machine.py: benchmark tables name the machine they ran on."""

from __future__ import annotations

import os

from keras_vae.machine import describe_machine


def test_the_description_names_the_cpu_and_its_core_count():
    description = describe_machine()
    model, cores = description.rsplit(", ", 1)
    assert model and cores == f"{os.cpu_count()} cores"
    if os.path.exists("/proc/cpuinfo"):
        with open("/proc/cpuinfo") as f:
            assert model in f.read()
