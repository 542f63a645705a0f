"""Image-quality metrics: pure float64 functions plus the metadata reports need."""

from .color import rgb_to_y
from .core import METRICS, MetricInfo, psnr, psnr_rgb, psnr_y, shave_border, ssim, ssim_y

__all__ = ["METRICS", "MetricInfo", "psnr", "psnr_rgb", "psnr_y", "rgb_to_y", "shave_border", "ssim", "ssim_y"]
