"""The official InstructIR 7D pack end to end, offline.

A stand-in Hub (tests/hubserver.py, through $HF_ENDPOINT) serves files in the release's
formats and names: ``im_instructir-7d.pt`` and ``lm_instructir-7d.pt`` saved with torch.save
(the release's keys and shapes, seeded random values) and a small BERT in bge-micro-v2's
layout whose sentence-transformers files say CLS pooling and no Normalize. The catalog entry
is overridden with the stand-in's hashes; the real pack's pinned hashes are not touched.
``models download`` → ``verify`` → ``restore`` run through the CLI and the app's Models
dialog, and the results are checked against a naive full-frame run of the same weights
and the release's own text steps (tests/official_release.py). The photo is 64 x 64 so that
the full 7D network stays affordable on two cores.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from hubserver import HubServer
from official_release import (
    ENCODER_REPO,
    RELEASE_REPO,
    head_state,
    image_state,
    release_embedding,
    state_bytes,
    write_encoder,
)
from PIL import Image

from instructir_desktop.cli import main
from instructir_desktop.core.descriptor import psnr
from instructir_desktop.core.errors import ModelCorruptError
from instructir_desktop.core.network import OFFICIAL_7D, build_network
from instructir_desktop.core.packs import (
    OFFICIAL_ID,
    PackManifest,
    catalog_entry,
    catalog_override,
    official_manifest,
)
from instructir_desktop.core.store import ModelStore

TEXT = "fix the blur"  # the stand-in head is sure of this one (0.95): the CLI applies it
WAIT = 300_000  # ms: downloading, hashing and loading the 7D network on a shared 2-core CPU


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def release(tmp_path_factory) -> SimpleNamespace:
    """The stand-in release: served bytes by Hub key, the encoder folder, head and image."""
    root = tmp_path_factory.mktemp("release")
    encoder = write_encoder(root / "bge-micro-v2", pooling="cls", normalize_module=False)
    head, image = head_state(), state_bytes(image_state())
    served = {
        f"{RELEASE_REPO}/im_instructir-7d.pt": image,
        f"{RELEASE_REPO}/lm_instructir-7d.pt": state_bytes(head),
    }
    for path in sorted(encoder.rglob("*")):
        if path.is_file():
            served[f"{ENCODER_REPO}/{path.relative_to(encoder).as_posix()}"] = path.read_bytes()
    return SimpleNamespace(served=served, encoder=encoder, head=head, root=root)


def standin_manifest(served: dict[str, bytes]) -> PackManifest:
    """The official catalog entry with the stand-in's sizes and hashes for the pinned files."""
    real = official_manifest()
    files = []
    for f in real.files:
        if f.sha256 is not None:
            data = served[f"{f.repo}/{f.filename}"]
            f = replace(f, size=len(data), sha256=_sha(data))
        files.append(f)
    return replace(real, files=tuple(files))


@pytest.fixture
def hub(release, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    with HubServer(dict(release.served), redirect=True) as server:
        monkeypatch.setenv("HF_ENDPOINT", server.endpoint)
        with catalog_override(standin_manifest(release.served)):
            yield server


def naive_restore(release, photo: np.ndarray, text: str, context: int = 0) -> np.ndarray:
    """The release's computation in one go: full frame, eager, float32. ``context`` pixels
    of mirrored photo around it, cropped off after, as the engine gives packs other than
    the official one (restorer.BORDER_MARGIN)."""
    state = torch.load(
        io.BytesIO(release.served[f"{RELEASE_REPO}/im_instructir-7d.pt"]),
        map_location="cpu",
        weights_only=True,
    )
    net = build_network(
        OFFICIAL_7D.width,
        list(OFFICIAL_7D.enc_blks),
        OFFICIAL_7D.middle_blk_num,
        list(OFFICIAL_7D.dec_blks),
        OFFICIAL_7D.textdim,
    ).eval()
    net.load_state_dict(state, strict=True)
    e, _ = release_embedding(release.encoder, release.head, text)
    seen = np.pad(photo, ((context, context), (context, context), (0, 0)), mode="reflect")
    x = torch.from_numpy(seen).permute(2, 0, 1)[None].float()
    with torch.no_grad():
        y = net(x, e[None]).clamp(0, 1)[0].permute(1, 2, 0).numpy()
    return y[context : context + photo.shape[0], context : context + photo.shape[1]]


def assert_same_restore(restored: np.ndarray, release, photo: np.ndarray) -> None:
    """The engine's photo is the release network's naive full-frame run, with the same
    weights and embedding (the official pack keeps the release's zero padding)."""
    assert psnr(restored, naive_restore(release, photo, TEXT)) >= 40.0
    assert psnr(restored, photo) < 30.0  # the network did change the photo


def write_photo(path: Path, size: int = 64) -> np.ndarray:
    rng = np.random.default_rng(5)
    y, x = np.mgrid[0:size, 0:size] / size
    rgb = np.stack([x, y, np.full(x.shape, 0.4)], axis=2) + rng.normal(0, 0.08, (size, size, 3))
    pixels = (np.clip(rgb, 0, 1) * 255).round().astype(np.uint8)
    Image.fromarray(pixels).save(path)
    return pixels.astype(np.float32) / 255


def read_photo(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"), np.float32) / 255


def test_the_real_catalog_keeps_the_releases_pinned_hashes(release):
    real = official_manifest()
    with catalog_override(standin_manifest(release.served)):
        assert catalog_entry(OFFICIAL_ID).file("image").sha256 == _sha(
            release.served[f"{RELEASE_REPO}/im_instructir-7d.pt"]
        )
    assert catalog_entry(OFFICIAL_ID) == real
    assert real.file("image").sha256 == (
        "f28d8f0f66ff57449ebe2be52241dfdd53a3dfab1003d63e65493f96ea152fd0"
    )
    assert real.file("head").size == 403_275


def test_cli_download_verify_restore_and_intent(hub, release, tmp_path, capsys):
    assert main(["models", "download", OFFICIAL_ID]) == 0
    capsys.readouterr()
    assert main(["models", "verify", OFFICIAL_ID, "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"id": OFFICIAL_ID, "ok": True, "problems": []}

    # The encoder came as model.safetensors; the pickle was never asked for.
    assert hub.records_for(f"{ENCODER_REPO}/model.safetensors")
    assert not hub.records_for(f"{ENCODER_REPO}/pytorch_model.bin")
    # What was downloaded is recorded: the commit the Hub named and each file's sha256.
    installed = ModelStore().installed_manifest(OFFICIAL_ID)
    for f in installed.files_with_role("text_encoder"):
        assert f.revision == hub.commit
        assert f.sha256 == _sha(release.served[f"{ENCODER_REPO}/{f.filename}"])

    photo = write_photo(tmp_path / "photo.png")
    out = tmp_path / "restored.png"
    engine = ["--model", OFFICIAL_ID, "--device", "cpu", "--backend", "torch"]
    assert main(["restore", str(tmp_path / "photo.png"), "-i", TEXT, "-o", str(out), *engine]) == 0
    assert_same_restore(read_photo(out), release, photo)

    capsys.readouterr()
    assert main(["intent", TEXT, "it is too dark", "--json", "--model", OFFICIAL_ID]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    for row in rows:
        _, expected = release_embedding(release.encoder, release.head, row["text"])
        got = torch.tensor(list(row["probabilities"].values()))
        assert torch.allclose(got, expected, atol=1e-4)
        assert row["task"] == official_manifest().labels[int(expected.argmax())]


def test_a_file_changed_on_the_hub_is_noticed_not_used(hub, release):
    store = ModelStore()
    folder = store.download(OFFICIAL_ID)
    key = f"{ENCODER_REPO}/config.json"
    # A damaged local copy is fetched again, from the commit recorded at install.
    (folder / "text_encoder" / "config.json").write_text("{}")
    hub.files[key] = release.served[key].replace(b"384", b"385")
    with pytest.raises(ModelCorruptError, match="changed on the Hub"):
        store.download(OFFICIAL_ID)
    asked = [r.path for r in hub.records_for(key) if "/resolve/" in r.path]
    assert asked[-1] == f"/{ENCODER_REPO}/resolve/{hub.commit}/config.json"
    assert not store.verify(OFFICIAL_ID).ok  # nothing was installed over it

    hub.files[key] = release.served[key]
    store.download(OFFICIAL_ID)
    assert store.verify(OFFICIAL_ID).ok


def _usb_copy(release, root: Path, pickle_payload=None) -> list[Path]:
    """What a user brings to an offline computer: the two .pt files and an encoder folder
    holding pytorch_model.bin instead of model.safetensors."""
    root.mkdir()
    for name in ("im_instructir-7d.pt", "lm_instructir-7d.pt"):
        (root / name).write_bytes(release.served[f"{RELEASE_REPO}/{name}"])
    encoder = root / "bge-micro-v2"
    shutil.copytree(release.encoder, encoder)
    from safetensors.torch import load_file

    state = load_file(str(encoder / "model.safetensors"))
    (encoder / "model.safetensors").unlink()
    torch.save(pickle_payload or state, encoder / "pytorch_model.bin")
    return [root / "im_instructir-7d.pt", root / "lm_instructir-7d.pt", encoder]


class _RunsCode:
    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_an_imported_pickled_encoder_is_read_weights_only(release, tmp_path, capsys):
    paths = _usb_copy(release, tmp_path / "usb")
    with catalog_override(standin_manifest(release.served)):
        assert main(["models", "import", OFFICIAL_ID, *map(str, paths)]) == 0
        installed = ModelStore().installed_manifest(OFFICIAL_ID)
        assert "text_encoder/pytorch_model.bin" in [f.path for f in installed.files]
        capsys.readouterr()
        assert main(["intent", TEXT, "--json", "--model", OFFICIAL_ID]) == 0
    row = json.loads(capsys.readouterr().out)
    _, expected = release_embedding(release.encoder, release.head, TEXT)
    assert torch.allclose(torch.tensor(list(row["probabilities"].values())), expected, atol=1e-4)


def test_a_pickle_that_runs_code_is_refused_with_one_line(release, tmp_path, capsys):
    marker = tmp_path / "code-ran"
    payload = {"embeddings.word_embeddings.weight": _RunsCode(marker)}
    paths = _usb_copy(release, tmp_path / "usb", pickle_payload=payload)
    with catalog_override(standin_manifest(release.served)):
        assert main(["models", "import", OFFICIAL_ID, *map(str, paths)]) == 0
        capsys.readouterr()
        code = main(["intent", TEXT, "--model", OFFICIAL_ID])
    out, err = capsys.readouterr()
    assert code != 0 and not marker.exists()
    assert "Traceback" not in out + err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "pytorch_model.bin" in lines[0] and "code" in lines[0]


def test_models_dialog_downloads_the_pack_and_the_app_restores_with_it(
    qtbot, hub, release, tmp_path, monkeypatch
):
    from PySide6.QtCore import Qt

    from instructir_desktop.app.settings import Settings
    from instructir_desktop.ui import dialogs
    from instructir_desktop.ui.main_window import MainWindow

    monkeypatch.setattr(dialogs, "ask_unsaved_changes", lambda *_: "discard")
    settings = Settings()
    for name, value in {"pack": OFFICIAL_ID, "device": "cpu", "backend": "torch"}.items():
        settings.set(name, value)
    window = MainWindow(settings, bridge=False, autosave=False)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: bool(window.session.model_problem), timeout=WAIT)

    window.show_models()
    dialog = window.models_dialog
    qtbot.waitUntil(lambda: dialog.table.rowCount() >= 1, timeout=WAIT)
    row = [p.id for p in dialog.packs].index(OFFICIAL_ID)
    dialog.table.selectRow(row)
    assert dialog.download_button.isEnabled()
    qtbot.mouseClick(dialog.download_button, Qt.MouseButton.LeftButton)
    # The first model on this computer is put to use as soon as it is installed.
    qtbot.waitUntil(lambda: (window.session.model or {}).get("pack") == OFFICIAL_ID, timeout=WAIT)
    assert dialog.status.text() == f"{OFFICIAL_ID}: downloaded."
    assert ModelStore().verify(OFFICIAL_ID).ok

    photo = write_photo(tmp_path / "photo.png")
    with qtbot.waitSignal(window.session.documentOpened, timeout=WAIT):
        window.open_path(tmp_path / "photo.png")
    qtbot.waitUntil(lambda: window.session.scheduler.idle, timeout=WAIT)
    qtbot.keyClicks(window.chat.input, TEXT)
    qtbot.keyClick(window.chat.input, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: len(window.session.document.layers) == 1, timeout=WAIT)
    qtbot.waitUntil(lambda: window.session.scheduler.idle, timeout=WAIT)
    frame = window.session.scheduler.frame("full")
    assert frame is not None and frame.image.shape[:2] == (64, 64)
    assert_same_restore(frame.image[..., :3], release, photo)
    dialog.close()
