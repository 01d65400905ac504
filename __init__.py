"""blur2blur: camera-specific deblurring (Blur2Blur, CVPR 2024) from training to a live edge runtime."""

__version__ = "0.1.0"
