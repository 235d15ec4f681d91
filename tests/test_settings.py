"""Specification of keras_vae/config/settings.py: each setting is declared once, on its field,
and the command's flags, defaults and help come from there."""

from __future__ import annotations

import dataclasses
import re

import pytest

from keras_vae.config import ModelConfig, TrainConfig
from keras_vae.config.settings import flag_name, has_flag
from keras_vae.train import config_from, make_parser

COMMAND_FLAGS = {"help", "debug", "resume", "overwrite", "verbose"}
"""What the command does with the run, not what the run is: not settings."""


def _fields():
    return [f for record in (TrainConfig, ModelConfig) for f in dataclasses.fields(record)]


def _help_of(flag: str) -> str:
    parser = make_parser()
    action = next(a for a in parser._actions if flag in a.option_strings)
    return " ".join(action.help.split())


def test_every_flag_is_a_setting_of_the_record_or_a_command_flag():
    dests = {action.dest for action in make_parser()._actions}
    settings = {f.name for f in _fields() if has_flag(f)}
    assert dests == settings | COMMAND_FLAGS
    assert {f.name for f in _fields() if not has_flag(f)} == {
        "model", "image_shape", "label_names", "split_seed", "pixel_kind"}


def test_no_flags_give_the_records_own_defaults():
    config = config_from(make_parser().parse_args([]))
    assert config == TrainConfig(out=config.out)
    assert re.fullmatch(r"runs/\d{8}-\d{6}-mnist", config.out)


@pytest.mark.parametrize("flag, value, field, expected", [
    ("--latent-dim", "32,16", "latent_dim", (32, 16)),
    ("--no-jit", None, "jit_compile", False),
    ("--no-export", None, "export", False),
    ("--conditional", None, "conditional", True),
    ("--image-size", "64", "image_size", (64, 64)),
])
def test_a_flag_sets_its_field(flag, value, field, expected):
    args = make_parser().parse_args([flag] + ([value] if value else []))
    config = config_from(args)
    record = config.model if hasattr(config.model, field) else config
    assert getattr(record, field) == expected


def test_help_states_the_defaults_the_record_settles_to():
    """The defaults that depend on the likelihood, as a record settles them."""
    logistic, bernoulli = ModelConfig(likelihood="logistic"), ModelConfig(likelihood="bernoulli")
    spatial = ModelConfig(likelihood="logistic", arch="spatial")
    assert (f"(default: {','.join(map(str, logistic.latent_dim))} under the logistic "
            f"likelihood (8-bit pixels), else {bernoulli.latent_dim}; {spatial.latent_dim} "
            f"with --arch spatial)") in _help_of("--latent-dim")
    assert (f"(default: {bernoulli.hidden_dims[0]}; {spatial.hidden_dims[0]} with --arch "
            f"spatial)") in _help_of("--hidden-dims")
    conditional = ModelConfig(likelihood="logistic", conditional=True)
    assert ((logistic.prior, conditional.prior, bernoulli.prior, spatial.prior)
            == ("vamp", "normal", "normal", "normal"))
    assert ("(default: vamp under the logistic likelihood (8-bit pixels) without "
            "--conditional or --arch spatial, else normal)") in _help_of("--prior")
    spatial_vamp = ModelConfig(likelihood="logistic", arch="spatial", prior="vamp")
    assert (f"(default: {ModelConfig(prior='vamp').pseudo_inputs}; "
            f"{spatial_vamp.pseudo_inputs} with --arch spatial)") in _help_of("--pseudo-inputs")
    assert f"(default: {logistic.mixture_components})" in _help_of("--mixture-components")
    assert f"(default: {conditional.class_components})" in _help_of("--class-components")
    assert f"(default: {ModelConfig(objective='iwae').iwae_k})" in _help_of("--iwae-k")


def test_every_plain_default_in_help_is_the_fields():
    for field in _fields():
        if not has_flag(field) or field.metadata["default_text"] is not None:
            continue
        text = _help_of(flag_name(field))
        if isinstance(field.default, bool) or field.metadata["const"] is not None:
            assert "(default:" not in text
        elif field.default is not None:
            shown = (",".join(map(str, field.default)) if isinstance(field.default, tuple)
                     else str(field.default))
            assert text.endswith(f"(default: {shown})"), field.name
