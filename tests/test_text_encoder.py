"""The frozen sentence encoder: same features as the sentence-transformers library, clear
errors for folders it cannot run, and no SciPy / scikit-learn / sentence-transformers at run
time."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest
import torch

from instructir_desktop.core.errors import ModelCorruptError, ModelNotInstalledError
from instructir_desktop.core.packs import TextEncoderSpec
from instructir_desktop.core.packwriter import MINILM_PACKAGE
from instructir_desktop.core.text import SentenceEncoder, sentence_encoder_folder

TEXTS = [
    "remove the noise",
    "too dark!!",
    "Could you please make this photo a little less blurry? My hand was shaking when I took it.",
    "la foto está muy oscura, ¿puedes aclararla?",
    "写真が暗い",
    "grain " * 400,  # longer than the encoder's 256-token limit: truncated the same way
    "x",
]


@pytest.fixture(scope="module")
def minilm_folder():
    return sentence_encoder_folder(MINILM_PACKAGE, None)


def test_features_match_the_sentence_transformers_library(minilm_folder):
    from sentence_transformers import SentenceTransformer

    ours = SentenceEncoder(minilm_folder).encode(TEXTS, batch_size=3)
    reference = SentenceTransformer(str(minilm_folder), device="cpu").encode(
        TEXTS, convert_to_tensor=True, normalize_embeddings=True
    )
    assert ours.shape == (len(TEXTS), 384) and ours.dtype == torch.float32
    assert torch.allclose(ours, reference.float().cpu(), atol=1e-5)
    assert torch.allclose(ours.norm(dim=1), torch.ones(len(TEXTS)), atol=1e-5)


def test_unsupported_pooling_and_missing_files_are_clear_errors(minilm_folder, tmp_path):
    bad = tmp_path / "encoder"
    shutil.copytree(minilm_folder, bad)
    config = bad / "1_Pooling" / "config.json"
    data = json.loads(config.read_text())
    data["pooling_mode_weightedmean_tokens"] = True
    config.write_text(json.dumps(data))
    with pytest.raises(ModelCorruptError, match="pooling"):
        SentenceEncoder(bad)

    (bad / "modules.json").write_text(
        json.dumps([{"path": "", "type": "sentence_transformers.models.Dense"}])
    )
    with pytest.raises(ModelCorruptError, match="Transformer"):
        SentenceEncoder(bad)

    with pytest.raises(ModelNotInstalledError, match="models download"):
        sentence_encoder_folder(TextEncoderSpec("TaylorAI/bge-micro-v2", "hub"), tmp_path)
    with pytest.raises(ModelCorruptError, match="not one this app uses"):
        sentence_encoder_folder(TextEncoderSpec("x", "package", package="no_such_encoder"), None)


def test_a_known_encoder_package_that_is_missing_says_how_to_install_it(monkeypatch):
    from instructir_desktop.core import text

    monkeypatch.setattr(text, "ENCODER_PACKAGES", frozenset({"no_such_encoder"}))
    with pytest.raises(ModelNotInstalledError, match="pip install no-such-encoder"):
        sentence_encoder_folder(TextEncoderSpec("x", "package", package="no_such_encoder"), None)


def test_intent_and_restore_run_without_scipy_sklearn_or_sentence_transformers():
    # As in the installers, which leave them out: None in sys.modules reads as "not installed"
    # to both `import` and importlib.util.find_spec (transformers' optional-dependency probe).
    code = (
        "import sys\n"
        "for name in ('scipy', 'sklearn', 'sentence_transformers'):\n"
        "    sys.modules[name] = None\n"
        "import numpy as np\n"
        "from instructir_desktop.core.resources import resource_path\n"
        "from instructir_desktop.core.packs import LITE_ID\n"
        "from instructir_desktop.core.restorer import Restorer\n"
        "r = Restorer(resource_path('packs', LITE_ID), device='cpu', backend='torch')\n"
        "print(r.intent('it is far too dark').task)\n"
        "out = r.restore(np.full((40, 50, 3), 0.1, np.float32), 'brighten it up')\n"
        "print(out.shape, bool(out.mean() > 0.1))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True
    ).stdout.split("\n")
    assert out[:2] == ["lowlight", "(40, 50, 3) True"]


def test_the_app_does_not_import_sentence_transformers_or_sklearn():
    code = (
        "import sys\n"
        "from instructir_desktop.core.resources import resource_path\n"
        "from instructir_desktop.core.packs import LITE_ID\n"
        "from instructir_desktop.core.restorer import Restorer\n"
        "Restorer(resource_path('packs', LITE_ID), device='cpu').intent('remove the noise')\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'sklearn', "
        "'sentence_transformers'}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True
    )
    assert out.stdout.strip() == "[]"


def test_loading_prints_no_progress_bar_and_leaves_the_setting_alone(minilm_folder, capfd):
    from transformers.utils import logging as hf_logging

    assert hf_logging.is_progress_bar_enabled()
    SentenceEncoder(minilm_folder)
    out, err = capfd.readouterr()
    assert "Loading weights" not in err + out
    assert hf_logging.is_progress_bar_enabled()


@pytest.mark.parametrize(
    ("text", "clauses"),
    [
        ("it's dark and grainy", ["it's dark", "grainy"]),
        ("Remove the noise, then brighten it.", ["Remove the noise", "brighten it"]),
        ("fix the blur. Also the rain!", ["fix the blur", "the rain"]),
        ("please denoise and then please sharpen", ["denoise", "sharpen"]),
        ("upscale & sharpen; boost colours", ["upscale", "sharpen", "boost colours"]),
        ("too dark as well as noisy", ["too dark", "noisy"]),
        ("brighten it, but do not sharpen", ["brighten it", "do not sharpen"]),
        ("remove the black and white noise", ["remove the black and white noise"]),
        ("Salt & pepper noise", ["Salt & pepper noise"]),
        ("balance the highlights and shadows", ["balance the highlights and shadows"]),
        ("3.5 stops under", ["3.5 stops under"]),
        ("!!! ... ,", []),
    ],
)
def test_split_clauses(text, clauses):
    from instructir_desktop.core.phrasing import split_clauses

    assert split_clauses(text) == clauses


@pytest.mark.parametrize(
    ("text", "darken"),
    [
        ("the photo is too bright", True),
        ("it's way too light", True),
        ("Overexposed!", True),
        ("the sky is over-exposed", True),
        ("highlights are clipped", True),
        ("recover the highlights", True),
        ("lower the exposure", True),
        ("darken it a little", True),
        ("too much sun in this one", True),
        ("I want to darken it", True),
        ("we want it less bright", True),
        ("it's not too bright", False),
        ("don't darken it", False),
        ("not bright enough", False),
        ("make it brighter", False),
        ("it's too dark", False),
        ("brighten the shadows", False),
        ("bright colours please", False),
    ],
)
def test_asks_to_darken(text, darken):
    from instructir_desktop.core.phrasing import asks_to_darken

    assert asks_to_darken(text) is darken


@pytest.mark.parametrize(
    ("text", "read"),
    [
        ("I had the iso too high", "I had the iso too high, noisy"),
        ("shot at iso 6400", "shot at iso 6400, noisy"),
        ("high ISO", "high ISO, noisy"),
        ("cranked the iso", "cranked the iso, noisy"),
        ("ISO6400", "ISO6400, noisy"),
        ("at 3200 iso", "at 3200 iso, noisy"),
        ("iso was 800", "iso was 800, noisy"),
        ("1/60s at f/2.8, iso 3200", "1/60s at f/2.8, iso 3200, noisy"),
        ("it's dark, I had to push the iso", "it's dark, I had to push the iso, noisy"),
        # the flaw already named; a low ISO; a negated one; "iso" inside another word
        ("the ISO noise is bad", "the ISO noise is bad"),
        ("high iso grain", "high iso grain"),
        ("shot at iso 100", "shot at iso 100"),
        ("200 iso", "200 iso"),
        ("iso at 400", "iso at 400"),
        ("I used a low iso", "I used a low iso"),
        ("the iso was set to base", "the iso was set to base"),
        ("the iso is really low", "the iso is really low"),
        ("I didn't raise the iso", "I didn't raise the iso"),
        ("isolate the subject", "isolate the subject"),
        ("an isometric view, miso soup", "an isometric view, miso soup"),
    ],
)
def test_a_high_iso_is_read_with_the_noise_it_causes(text, read):
    from instructir_desktop.core.phrasing import how_taken, reading

    assert reading(text) == read
    if read != text:  # how the photo was taken names the flaw: not set aside beside a request
        assert not how_taken(text)
    assert how_taken("shot at iso 100") and how_taken("I used a low iso")


# The official pack: encoding pinned to the release, whatever the encoder folder says.

RELEASE_TEXTS = [
    "remove the noise",
    "It is TOO dark, brighten it!",
    "fix the blur",
    "grain " * 600,  # over 512 tokens: truncated as the release's tokenizer call does
    "x",
]


@pytest.fixture(scope="module")
def bge_layout(tmp_path_factory):
    """A bge-micro-v2-layout encoder whose files say CLS pooling and no Normalize module."""
    from official_release import write_encoder

    return write_encoder(tmp_path_factory.mktemp("bge") / "text_encoder", pooling="cls")


def _variant(bge_layout, tmp_path, *, pooling: str, normalize_module: bool):
    from official_release import set_sentence_files

    folder = tmp_path / "text_encoder"
    shutil.copytree(bge_layout, folder)
    return set_sentence_files(folder, pooling=pooling, normalize_module=normalize_module)


def test_the_official_manifest_pins_the_release_encoding():
    from instructir_desktop.core.packs import (
        RELEASE_ENCODING,
        PackManifest,
        TextEncoding,
        official_manifest,
    )

    manifest = official_manifest()
    assert manifest.text_encoder.encoding == RELEASE_ENCODING
    assert RELEASE_ENCODING == TextEncoding("mean", True, 512, "longest_first")
    data = json.loads(manifest.to_json())
    assert data["text_encoder"]["encoding"] == {
        "pooling": "mean",
        "normalize": True,
        "max_length": 512,
        "truncation": "longest_first",
    }
    assert PackManifest.from_dict(data).text_encoder == manifest.text_encoder
    names = [f.filename for f in manifest.files_with_role("text_encoder")]
    assert "model.safetensors" in names and "pytorch_model.bin" not in names
    data["text_encoder"]["encoding"]["pooling"] = "weightedmean"
    with pytest.raises(ModelCorruptError):
        PackManifest.from_dict(data)


@pytest.mark.parametrize(
    ("pooling", "normalize_module"), [("cls", False), ("mean", False), ("max", True)]
)
def test_official_encoding_is_the_releases_whatever_the_folder_says(
    bge_layout, tmp_path, pooling, normalize_module
):
    from official_release import release_features

    from instructir_desktop.core.packs import RELEASE_ENCODING

    folder = _variant(bge_layout, tmp_path, pooling=pooling, normalize_module=normalize_module)
    ours = SentenceEncoder(folder, encoding=RELEASE_ENCODING).encode(RELEASE_TEXTS, batch_size=2)
    reference = release_features(folder, RELEASE_TEXTS)
    assert torch.allclose(ours, reference, atol=1e-5)
    # What the folder's own files would have computed differs: the pin is what holds.
    follows_folder = SentenceEncoder(folder).encode(RELEASE_TEXTS)
    assert (follows_folder - reference).abs().max() > 1e-2


def test_official_pack_embedding_and_intent_are_the_releases(bge_layout, tmp_path):
    from official_release import head_state, release_embedding

    from instructir_desktop.core.packs import official_manifest
    from instructir_desktop.core.text import InstructionEncoder

    pack = tmp_path / "pack"
    shutil.copytree(bge_layout, pack / "text_encoder")
    head = head_state()
    torch.save(head, pack / "lm_instructir-7d.pt")
    encoder = InstructionEncoder(official_manifest(), pack)
    for text in ("remove the noise", "it's too dark", "fix the blur"):
        e, probabilities = release_embedding(pack / "text_encoder", head, text)
        assert torch.allclose(encoder.embedding(text), e, atol=1e-5)
        intent = encoder.intent(text)
        assert torch.allclose(
            torch.tensor(list(intent.probabilities.values())), probabilities, atol=1e-5
        )


def test_an_official_pack_installed_without_the_pin_still_encodes_as_the_release(
    bge_layout, tmp_path
):
    from dataclasses import replace

    from official_release import head_state, release_embedding

    from instructir_desktop.core.packs import official_manifest
    from instructir_desktop.core.text import InstructionEncoder

    pack = tmp_path / "pack"
    shutil.copytree(bge_layout, pack / "text_encoder")
    torch.save(head_state(), pack / "lm_instructir-7d.pt")
    old = official_manifest()
    old = replace(old, text_encoder=replace(old.text_encoder, encoding=None))
    e, _ = release_embedding(pack / "text_encoder", head_state(), "remove the noise")
    assert torch.allclose(InstructionEncoder(old, pack).embedding("remove the noise"), e, atol=1e-5)


def test_encoder_weights_safetensors_or_a_weights_only_pickle(bge_layout, tmp_path):
    from official_release import write_encoder

    from instructir_desktop.core.packs import RELEASE_ENCODING

    pickled = write_encoder(tmp_path / "bin", weights="bin")
    assert not (pickled / "model.safetensors").exists()
    from_pickle = SentenceEncoder(pickled, encoding=RELEASE_ENCODING).encode(RELEASE_TEXTS)
    from_safetensors = SentenceEncoder(bge_layout, encoding=RELEASE_ENCODING).encode(RELEASE_TEXTS)
    assert torch.equal(from_pickle, from_safetensors)

    # Both files: model.safetensors is what is read; the pickle is never opened.
    both = tmp_path / "both"
    shutil.copytree(bge_layout, both)
    (both / "pytorch_model.bin").write_bytes(b"not even a pickle")
    alone = SentenceEncoder(both, encoding=RELEASE_ENCODING).encode(RELEASE_TEXTS)
    assert torch.equal(alone, from_safetensors)


class _RunsCode:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_pickle_that_runs_code_is_refused_in_one_line(tmp_path):
    from official_release import write_encoder

    from instructir_desktop.core.packs import RELEASE_ENCODING

    folder = write_encoder(tmp_path / "evil", weights="bin")
    marker = tmp_path / "code-ran"
    torch.save({"embeddings.word_embeddings.weight": _RunsCode(marker)},
               folder / "pytorch_model.bin")  # fmt: skip
    with pytest.raises(ModelCorruptError, match="Python code") as caught:
        SentenceEncoder(folder, encoding=RELEASE_ENCODING)
    assert "\n" not in str(caught.value)
    assert not marker.exists()
