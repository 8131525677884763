"""The project's one synthetic image generator, for the demo, the tests and the benchmarks.

Pictures: crops of a real photograph shipped with matplotlib, plus synthetic scenes. Every picture generator
takes a numpy Generator and a target size and returns an RGB (or RGBA) PIL image of exactly that size, so the
same seed always gives the same pixels. Bytes: `encode` (JPEG/PNG/WebP, optional EXIF orientation),
`encode_image` (a cheap gradient picture straight to bytes, for tests), `corrupt`, `corrupt_bytes` and
`truncated_jpeg` for rows no decoder accepts. `hf_assets_tests/imagegen.py` re-exports the test helpers.
"""

import functools
import io
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib import colormaps
from matplotlib.colors import LightSource
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageFont, ImageOps

SAMPLE_DATA = Path(matplotlib.get_data_path()) / "sample_data"
FONT_DIR = Path(matplotlib.get_data_path()) / "fonts" / "ttf"

# EXIF orientation -> the transpose that turns the displayed picture into the stored one
# (the inverse of what ImageOps.exif_transpose applies when reading).
_STORE_TRANSPOSE = {
    3: Image.Transpose.ROTATE_180,
    6: Image.Transpose.ROTATE_90,
    8: Image.Transpose.ROTATE_270,
}

FORMATS = ("JPEG", "PNG", "WEBP")
PALETTES = (
    "viridis",
    "magma",
    "plasma",
    "cividis",
    "twilight",
    "terrain",
    "ocean",
    "cubehelix",
    "Spectral",
    "coolwarm",
)


@functools.cache
def grace_hopper() -> Image.Image:
    """The real photograph matplotlib ships (512 x 600, public domain)."""
    with Image.open(SAMPLE_DATA / "grace_hopper.jpg") as im:
        return im.convert("RGB").copy()


@functools.cache
def _elevation() -> np.ndarray:
    with np.load(SAMPLE_DATA / "jacksboro_fault_dem.npz") as dem:
        return np.asarray(dem["elevation"], dtype=np.float64)


@functools.cache
def font(size: int, bold: bool = False) -> ImageFont.ImageFont:
    """DejaVu Sans from matplotlib's own fonts, so text renders the same everywhere."""
    name = "DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf"
    try:
        return ImageFont.truetype(str(FONT_DIR / name), size)
    except OSError:  # Pillow built without FreeType
        return ImageFont.load_default(size)


def _crop_to_aspect(img: Image.Image, rng: np.random.Generator, aspect: float, zoom: float) -> Image.Image:
    """A random crop of `img` with width/height == aspect, covering `zoom` (0-1] of the largest such crop."""
    w, h = img.size
    cw, ch = (w, w / aspect) if w / h < aspect else (h * aspect, h)
    cw, ch = max(8, cw * zoom), max(8, ch * zoom)
    x0 = rng.uniform(0, w - cw)
    y0 = rng.uniform(0, h - ch)
    return img.crop((round(x0), round(y0), round(x0 + cw), round(y0 + ch)))


def photo(rng: np.random.Generator, width: int, height: int) -> Image.Image:
    """A crop of the Grace Hopper photograph, rescaled and colour-graded a little."""
    zoom = float(rng.uniform(0.45, 1.0))
    img = _crop_to_aspect(grace_hopper(), rng, width / height, zoom).resize((width, height), Image.Resampling.LANCZOS)
    if rng.random() < 0.25:
        img = ImageOps.mirror(img)
    img = ImageEnhance.Color(img).enhance(float(rng.uniform(0.6, 1.4)))
    img = ImageEnhance.Brightness(img).enhance(float(rng.uniform(0.85, 1.15)))
    img = ImageEnhance.Contrast(img).enhance(float(rng.uniform(0.85, 1.2)))
    if rng.random() < 0.15:
        img = ImageOps.grayscale(img).convert("RGB")
    return img


def terrain(rng: np.random.Generator, width: int, height: int) -> Image.Image:
    """A hill-shaded render of the real elevation model matplotlib ships (Jacksboro fault)."""
    light = LightSource(azdeg=float(rng.uniform(0, 360)), altdeg=float(rng.uniform(25, 60)))
    cmap = colormaps[str(rng.choice(["gist_earth", "terrain", "copper", "bone", "YlGn"]))]
    rgb = light.shade(_elevation(), cmap=cmap, blend_mode="overlay", vert_exag=float(rng.uniform(0.02, 0.08)))
    img = Image.fromarray((rgb[..., :3] * 255).astype(np.uint8))
    img = _crop_to_aspect(img, rng, width / height, float(rng.uniform(0.5, 1.0)))
    return img.resize((width, height), Image.Resampling.BICUBIC)


def _smooth_noise(rng: np.random.Generator, width: int, height: int, octaves: int = 4) -> np.ndarray:
    """Fractal value noise in [0, 1], shape (height, width)."""
    out = np.zeros((height, width), dtype=np.float32)
    amp, total = 1.0, 0.0
    for o in range(octaves):
        cells = 2 ** (o + 2)
        grid = rng.random((cells, cells)).astype(np.float32)
        layer = Image.fromarray(grid, mode="F").resize((width, height), Image.Resampling.BICUBIC)
        out += amp * np.asarray(layer)
        total += amp
        amp *= 0.5
    out /= total
    return (out - out.min()) / max(float(out.max() - out.min()), 1e-6)


def texture(rng: np.random.Generator, width: int, height: int) -> Image.Image:
    """Coloured fractal noise, like marble or clouds."""
    field = _smooth_noise(rng, width, height, octaves=int(rng.integers(3, 6)))
    if rng.random() < 0.5:
        field = 0.5 + 0.5 * np.sin(field * float(rng.uniform(8, 20)))
    rgb = colormaps[str(rng.choice(PALETTES))](field)[..., :3]
    return Image.fromarray((rgb * 255).astype(np.uint8))


def landscape(rng: np.random.Generator, width: int, height: int) -> Image.Image:
    """A painted landscape: sky gradient, sun, layered mountain ridges, grain."""
    top = rng.integers(20, 120, 3)
    bottom = rng.integers(150, 255, 3)
    t = np.linspace(0, 1, height, dtype=np.float32)[:, None, None]
    sky = top * (1 - t) + bottom * t
    img = Image.fromarray(np.broadcast_to(sky, (height, width, 3)).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    r = int(min(width, height) * rng.uniform(0.06, 0.14))
    cx, cy = int(rng.uniform(0.15, 0.85) * width), int(rng.uniform(0.15, 0.45) * height)
    draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=tuple(int(v) for v in rng.integers(200, 256, 3)))
    layers = int(rng.integers(3, 6))
    xs = np.linspace(0, width, 48)
    for i in range(layers):
        base = height * (0.45 + 0.12 * i)
        ridge = base - height * 0.12 * _smooth_noise(rng, 48, 1, octaves=3)[0] * (1 + i * 0.2)
        shade = np.clip(np.array(bottom) * (0.75 - 0.13 * i), 0, 255).astype(int)
        points = [(float(x), float(y)) for x, y in zip(xs, ridge)] + [(width, height), (0, height)]
        draw.polygon(points, fill=tuple(int(v) for v in shade))
    grain = rng.standard_normal((height, width, 3), dtype=np.float32) * 6
    return Image.fromarray(np.clip(np.asarray(img, dtype=np.float32) + grain, 0, 255).astype(np.uint8))


def abstract(rng: np.random.Generator, width: int, height: int) -> Image.Image:
    """Overlapping translucent shapes, softened: an abstract painting."""
    bg = tuple(int(v) for v in rng.integers(0, 256, 3))
    img = Image.new("RGB", (width, height), bg)
    d = ImageDraw.Draw(img, "RGBA")  # RGBA drawing on an RGB image blends each shape
    for _ in range(int(rng.integers(12, 30))):
        colour = tuple(int(v) for v in rng.integers(0, 256, 3)) + (int(rng.integers(90, 220)),)
        x0, x1 = sorted(rng.uniform(-0.1, 1.1, 2) * width)
        y0, y1 = sorted(rng.uniform(-0.1, 1.1, 2) * height)
        kind = rng.integers(0, 3)
        if kind == 0:
            d.ellipse((x0, y0, x1, y1), fill=colour)
        elif kind == 1:
            d.rectangle((x0, y0, x1, y1), fill=colour)
        else:
            pts = [(float(rng.uniform(0, width)), float(rng.uniform(0, height))) for _ in range(3)]
            d.polygon(pts, fill=colour)
    return img.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.5, 2.5))))


def diagram(rng: np.random.Generator, width: int, height: int) -> Image.Image:
    """A box-and-arrow flow chart with labels on a light background."""
    img = Image.new("RGB", (width, height), (250, 250, 246))
    d = ImageDraw.Draw(img)
    words = ["load", "scan", "filter", "bucket", "crop", "encode", "cache", "train", "embed", "sample"]
    n = int(rng.integers(3, 6))
    horizontal = width >= height
    size = max(10, min(width, height) // 14)
    f = font(size)
    boxes = []
    for i in range(n):
        frac = (i + 0.5) / n
        cx = frac * width if horizontal else width * float(rng.uniform(0.35, 0.65))
        cy = height * float(rng.uniform(0.35, 0.65)) if horizontal else frac * height
        bw = (width / n if horizontal else width * 0.5) * 0.7
        bh = height * 0.25 if horizontal else height / n * 0.55
        box = (cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2)
        fill = tuple(int(v) for v in rng.integers(170, 240, 3))
        d.rounded_rectangle(box, radius=max(2, int(bh * 0.15)), fill=fill, outline=(40, 40, 60), width=2)
        d.text((cx, cy), str(rng.choice(words)), fill=(20, 20, 30), font=f, anchor="mm")
        boxes.append(box)
    for a, b in zip(boxes, boxes[1:]):
        if horizontal:
            p0, p1 = (a[2], (a[1] + a[3]) / 2), (b[0], (b[1] + b[3]) / 2)
        else:
            p0, p1 = ((a[0] + a[2]) / 2, a[3]), ((b[0] + b[2]) / 2, b[1])
        d.line((p0, p1), fill=(60, 60, 80), width=2)
        d.ellipse((p1[0] - 4, p1[1] - 4, p1[0] + 4, p1[1] + 4), fill=(60, 60, 80))
    d.text((8, 6), f"Figure {int(rng.integers(1, 20))}", fill=(90, 90, 90), font=font(max(9, size * 3 // 4)))
    return img


def screenshot(rng: np.random.Generator, width: int, height: int) -> Image.Image:
    """A fake application window: title bar, sidebar, text lines and buttons."""
    dark = rng.random() < 0.4
    bg, fg = ((32, 34, 40), (210, 210, 215)) if dark else ((248, 248, 250), (40, 40, 48))
    img = Image.new("RGB", (width, height), bg)
    d = ImageDraw.Draw(img)
    bar = max(14, height // 16)
    d.rectangle((0, 0, width, bar), fill=(60, 63, 70) if dark else (225, 226, 230))
    for i, colour in enumerate([(237, 106, 94), (245, 191, 79), (98, 197, 84)]):
        r = bar // 4
        d.ellipse((bar // 2 + i * 3 * r - r, bar // 2 - r, bar // 2 + i * 3 * r + r, bar // 2 + r), fill=colour)
    side = int(width * rng.uniform(0.15, 0.28))
    d.rectangle((0, bar, side, height), fill=(44, 46, 54) if dark else (236, 237, 241))
    size = max(8, bar * 2 // 3)
    f = font(size)
    d.text((side + 10, bar // 2), "hf_assets - Dagster", fill=fg, font=f, anchor="lm")
    y = bar + size
    while y < height - size:
        line_w = float(rng.uniform(0.3, 0.95)) * (width - side - 20)
        if rng.random() < 0.15:
            d.rounded_rectangle(
                (side + 10, y, side + 10 + min(line_w, 120), y + size + 6), radius=4, fill=(66, 133, 244)
            )
            y += size + 14
        else:
            d.rectangle(
                (side + 10, y, side + 10 + line_w, y + size // 2),
                fill=tuple(int(c * 0.5 + b * 0.5) for c, b in zip(fg, bg)),
            )
            y += size
    for i in range(int((height - bar) // (size * 2))):
        d.text((8, bar + 6 + i * size * 2), f"item {i + 1}", fill=fg, font=f)
    return img


def poster(rng: np.random.Generator, width: int, height: int) -> Image.Image:
    """Big drawn text over a two-colour gradient."""
    a, b = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
    t = np.linspace(0, 1, width, dtype=np.float32)[None, :, None]
    img = Image.fromarray(np.broadcast_to(a * (1 - t) + b * t, (height, width, 3)).astype(np.uint8))
    d = ImageDraw.Draw(img)
    word = str(rng.choice(["HELLO", "DIFFUSION", "BUCKETS", "LATENT", "DEMO", "PIXELS", "NOISE"]))
    size = max(8, int(height * 0.4))
    while size > 8 and d.textlength(word, font=font(size, bold=True)) > 0.9 * width:
        size = int(size * 0.9)
    d.text(
        (width / 2, height / 2),
        word,
        fill=tuple(int(255 - v) for v in (a + b) // 2),
        font=font(size, bold=True),
        anchor="mm",
    )
    return img


def sticker(rng: np.random.Generator, width: int, height: int) -> Image.Image:
    """An RGBA cut-out: a soft-edged coloured blob on a transparent background."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    cx, cy = width / 2, height / 2
    angle = np.arctan2(y - cy, x - cx)
    wobble = 1 + 0.15 * np.sin(angle * int(rng.integers(3, 8)) + float(rng.uniform(0, 6.3)))
    dist = np.hypot((x - cx) / (width * 0.42), (y - cy) / (height * 0.42)) / wobble
    alpha = np.clip((1.0 - dist) * 8, 0, 1)
    rgb = np.asarray(texture(rng, width, height), dtype=np.float32)
    rgba = np.dstack([rgb, alpha * 255]).astype(np.uint8)
    return Image.fromarray(rgba, mode="RGBA")


GENERATORS = {
    "photo": photo,
    "terrain": terrain,
    "texture": texture,
    "landscape": landscape,
    "abstract": abstract,
    "diagram": diagram,
    "screenshot": screenshot,
    "poster": poster,
    "sticker": sticker,
}


def stored_for_orientation(displayed: Image.Image, orientation: int | None) -> Image.Image:
    """The pixels to store so that a reader applying EXIF `orientation` shows `displayed` upright."""
    op = _STORE_TRANSPOSE.get(orientation or 1)
    return displayed.transpose(op) if op is not None else displayed


def encode(img: Image.Image, fmt: str, quality: int = 88, exif_orientation: int | None = None) -> bytes:
    """Encoded bytes of `img` (already in stored orientation); RGBA is kept only by PNG/WebP."""
    if img.mode == "RGBA" and fmt == "JPEG":
        img = img.convert("RGB")
    kwargs: dict = {}
    if fmt in ("JPEG", "WEBP"):
        kwargs["quality"] = quality
    if fmt == "PNG":
        kwargs["compress_level"] = 6
    if fmt == "WEBP":
        kwargs["method"] = 2
    if exif_orientation is not None:
        exif = Image.Exif()
        exif[0x0112] = exif_orientation
        kwargs["exif"] = exif.tobytes()
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kwargs)
    return buf.getvalue()


def corrupt(rng: np.random.Generator, style: int) -> bytes:
    """Bytes no decoder accepts: a bare JPEG marker plus garbage, a truncated PNG, or plain noise."""
    noise = rng.integers(0, 256, int(rng.integers(64, 512)), dtype=np.uint8).tobytes()
    if style == 0:
        return b"\xff\xd8\xff\xe0" + noise
    if style == 1:
        return b"\x89PNG\r\n\x1a\n" + noise
    return b"GIF87a-not-really" + noise


def pixels(width: int, height: int, seed: int = 0) -> np.ndarray:
    """A cheap RGB uint8 array with gradients and noise, so codecs do real work (the tests' picture)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    r = 255 * x / max(width - 1, 1)
    g = 255 * y / max(height - 1, 1)
    b = 127 + 100 * np.sin((x + y) / 17.0 + seed)
    img = np.stack([r, g, b], axis=-1) + rng.normal(0, 12, (height, width, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def encode_image(
    width: int,
    height: int,
    fmt: str = "JPEG",
    seed: int = 0,
    exif_orientation: int | None = None,
    mode: str = "RGB",
    quality: int = 85,
) -> bytes:
    """Encoded bytes of a width x height `pixels` picture (stored size; EXIF may rotate the displayed one)."""
    img = Image.fromarray(pixels(width, height, seed))
    if mode != "RGB":
        img = img.convert(mode)
    return encode(img, fmt, quality=quality, exif_orientation=exif_orientation)


def corrupt_bytes(seed: int = 0) -> bytes:
    """Bytes that no image codec accepts: a JPEG marker followed by garbage."""
    return corrupt(np.random.default_rng(seed), style=0)


def truncated_jpeg(width: int = 640, height: int = 480) -> bytes:
    """A JPEG cut short after its header: its size is readable, its pixels are not."""
    data = encode_image(width, height, "JPEG")
    return data[: len(data) // 3]
