"""Build the frozen app with PyInstaller, smoke-test it offline, and package it.

    python installer/build.py --package       # build, smoke-test, package (the one command)
    python installer/build.py                 # build + smoke test only
    python installer/build.py --skip-build    # smoke-test the bundle already in dist/

--package makes the .tar.gz (Linux; its install.sh is tested too), the .dmg (macOS) or the
Inno Setup installer (Windows); --appimage (Linux) adds an AppDir and, where appimagetool
exists, an AppImage.

Writes a JSON report (build time, bundle size, each smoke step) to build/installer-report.json
and exits 0 only when the build and every smoke step passed. The smoke test (smoke.py) runs
the frozen executables the way a user's first start would: offline, with empty per-user
folders, so everything must come from the bundle. package.py makes each OS's installer.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from package import make_appdir, package_linux, package_macos, package_windows
from platform_info import IS_MAC, IS_WIN, ROOT, arch, platform_name, version
from smoke import check_appdir, check_linux_package, smoke_test

SPEC = ROOT / "installer" / "instructir.spec"
SIZE_TARGET_MB = 700  # decimal MB: the CPU Linux bundle, unpacked (and so its download)


def build(dist: Path, work: Path, flavor: str, openvino: bool, nice: int) -> dict:
    """Run PyInstaller on the spec (its log in ``<work>.log``); the report's "build" entry."""
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


def _parser() -> argparse.ArgumentParser:
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
    return parser


def _size_target_applies(args: argparse.Namespace) -> bool:
    """The size target is for the default download: the CPU Linux build without OpenVINO."""
    return platform_name() == "linux" and args.flavor == "cpu" and not args.openvino


def _bundle_report(bundle: Path, args: argparse.Namespace) -> dict:
    size, files = tree_size(bundle)
    print(f"bundle: {size / 1e6:.0f} MB ({size / 2**20:.0f} MiB) in {files} files", flush=True)
    entry = {
        "path": str(bundle),
        "mb": round(size / 1e6, 1),
        "mib": round(size / 2**20, 1),
        "files": files,
        "largest": largest(bundle),
    }
    if _size_target_applies(args):
        entry["target_mb"] = SIZE_TARGET_MB
    return entry


def _package(
    args: argparse.Namespace, dist: Path, bundle: Path, variant: str, scratch: Path
) -> tuple[dict, list[dict]]:
    """Make this OS's installer (and check the Linux tarball); returns (report entry, steps)."""
    steps: list[dict] = []
    if IS_WIN:
        out = package_windows(dist, bundle, variant)
    elif IS_MAC:
        out = package_macos(dist, variant)
    else:
        out = package_linux(dist, bundle, variant)
        if not args.no_smoke:
            steps += check_linux_package(out, scratch / "tarball")
    size = out.stat().st_size
    entry = {"path": str(out), "mb": round(size / 1e6, 1), "mib": round(size / 2**20, 1)}
    if _size_target_applies(args):
        entry["target_mb"] = SIZE_TARGET_MB
    return entry, steps


def _appimage(
    args: argparse.Namespace, dist: Path, bundle: Path, variant: str, scratch: Path
) -> tuple[dict | None, list[dict]]:
    """Make the AppDir (and AppImage) and check it; returns (report entry or None, steps)."""
    appdir, image = make_appdir(dist, bundle, variant)
    steps = [] if args.no_smoke else check_appdir(appdir, scratch / "appdir")
    if image is None:
        return None, steps
    return {"path": str(image), "mib": round(image.stat().st_size / 2**20, 1)}, steps


def _test_and_package(
    args: argparse.Namespace, report: dict, dist: Path, bundle: Path, ok: bool
) -> list[dict]:
    """Smoke-test the bundle, then package it (with the packages' checks); the steps run."""
    variant = report["variant"]
    scratch = Path(tempfile.mkdtemp(prefix="instructir-smoke-"))
    steps: list[dict] = []
    try:
        if ok and not args.no_smoke:
            run_bundle = dist / "InstructIR.app" / "Contents" / "MacOS" if IS_MAC else bundle
            run_bundle = run_bundle if run_bundle.is_dir() else bundle
            steps += smoke_test(run_bundle, args.flavor, scratch / "app")
        ok = ok and all(step["ok"] for step in steps)
        if ok and args.package:
            report["package"], more = _package(args, dist, bundle, variant, scratch)
            steps += more
        if ok and args.appimage and platform_name() == "linux":
            image, more = _appimage(args, dist, bundle, variant, scratch)
            steps += more
            if image is not None:
                report["appimage"] = image
    finally:
        if args.keep_scratch:
            print("smoke scratch folder kept:", scratch)
        else:
            shutil.rmtree(scratch, ignore_errors=True)
    return steps


def main(argv: list[str] | None = None) -> int:
    """Build, smoke-test and package as the flags say; 0 only when every step passed."""
    args = _parser().parse_args(argv)
    report: dict = {
        "version": version(),
        "platform": platform_name(),
        "arch": arch(),
        "flavor": args.flavor,
        "openvino": args.openvino,
        "python": sys.version.split()[0],
        # The name the installers carry: cpu, cpu-openvino, cuda, cuda-openvino.
        "variant": args.flavor + ("-openvino" if args.openvino else ""),
    }
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
        report["bundle"] = _bundle_report(bundle, args)
    steps = _test_and_package(args, report, dist, bundle, ok)
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
