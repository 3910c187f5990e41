"""Seeded degradation primitives (``DEGRADATIONS``), the published presets (``PRESETS``) and the
test-set builder (``degradations.builder``). Images are float32 HWC RGB in [0, 1]."""
from degradations.primitives import (adjust_brightness, adjust_contrast, adjust_hue,
                                     adjust_saturation, color_jitter, color_shift, down_up,
                                     downsample, filter2d, gaussian_blur, gaussian_blur_separable,
                                     gaussian_noise, grayscale,
                                     jpeg, motion_blur, psp_bicubic_downsample, resize)
from degradations.presets import PRESETS, Preset, degrade, get_preset

DEGRADATIONS = {
    "gaussian_blur": gaussian_blur,
    "gaussian_blur_separable": gaussian_blur_separable,
    "motion_blur": motion_blur,
    "filter2d": filter2d,
    "resize": resize,
    "downsample": downsample,
    "down_up": down_up,
    "psp_bicubic_downsample": psp_bicubic_downsample,
    "gaussian_noise": gaussian_noise,
    "jpeg": jpeg,
    "grayscale": grayscale,
    "color_shift": color_shift,
    "color_jitter": color_jitter,
    "adjust_brightness": adjust_brightness,
    "adjust_contrast": adjust_contrast,
    "adjust_saturation": adjust_saturation,
    "adjust_hue": adjust_hue,
}

__all__ = ["DEGRADATIONS", "PRESETS", "Preset", "degrade", "get_preset"]
