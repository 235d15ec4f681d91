"""Specification of export/litert.py: a LiteRT decoder of built-in ops."""

from __future__ import annotations


def test_tflite_uses_builtin_ops_only(small_export):
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=small_export["paths"]["decoder_tflite"])
    ops = {op["op_name"] for op in interpreter._get_ops_details()}
    assert ops and not any("Flex" in op or "Custom" in op for op in ops), ops
