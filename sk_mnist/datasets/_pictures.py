"""Pictures of handwritten digits, read and normalized as the MNIST digits were made."""

import math
import warnings
from pathlib import Path

import numpy as np

from .._optional import require

__all__ = ["MAX_PICTURE_PIXELS", "center_digit", "read_digit_image"]

#: The most pixels a picture may have (4 megapixels), after a JPEG's reduced
#: decoding: at 4 bytes a pixel, the decoded picture takes at most 16 MiB.
MAX_PICTURE_PIXELS = 2**22

#: Pictures are reduced to at most this side before they become float arrays:
#: a digit fills 20x20 pixels in the end, and the memory stays bounded.
_WORKING_SIDE = 1024

#: Grayscale modes of more than 8 bits, read as their own values: converting
#: them to 8 bits ("L") clips them instead of rescaling.
_DEEP_GRAY_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I", "F")


def center_digit(image):
    """Turn a picture of one digit into an MNIST-style 28x28 image.

    As the MNIST digits were made: the ink is cropped, scaled with
    anti-aliasing to fit a 20x20 box (keeping its aspect ratio) and placed in
    a 28x28 field so that its centre of mass is at pixel (14, 14). A picture with
    a light background is inverted first, so that ink is bright on black.

    Parameters
    ----------
    image : array-like of shape (height, width)
        Grayscale intensities, any range.

    Returns
    -------
    digit : ndarray of shape (784,), dtype uint8
        The image as one MNIST row: 0 background, 255 full ink.

    Raises
    ------
    ValueError
        If the picture is blank (one intensity throughout).

    See Also
    --------
    read_digit_image : Read a picture file and centre it.

    Examples
    --------
    >>> import numpy as np
    >>> from sk_mnist.datasets import center_digit
    >>> page = np.full((100, 60), 255.0)  # black ink on white paper
    >>> page[10:90, 25:35] = 0  # a thick stroke: a "1"
    >>> digit = center_digit(page).reshape(28, 28)
    >>> digit.max(), np.nonzero(digit.any(axis=1))[0][[0, -1]]  # 20 rows of ink, from row 4
    (np.uint8(255), array([ 4, 23]))
    """
    Image = _require_pillow()
    image = np.asarray(image, dtype=np.float64)
    if image.ndim != 2:
        raise ValueError(f"Expected a 2-D grayscale image; got shape {image.shape}.")
    low, high = image.min(), image.max()
    if high == low:
        raise ValueError("The image is blank: it has no ink.")
    ink = (image - low) / (high - low)
    # The border is mostly background: a light border means dark ink on light
    # paper, which MNIST has the other way round.
    border = np.concatenate([ink[0], ink[-1], ink[:, 0], ink[:, -1]])
    if np.median(border) > 0.5:
        ink, border = 1 - ink, 1 - border
    ink = np.clip(ink - np.median(border), 0, None)  # uneven paper is not ink
    if ink.max() == 0:
        raise ValueError("The image has no ink distinct from its background.")
    ink /= ink.max()
    rows, cols = np.nonzero(ink > 0.1)
    ink = ink[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    height, width = ink.shape
    scale = 20 / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    box = np.asarray(Image.fromarray(ink.astype(np.float32)).resize(size, Image.Resampling.LANCZOS))
    box = np.clip(box, 0, 1)
    field = np.zeros((28, 28))
    top, left = (28 - box.shape[0]) // 2, (28 - box.shape[1]) // 2
    field[top : top + box.shape[0], left : left + box.shape[1]] = box
    # Shift by whole pixels so that the centre of mass lands on pixel (14, 14),
    # where the MNIST digits have theirs (on average 13.99, 14.00).
    total = field.sum()
    grid_rows, grid_cols = np.indices(field.shape)
    shift_row = round(14 - float((grid_rows * field).sum() / total))
    shift_col = round(14 - float((grid_cols * field).sum() / total))
    field = np.roll(field, (shift_row, shift_col), axis=(0, 1))
    return np.round(255 * field / field.max()).astype(np.uint8).ravel()


def _require_pillow():
    return require("PIL.Image", "report", "reading pictures")


def read_digit_image(path):
    """Read a picture of one handwritten digit as an MNIST row.

    Any format Pillow reads (PNG, JPEG, TIFF...), in colour or grayscale of 8,
    16 or 32 bits, dark ink on a light background or the reverse; transparent
    pixels count as background. Pictures larger than 1024 pixels a side are
    reduced first. See :func:`center_digit` for how it is normalized.

    Parameters
    ----------
    path : str or path-like
        The picture file.

    Returns
    -------
    digit : ndarray of shape (784,), dtype uint8
        The digit as one MNIST row, normalized by :func:`center_digit`: 0
        background, 255 full ink.

    Raises
    ------
    ValueError
        If ``path`` is not a regular file (a FIFO would block for ever), or
        the picture has more than ``MAX_PICTURE_PIXELS`` pixels.
    OSError
        If Pillow cannot read it.

    See Also
    --------
    center_digit : The normalization, on an array.
    """
    Image = _require_pillow()
    if not Path(path).is_file():
        raise ValueError("not a regular file" if Path(path).exists() else "no such file")
    with _open_picture(Image, path) as picture:
        width, height = picture.size
        if width * height > MAX_PICTURE_PIXELS:
            raise ValueError(
                f"the picture has {width}x{height} pixels, more than the {MAX_PICTURE_PIXELS:,} read; "
                "downscale it first"
            )
        picture.load()
        gray = np.asarray(_gray(Image, picture), dtype=np.float64)
    return center_digit(gray)


def _open_picture(Image, path):
    """Open a picture lazily; a JPEG is decoded at a reduced scale if large."""
    # Pillow warns above Image.MAX_IMAGE_PIXELS and raises above twice that:
    # both are a refusal here, as one ValueError.
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            picture = Image.open(path)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise ValueError(str(exc)) from exc
    picture.draft(picture.mode, (_WORKING_SIDE, _WORKING_SIDE))  # only JPEG does something
    return picture


def _gray(Image, picture):
    """The picture as one band of at most ``_WORKING_SIDE`` a side, ink values kept."""
    if "A" in picture.getbands() or picture.info.get("transparency") is not None:
        picture = _reduce(picture.convert("RGBA"))  # reduce premultiplies the alpha
        paper = Image.new("RGBA", picture.size, (255, 255, 255, 255))
        # Transparent pixels become white paper, which the inversion then treats as background.
        return Image.alpha_composite(paper, picture).convert("L")
    # "F" holds 16-bit values exactly, and 32-bit ones to 24 bits: center_digit rescales them.
    return _reduce(picture.convert("F" if picture.mode in _DEEP_GRAY_MODES else "L"))


def _reduce(picture):
    factor = math.ceil(max(picture.size) / _WORKING_SIDE)
    return picture.reduce(factor) if factor > 1 else picture
