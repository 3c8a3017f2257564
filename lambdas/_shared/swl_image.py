"""Decoded image -> 8 bits per channel: the one conversion every function uses (Pillow only, bundled into every zip).

``to_8bit`` gives mode ``L`` (single-channel sources) or ``RGB``; ``to_rgb``
always ``RGB``; ``check`` raises what ``to_8bit`` would raise without
converting (ingest uses it, so a refused image is a 400 and never stored).

- animated images: the first frame;
- 16-bit (``I;16*``, and ``I`` within 0..65535): scaled by 255/65535, not
  clipped (Pillow's own ``convert`` clips, which turns most of a 16-bit image white);
- ``1`` -> ``L``; ``P`` -> ``RGB`` through its palette;
- transparency (``RGBA``, ``LA``, ``PA``, premultiplied ``RGBa``/``La``, a
  palette or colour-key ``transparency``) -> composited on white, so the
  colour hidden under transparent pixels never shows;
- ``CMYK``, ``YCbCr``, ``RGBX`` -> ``RGB`` with Pillow's conversion (no colour
  management: an embedded ICC profile is not applied);
- anything else (float ``F``, ``I`` outside 16 bits, ``HSV``, ``LAB``, a
  16-bit image with a transparent colour key) is refused with
  ``InvalidImage`` and the reason.
"""

from __future__ import annotations

from typing import Callable

from PIL import Image
from swl_errors import InvalidImage

WHITE = 255
SIXTEEN_BIT = frozenset({"I;16", "I;16L", "I;16B", "I;16N"})
ALPHA_GRAY = frozenset({"LA", "La"})
ALPHA_COLOUR = frozenset({"RGBA", "RGBa", "PA"})
PILLOW_TO_RGB = frozenset({"CMYK", "YCbCr", "RGBX"})

Conversion = Callable[[Image.Image], Image.Image]


def _same(image: Image.Image) -> Image.Image:
    return image


def _scale_16bit(image: Image.Image) -> Image.Image:
    wide = image if image.mode == "I" else image.convert("I")
    return wide.point(lambda v: v * (255 / 65535) + 0.5).convert("L")  # rounded, 0..65535 -> 0..255


def _flatten_gray(image: Image.Image) -> Image.Image:
    gray_alpha = image.convert("LA")
    out = Image.new("L", image.size, WHITE)
    out.paste(gray_alpha.getchannel("L"), mask=gray_alpha.getchannel("A"))
    return out


def _flatten_colour(image: Image.Image) -> Image.Image:
    rgba = image.convert("RGBA")
    out = Image.new("RGB", image.size, (WHITE, WHITE, WHITE))
    out.paste(rgba.convert("RGB"), mask=rgba.getchannel("A"))
    return out


def _to_l(image: Image.Image) -> Image.Image:
    return image.convert("L")


def _to_rgb(image: Image.Image) -> Image.Image:
    return image.convert("RGB")


def _conversion(image: Image.Image, where: str) -> Conversion:
    """How ``image`` becomes 8-bit L or RGB, or InvalidImage saying why it cannot."""
    mode, keyed = image.mode, "transparency" in image.info
    if mode in SIXTEEN_BIT or mode == "I":
        if keyed:
            raise InvalidImage(f"{where}: a {mode} (16-bit) image with a transparent colour key is not supported")
        if mode == "I":
            low, high = image.getextrema()
            if low < 0 or high > 65535:
                raise InvalidImage(
                    f"{where}: mode I pixel values {low}..{high} are outside 16 bits; "
                    "no 8-bit form without guessing their range"
                )
        return _scale_16bit
    if mode in ("L", "RGB"):
        return _flatten_colour if keyed else _same
    if mode == "1":
        return _to_l
    if mode in ALPHA_GRAY:
        return _flatten_gray
    if mode in ALPHA_COLOUR or (mode == "P" and keyed):
        return _flatten_colour
    if mode == "P" or mode in PILLOW_TO_RGB:
        return _to_rgb
    raise InvalidImage(
        f"{where}: pixel mode {mode} has no correct 8-bit RGB form here (supported: 8/16-bit gray, "
        "palette, RGB, CMYK, with or without alpha)"
    )


def first_frame(image: Image.Image) -> Image.Image:
    if getattr(image, "n_frames", 1) > 1 and image.tell() != 0:
        image.seek(0)
    return image


def check(image: Image.Image, where: str = "image") -> None:
    """Raise InvalidImage if ``to_8bit`` would refuse ``image`` (no pixel copy)."""
    _conversion(first_frame(image), where)


def to_8bit(image: Image.Image, where: str = "image") -> Image.Image:
    """``image`` as 8-bit ``L`` (gray sources) or ``RGB``; ``L``/``RGB`` without transparency come back as they are."""
    image = first_frame(image)
    try:
        return _conversion(image, where)(image)
    except (ValueError, OSError) as exc:  # a conversion Pillow cannot do for this file
        raise InvalidImage(f"{where}: cannot convert mode {image.mode} to 8 bits: {exc}") from None


def to_rgb(image: Image.Image, where: str = "image") -> Image.Image:
    out = to_8bit(image, where)
    return out if out.mode == "RGB" else out.convert("RGB")
