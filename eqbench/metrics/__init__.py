"""Image-quality metrics: pure float64 functions plus the metadata reports need."""

from .core import METRICS, MetricInfo, psnr, psnr_rgb, psnr_y, shave_border, ssim, ssim_y
from .color import rgb_to_y

__all__ = ["METRICS", "MetricInfo", "psnr", "psnr_rgb", "psnr_y", "rgb_to_y", "shave_border", "ssim", "ssim_y"]
