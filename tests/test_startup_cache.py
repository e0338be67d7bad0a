"""A warm start does not measure again what the first start measured: the agreement of a
reduced-precision backend with fp32, the backend timings and OpenVINO's compiled model are
cached on disk; the text encoder loads beside the image network."""

from __future__ import annotations

import pytest

from instructir_desktop.core import backends
from instructir_desktop.core.restorer import Restorer


@pytest.mark.precision("bf16")
def test_a_second_load_reuses_the_agreement_verdict(tiny_pack, tmp_path, monkeypatch):
    calls = []
    real = backends.agrees_with_fp32

    def counting(backend, reference, *args, **kwargs):
        calls.append(f"{backend.name}:{backend.precision}")
        return real(backend, reference, *args, **kwargs)

    monkeypatch.setattr(backends, "agrees_with_fp32", counting)
    first = Restorer(tiny_pack, device="cpu", backend="torch", cache_folder=tmp_path)
    assert calls == ["torch:bf16"]
    assert (tmp_path / "backend-agreement.json").is_file()
    second = Restorer(tiny_pack, device="cpu", backend="torch", cache_folder=tmp_path)
    assert calls == ["torch:bf16"]  # not measured again
    assert second.backend.precision == first.backend.precision


def test_openvino_keeps_its_compiled_model_between_starts(tiny_pack, tmp_path):
    pytest.importorskip("openvino")
    r = Restorer(tiny_pack, device="cpu", backend="openvino", cache_folder=tmp_path)
    import numpy as np

    r.restore(np.random.default_rng(0).random((40, 56, 3)).astype(np.float32), "denoise")
    assert any((tmp_path / "compiled").iterdir())


def test_the_text_encoder_is_loaded_with_the_model(tiny_pack, tmp_path):
    r = Restorer(tiny_pack, device="cpu", backend="torch", cache_folder=tmp_path)
    assert r.encoder._sentence is not None  # ready before the first message
