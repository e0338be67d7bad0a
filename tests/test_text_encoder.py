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
    from instructir_desktop.core.text import split_clauses

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
    from instructir_desktop.core.text import asks_to_darken

    assert asks_to_darken(text) is darken
