"""Random inpainting masks (SimpleTuner's `random_masks` / `inpainting` generator): rectangles, circles, brush strokes
and irregular polygons until a drawn coverage is reached, softened at the edges.

Differences from SimpleTuner, each for a reason: every draw comes from the sample's own seeded stream (reruns
agree); the feather ramps across the mask's edge (SimpleTuner's turns pixels far outside the mask on and the deep
inside off); `mask_value` scales the softened mask instead of being lost by the feather.
"""

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

FEATHER_PIXELS = 10  # half the width of the feather ramp (SimpleTuner's feather width)
STEP_PIXELS = (20, 50)  # a brush stroke's segment length, drawn per segment (SimpleTuner's)


def random_masks(
    pixels: np.ndarray,
    rng: np.random.Generator,
    *,
    mask_types=("rectangle", "circle", "brush", "irregular"),
    mask_type_weights=None,
    min_coverage: float = 0.1,
    max_coverage: float = 0.5,
    min_masks: int = 1,
    max_masks: int = 5,
    rect_min_size: float = 0.1,
    rect_max_size: float = 0.4,
    circle_min_radius: float = 0.05,
    circle_max_radius: float = 0.2,
    brush_min_width: int = 5,
    brush_max_width: int = 40,
    brush_min_length: float = 0.1,
    brush_max_length: float = 0.5,
    irregular_min_points: int = 5,
    irregular_max_points: int = 20,
    edge_blur: bool = True,
    edge_blur_radius: float = 2.0,
    edge_feather: bool = True,
    output_mode: str = "mask",
    mask_value: int = 255,
    invert_mask: bool = False,
) -> np.ndarray:
    """The mask (output_mode "mask": `mask_value` where masked, as RGB) or the image with its masked area filled
    white ("masked_image")."""
    height, width = pixels.shape[:2]
    canvas = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(canvas)
    shapes = {
        "rectangle": lambda: _rectangle(draw, rng, width, height, rect_min_size, rect_max_size),
        "circle": lambda: _circle(draw, rng, width, height, circle_min_radius, circle_max_radius),
        "brush": lambda: _brush(
            draw, rng, width, height, (brush_min_width, brush_max_width), (brush_min_length, brush_max_length)
        ),
        "irregular": lambda: _irregular(draw, rng, width, height, irregular_min_points, irregular_max_points),
    }
    probabilities = None
    if mask_type_weights is not None:
        weights = np.asarray(mask_type_weights, dtype=np.float64)
        probabilities = weights / weights.sum()
    regions = int(rng.integers(min_masks, max_masks + 1))
    target = float(rng.uniform(min_coverage, max_coverage))
    for _ in range(regions):
        if np.count_nonzero(np.asarray(canvas)) / (width * height) >= target:
            break
        shapes[mask_types[int(rng.choice(len(mask_types), p=probabilities))]]()
    if edge_blur and edge_blur_radius > 0:
        canvas = canvas.filter(ImageFilter.GaussianBlur(radius=edge_blur_radius))
    mask = np.asarray(canvas, dtype=np.float32) / 255.0
    if edge_feather:
        mask = feather(mask >= 0.5)
    if invert_mask:
        mask = 1.0 - mask
    if output_mode == "masked_image":
        filled = pixels.astype(np.float32) * (1.0 - mask[:, :, None]) + 255.0 * mask[:, :, None]
        return (filled + 0.5).astype(np.uint8)
    level = (mask * mask_value + 0.5).astype(np.uint8)
    return np.repeat(level[:, :, None], 3, axis=2)


def feather(inside: np.ndarray, half_width: int = FEATHER_PIXELS) -> np.ndarray:
    """A soft mask in [0, 1] from a boolean one: 0.5 on the edge, rising to 1 `half_width` pixels inside and falling
    to 0 as far outside."""
    import cv2

    if inside.all() or not inside.any():
        return inside.astype(np.float32)
    inner = cv2.distanceTransform(inside.astype(np.uint8), cv2.DIST_L2, 5)  # distance to the nearest outside pixel
    outer = cv2.distanceTransform((~inside).astype(np.uint8), cv2.DIST_L2, 5)
    signed = np.where(inside, inner - 0.5, 0.5 - outer)  # the edge lies between an inside and an outside pixel
    return np.clip(0.5 + signed / (2.0 * half_width), 0.0, 1.0).astype(np.float32)


def _between(rng: np.random.Generator, low: int, high: int) -> int:
    """A whole number in [low, high] (low when the range is empty)."""
    return int(rng.integers(low, high + 1)) if high > low else int(low)


def _rectangle(draw, rng, width: int, height: int, min_size: float, max_size: float) -> None:
    w = int(width * rng.uniform(min_size, max_size))
    h = int(height * rng.uniform(min_size, max_size))
    x, y = _between(rng, 0, width - w), _between(rng, 0, height - h)
    draw.rectangle([x, y, x + w, y + h], fill=255)


def _circle(draw, rng, width: int, height: int, min_radius: float, max_radius: float) -> None:
    radius = int(min(width, height) * rng.uniform(min_radius, max_radius))
    cx, cy = _between(rng, radius, width - radius), _between(rng, radius, height - radius)
    draw.ellipse([cx - radius, cy - radius, cx + radius, cy + radius], fill=255)


def _brush(draw, rng, width: int, height: int, widths: tuple[int, int], lengths: tuple[float, float]) -> None:
    brush = _between(rng, *widths)
    length = int(min(width, height) * rng.uniform(*lengths))
    points = [(_between(rng, brush, width - brush), _between(rng, brush, height - brush))]
    for _ in range(max(2, length // 20) - 1):  # a random walk of 20-50 pixel steps, kept inside the image
        angle, step = rng.uniform(0, 2 * np.pi), rng.uniform(*STEP_PIXELS)
        x = int(points[-1][0] + step * np.cos(angle))
        y = int(points[-1][1] + step * np.sin(angle))
        points.append((min(max(x, brush), max(brush, width - brush)), min(max(y, brush), max(brush, height - brush))))
    draw.line(points, fill=255, width=brush)
    half = brush // 2
    for x, y in points:  # round joints
        draw.ellipse([x - half, y - half, x + half, y + half], fill=255)


def _irregular(draw, rng, width: int, height: int, min_points: int, max_points: int) -> None:
    count = _between(rng, min_points, max_points)
    cx, cy = _between(rng, width // 4, 3 * width // 4), _between(rng, height // 4, 3 * height // 4)
    angles = 2 * np.pi * np.arange(count) / count + rng.uniform(-0.3, 0.3, count)
    radii = rng.uniform(0.1, 0.3, count) * min(width, height)
    xs = np.clip((cx + radii * np.cos(angles)).astype(int), 0, width - 1)
    ys = np.clip((cy + radii * np.sin(angles)).astype(int), 0, height - 1)
    draw.polygon(list(zip(xs.tolist(), ys.tolist())), fill=255)
