"""Draw the InstructIR Desktop app icon and write resources/icons/app.{png,ico,icns}.

The icon is drawn once at 1024 px and downsampled, so every size is antialiased. It shows a
photo (sun over hills) with a chat bubble holding a sparkle: "say what is wrong, get it fixed".
Run it again after changing the drawing and commit the generated files:

    python installer/make_icons.py
"""

from __future__ import annotations

import argparse
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter

SIZE = 1024
ROOT = Path(__file__).resolve().parents[1]
ICO_SIZES = [(16, 16), (24, 24), (32, 32), (48, 48), (64, 64), (128, 128), (256, 256)]


def _vertical_gradient(size: tuple[int, int], top: tuple, bottom: tuple) -> Image.Image:
    w, h = size
    column = Image.new("RGBA", (1, h))
    for y in range(h):
        t = y / max(1, h - 1)
        column.putpixel((0, y), tuple(round(a + (b - a) * t) for a, b in zip(top, bottom)))
    return column.resize((w, h))


def _rounded_mask(size: tuple[int, int], radius: int) -> Image.Image:
    mask = Image.new("L", size, 0)
    ImageDraw.Draw(mask).rounded_rectangle((0, 0, size[0] - 1, size[1] - 1), radius, fill=255)
    return mask


def _sparkle(draw: ImageDraw.ImageDraw, cx: float, cy: float, r: float, fill) -> None:
    """A four-pointed star: the usual 'magic fix' mark."""
    waist = r * 0.22
    points = [
        (cx, cy - r),
        (cx + waist, cy - waist),
        (cx + r, cy),
        (cx + waist, cy + waist),
        (cx, cy + r),
        (cx - waist, cy + waist),
        (cx - r, cy),
        (cx - waist, cy - waist),
    ]
    draw.polygon(points, fill=fill)


def draw_icon(size: int = SIZE) -> Image.Image:
    s = size / 1024
    icon = Image.new("RGBA", (size, size), (0, 0, 0, 0))

    # Background tile with a soft drop shadow (macOS-style margins: content in ~82 %).
    margin, radius = round(92 * s), round(190 * s)
    tile_box = (margin, margin, size - margin, size - margin)
    shadow = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    ImageDraw.Draw(shadow).rounded_rectangle(
        (tile_box[0], tile_box[1] + round(18 * s), tile_box[2], tile_box[3] + round(18 * s)),
        radius,
        fill=(0, 0, 0, 110),
    )
    icon.alpha_composite(shadow.filter(ImageFilter.GaussianBlur(24 * s)))
    tile_size = (tile_box[2] - tile_box[0], tile_box[3] - tile_box[1])
    tile = _vertical_gradient(tile_size, (37, 56, 112, 255), (22, 140, 160, 255))
    icon.paste(tile, tile_box[:2], _rounded_mask(tile_size, radius))

    # The photo: a white-framed landscape, half dull (left) and half restored (right).
    draw = ImageDraw.Draw(icon)
    px0, py0, px1, py1 = (round(v * s) for v in (200, 250, 760, 700))
    draw.rounded_rectangle((px0, py0, px1, py1), round(36 * s), fill=(250, 250, 252, 255))
    inset = round(30 * s)
    ix0, iy0, ix1, iy1 = px0 + inset, py0 + inset, px1 - inset, py1 - inset
    scene_size = (ix1 - ix0, iy1 - iy0)
    scene = _vertical_gradient(scene_size, (255, 196, 110, 255), (255, 140, 96, 255))
    sd = ImageDraw.Draw(scene)
    w, h = scene_size
    sun = h * 0.24  # a circle, whatever the scene's aspect
    sd.ellipse((w * 0.62, h * 0.12, w * 0.62 + sun, h * 0.12 + sun), fill=(255, 246, 214, 255))
    sd.polygon(
        [(0, h), (0, h * 0.62), (w * 0.30, h * 0.38), (w * 0.62, h * 0.72), (0, h)],
        fill=(44, 110, 96, 255),
    )
    sd.polygon([(w * 0.25, h), (w * 0.62, h * 0.50), (w, h * 0.78), (w, h)], fill=(30, 84, 78, 255))
    # The left half looks like a bad photo: dark and flat.
    left = scene.crop((0, 0, w // 2, h))
    left = Image.blend(left, Image.new("RGBA", left.size, (60, 60, 70, 255)), 0.55)
    scene.paste(left, (0, 0))
    sd.line((w // 2, 0, w // 2, h), fill=(255, 255, 255, 230), width=max(1, round(8 * s)))
    icon.paste(scene, (ix0, iy0), _rounded_mask(scene_size, round(14 * s)))

    # The chat bubble with a sparkle, overlapping the photo's lower-right corner.
    bx0, by0, bx1, by1 = (round(v * s) for v in (560, 560, 860, 800))
    bubble = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    bd = ImageDraw.Draw(bubble)
    bd.rounded_rectangle((bx0, by0, bx1, by1), round(70 * s), fill=(255, 255, 255, 255))
    bd.polygon(
        [(bx0 + 70 * s, by1 - 10 * s), (bx0 + 40 * s, by1 + 80 * s), (bx0 + 150 * s, by1 - 10 * s)],
        fill=(255, 255, 255, 255),
    )
    shadow = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    shadow.paste((0, 0, 0, 90), (0, 0), bubble.getchannel("A"))
    icon.alpha_composite(shadow.filter(ImageFilter.GaussianBlur(14 * s)), (0, round(10 * s)))
    icon.alpha_composite(bubble)
    _sparkle(draw, 710 * s, 680 * s, 92 * s, (255, 170, 40, 255))
    _sparkle(draw, 800 * s, 610 * s, 34 * s, (22, 140, 160, 255))
    _sparkle(draw, 625 * s, 615 * s, 26 * s, (37, 56, 112, 255))
    return icon


def write_icons(out_dir: Path) -> list[Path]:
    """Write app.png (512 px), app.ico (16-256 px) and app.icns (16-1024 px) to out_dir."""
    out_dir.mkdir(parents=True, exist_ok=True)
    big = draw_icon(SIZE)
    png = out_dir / "app.png"
    big.resize((512, 512), Image.Resampling.LANCZOS).save(png, optimize=True)
    ico = out_dir / "app.ico"
    big.resize((256, 256), Image.Resampling.LANCZOS).save(ico, sizes=ICO_SIZES)
    icns = out_dir / "app.icns"
    big.save(icns)
    return [png, ico, icns]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "resources" / "icons")
    args = parser.parse_args(argv)
    for path in write_icons(args.out):
        print(
            f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}: "
            f"{path.stat().st_size} bytes"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
